"""Perceptual path length (Karras et al. 2019), as the official StyleGAN2-ADA metric computes it.

For random latent pairs, interpolate at t and t + eps (slerp in Z, lerp in W; t ~ U(0, 1) for `full`
sampling, t = 0 for `end`), synthesise both with the same (randomised) constant noise, optionally
crop the centre (the face crop of the StyleGAN paper), box-downsample to 256 when larger, and take
the LPIPS distance / eps^2. PPL is the mean over samples between the 1st and 99th percentiles.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm import tqdm

from styleforge.metrics.context import MetricContext, register_metric
from styleforge.metrics.detectors import Detector
from styleforge.metrics.feature_stats import LabelSampler, gather_interleaved


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a, b [N, D] at t [N, 1]; returns unit vectors."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def _randomize_const_noise(G: torch.nn.Module, generator: torch.Generator) -> None:
    for name, buf in G.named_buffers():
        if name.endswith("noise_const"):
            buf.copy_(torch.randn(buf.shape, generator=generator, device=buf.device, dtype=buf.dtype))


def ppl_distances(G: torch.nn.Module, detector: Detector, c: torch.Tensor, epsilon: float, space: str,
                  sampling: str, crop: bool, generator: torch.Generator, mapping_kwargs: dict | None = None
                  ) -> torch.Tensor:
    """Perceptual distances / eps^2 [N] for N random latent pairs with labels c [N, c_dim]. G is modified
    (its constant noise buffers are randomised): pass a copy."""
    if space not in ("z", "w") or sampling not in ("full", "end"):
        raise ValueError(f"PPL space must be z|w and sampling full|end, got {space}, {sampling}")
    n, device = c.shape[0], c.device
    mapping_kwargs = mapping_kwargs or {}
    t = torch.rand([n], generator=generator, device=device) * (1 if sampling == "full" else 0)
    z0, z1 = torch.randn([2 * n, G.z_dim], generator=generator, device=device).chunk(2)
    cc = torch.cat([c, c])
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), cc, **mapping_kwargs).chunk(2)  # [N, num_ws, w_dim] each
        t = t[:, None, None]
        ws = torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)])
    else:
        t = t[:, None]
        ws = G.mapping(torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]), cc, **mapping_kwargs)
    _randomize_const_noise(G, generator)
    img = G.synthesis(ws, noise_mode="const").to(torch.float32)  # [2N, C, H, W]
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ValueError(f"PPL crop needs square images, got {list(img.shape[2:])}")
        e = img.shape[2] // 8
        img = img[:, :, e * 3:e * 7, e * 2:e * 6]
    factor = G.img_resolution // 256
    if factor > 1:  # box filter down to 256 (from the full resolution)
        img = img.reshape(img.shape[0], img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor,
                          factor).mean(dim=(3, 5))
    img = (img + 1) * (255 / 2)
    lpips0, lpips1 = detector(img).chunk(2)
    return (lpips0 - lpips1).square().sum(dim=1) / epsilon**2


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the distances between the 1st and 99th percentiles (lower/higher interpolation, as official)."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def compute_ppl(ctx: MetricContext, num_gen: int, space: str, sampling: str, crop: bool,
                epsilon: float = 1e-4) -> float:
    opts = ctx.extract
    detector = ctx.detector_for("ppl")
    G = copy.deepcopy(ctx.G).eval().requires_grad_(False).to(opts.device)
    seed = ctx.seed * opts.world_size + opts.rank
    labels = LabelSampler(G, ctx.data_path, seed)
    generator = torch.Generator(device=opts.device).manual_seed(seed)
    mapping_kwargs = {k: v for k, v in ctx.G_kwargs.items() if k in ("truncation_psi", "truncation_cutoff")}
    pairs = max(1, opts.batch_size // 2)  # two images per sample
    dist, count = [], 0
    with torch.no_grad(), tqdm(total=num_gen, desc="ppl sampling", unit="pair",
                               disable=not opts.progress or opts.rank != 0) as bar:
        while count < num_gen:
            c = labels.sample(pairs, opts.device)
            d = ppl_distances(G, detector, c, epsilon, space, sampling, crop, generator, mapping_kwargs)
            d = gather_interleaved(d[:, None], opts.world_size)[:, 0]
            dist.append(d.cpu())
            count += len(d)
            bar.update(len(d))
    return filtered_mean(torch.cat(dist)[:num_gen].numpy())


# The official names: crop for the face-like models of the StyleGAN paper; ppl2_wend is StyleGAN2's PPL.
register_metric("ppl2_wend", compute_ppl, num_gen=50_000, space="w", sampling="end", crop=False, lower_is_better=True)
for _space in ("z", "w"):
    for _sampling in ("full", "end"):
        register_metric(f"ppl_{_space}{_sampling}", compute_ppl, num_gen=50_000, space=_space, sampling=_sampling,
                        crop=True, lower_is_better=True)
