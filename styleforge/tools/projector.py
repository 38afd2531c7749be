"""Projection of a real image into W (or W+): find the latent whose image matches it.

Follows the official projector.py of stylegan2-ada-pytorch: start at the mean w (from 10000 mapped
samples), Adam with lr 0.1 ramped up over the first 5% of steps and down (cosine) over the last 25%,
Gaussian noise on w that starts at 0.05 * std(w) and decays quadratically to zero at 75% of the steps,
the synthesis noise maps optimized too with a penalty on their autocorrelation at every scale (weight
1e5) and renormalized after every step. The distance is LPIPS (VGG16) on images shrunk to 256 px when
its weights are available; otherwise a multi-scale pixel MSE, with a warning.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.generate import seeded_torch_rng, synthesize
from styleforge.inference.seeds import class_labels, network_device

DISTANCES = ("auto", "lpips", "mse")
LPIPS_SIZE = 256  # images larger than this are area-shrunk before LPIPS, as in the official projector
NOISE_BUFFER = "noise_const"  # synthesis buffers holding the constant noise maps (the official name)

Distance = Callable[[torch.Tensor], torch.Tensor]  # synthesized images in [0, 255] -> scalar distance to the target


@dataclass
class ProjectionSettings:
    """The official projector's schedule and weights."""

    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5


@dataclass
class Projection:
    ws_steps: torch.Tensor  # [num_steps, num_ws, w_dim]: the ws after each step
    distances: list[float] = field(default_factory=list)  # distance to the target at each step

    @property
    def ws(self) -> torch.Tensor:
        """The final ws [1, num_ws, w_dim], ready for G.synthesis."""
        return self.ws_steps[-1:]


def load_target(path: str | os.PathLike, G: torch.nn.Module) -> np.ndarray:
    """The image at `path`, centre-cropped to a square and resized (Lanczos) to G's resolution: uint8 [H, W, C]."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the image ({e})") from e
    image = image.convert("L" if G.img_channels == 1 else "RGB")
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    image = image.resize((G.img_resolution, G.img_resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def multiscale_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum over a 2x average-pooling pyramid (down to 8 px) of the mean squared difference of [N, C, H, W] images."""
    total = (a - b).square().mean()
    while a.shape[2] > 8:
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        total = total + (a - b).square().mean()
    return total


def _shrink(img: torch.Tensor) -> torch.Tensor:
    return F.interpolate(img, size=(LPIPS_SIZE, LPIPS_SIZE), mode="area") if img.shape[2] > LPIPS_SIZE else img


def _lpips_embedder(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """VGG16-LPIPS embedding of [N, 3, H, W] images in [0, 255] (squared distance = LPIPS); UserError when the
    weights cannot be found."""
    from styleforge.metrics.detectors import load_detector

    detector = load_detector("ppl", device=device)

    def embed(img: torch.Tensor) -> torch.Tensor:
        # Called directly, not through Detector.__call__, which runs without gradients.
        if detector.rgb:
            img = img.expand(-1, 3, -1, -1)
        return detector.net(img, **detector.call_kwargs)

    return embed


def make_distance(target: torch.Tensor, kind: str = "auto") -> Distance:
    """Distance of synthesized images to `target` ([1, C, H, W] in [0, 255]), both in [0, 255]."""
    if kind not in DISTANCES:
        raise UserError(f"distance '{kind}': choose one of {DISTANCES}")
    if kind != "mse":
        try:
            embed = _lpips_embedder(target.device)
        except (ImportError, UserError) as e:
            if kind == "lpips":
                raise UserError(f"LPIPS distance unavailable: {e}") from e
            warnings.warn(f"LPIPS (VGG16) weights not available ({e}); projecting with a multi-scale pixel MSE "
                          "instead, which gives blurrier matches", stacklevel=2)
        else:
            target_features = embed(_shrink(target))
            return lambda img: (embed(_shrink(img)) - target_features).square().sum()
    scaled_target = target / 127.5 - 1
    return lambda img: multiscale_mse(img / 127.5 - 1, scaled_target)


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor | float:
    """Squared autocorrelation (1-pixel shifts in x and y) of each noise map, at every scale down to 8 px."""
    total: torch.Tensor | float = 0.0
    for noise in noise_maps:
        noise = noise.reshape(1, 1, *noise.shape[-2:])  # [1, 1, H, W]
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean().square()
            total = total + (noise * torch.roll(noise, shifts=1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


def learning_rate(step: int, s: ProjectionSettings) -> float:
    t = step / s.num_steps
    ramp = min(1.0, (1.0 - t) / s.lr_rampdown_length)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    return s.initial_learning_rate * ramp * min(1.0, t / s.lr_rampup_length)


@torch.no_grad()
def w_statistics(G: torch.nn.Module, c: torch.Tensor, num_samples: int) -> tuple[torch.Tensor, float]:
    """Mean w [1, 1, w_dim] and the scalar std of w over `num_samples` mapped latents (the official sample set)."""
    z = torch.from_numpy(np.random.RandomState(123).randn(num_samples, G.z_dim)).to(c.device, torch.float32)
    w = G.mapping(z, c.expand(num_samples, -1))[:, :1].float()  # [N, 1, w_dim]
    w_avg = w.mean(0, keepdim=True)
    w_std = ((w - w_avg).square().sum() / num_samples).sqrt().item()
    return w_avg, w_std


def project(
    G: torch.nn.Module,
    target: np.ndarray | torch.Tensor,
    *,
    w_plus: bool = False,
    settings: ProjectionSettings | None = None,
    distance: str = "auto",
    class_idx: int | None = None,
    seed: int = 303,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> Projection:
    """Projects `target` (uint8 [H, W, C] at G's resolution) into W, or W+ with one w per layer.

    G itself is not changed: the noise maps are optimized in a copy. The returned ws reproduce the match
    with G's own constant noise (as the official tool renders its result).
    """
    s = settings or ProjectionSettings()
    device = torch.device(device) if device is not None else network_device(G)
    target = (target if torch.is_tensor(target) else torch.from_numpy(np.array(target))).to(device)
    expected = (G.img_resolution, G.img_resolution, G.img_channels)
    if tuple(target.shape) != expected:
        raise UserError(f"target of shape {tuple(target.shape)}: expected {expected} (use load_target)")
    target = target.permute(2, 0, 1).unsqueeze(0).float()  # [1, C, H, W] in [0, 255]
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    c = class_labels(G, class_idx, 1, device)

    with seeded_torch_rng(seed, device):
        w_avg, w_std = w_statistics(G, c, s.w_avg_samples)
        dist_fn = make_distance(target, distance)
        noise_maps = [buf for name, buf in G.synthesis.named_buffers() if NOISE_BUFFER in name]
        w_opt = (w_avg.repeat(1, G.num_ws, 1) if w_plus else w_avg).clone().requires_grad_(True)  # [1, L or 1, w_dim]
        optimizer = torch.optim.Adam([w_opt, *noise_maps], betas=(0.9, 0.999), lr=s.initial_learning_rate)
        with torch.no_grad():
            for buf in noise_maps:
                buf.copy_(torch.randn_like(buf))
        for buf in noise_maps:
            buf.requires_grad_(True)

        ws_steps = torch.zeros([s.num_steps, G.num_ws, G.w_dim], device=device)
        distances = []
        for step in tqdm(range(s.num_steps), desc="project", unit="step", disable=not progress):
            t = step / s.num_steps
            w_noise_scale = w_std * s.initial_noise_factor * max(0.0, 1.0 - t / s.noise_ramp_length) ** 2
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, s)

            ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).expand(1, G.num_ws, -1)  # [1, num_ws, w_dim]
            img = (synthesize(G, ws, "const") + 1) * 127.5  # [1, C, H, W] in [0, 255]
            dist = dist_fn(img)
            loss = dist + noise_regularization(noise_maps) * s.regularize_noise_weight

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            distances.append(dist.detach())  # kept on the device: no sync per step
            ws_steps[step] = w_opt.detach()[0].expand(G.num_ws, -1)
            with torch.no_grad():
                for buf in noise_maps:
                    buf -= buf.mean()
                    buf *= buf.square().mean().rsqrt()
    return Projection(ws_steps=ws_steps, distances=torch.stack(distances).tolist())


@torch.no_grad()
def render_ws(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> np.ndarray:
    """uint8 images [N, H, W, C] of ws [N, num_ws, w_dim]."""
    return to_uint8(synthesize(G, ws.to(network_device(G)), noise_mode))


def progress_frames(G: torch.nn.Module, target: np.ndarray, projection: Projection) -> Iterator[np.ndarray]:
    """Frames [H, 2W, C] of the optimization: the target beside the image after each step."""
    for ws in projection.ws_steps:
        yield np.concatenate([target, render_ws(G, ws[None])[0]], axis=1)
