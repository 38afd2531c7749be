"""Images from seeds: the library function behind `styleforge generate` and `styleforge.generate(G, ...)`."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.images import save_image, to_uint8
from styleforge.inference.multiscale import is_multiscale, scales_side_by_side
from styleforge.inference.seeds import class_labels, is_spatial, network_device, seeds_heatmap_spec, seeds_to_z
from styleforge.networks.persistence import read_metadata

NOISE_MODES = ("const", "random", "none")


def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str, **synthesis_kwargs) -> torch.Tensor:
    """Float32 images [N, C, H, W] in about [-1, 1] from ws [N, num_ws, w_dim]: the one place where the tools
    turn ws into pixels (MSG-StyleGAN generators give their full-resolution image here)."""
    img = G.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)
    return img.float()


@contextlib.contextmanager
def seeded_torch_rng(seed: int | None, device: torch.device) -> Iterator[None]:
    """Within it, torch's global RNG (e.g. random noise) depends only on `seed` (no-op for None); the caller's RNG
    state is restored afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def generate(
    G: torch.nn.Module,
    seeds: list[int] | int,
    psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str | None = None,
    batch_size: int = 16,
    all_scales: bool = False,
) -> np.ndarray:
    """uint8 images [N, H, W, C], one per seed, z drawn as in the official tools (see `tools.seeds`).
    With `all_scales` (MSG-StyleGAN networks only) each image shows its scales side by side: [N, R, S * R, C].

    With noise_mode 'random' each image's noise is drawn from a generator seeded by its seed, and EqGAN-SA
    heatmaps are the seed's own (`seed_heatmap_spec`), so the result is still a function of the seed.
    G is moved to `device` when one is given.
    """
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode '{noise_mode}': choose one of {NOISE_MODES}")
    if all_scales and not is_multiscale(G):
        raise UserError(f"{type(G).__name__} has a single scale: --all-scales needs an MSG-StyleGAN network")
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise UserError("no seeds given")
    device = torch.device(device) if device is not None else network_device(G)
    G = G.to(device)
    # Random noise is seeded per image, so such images are made one at a time.
    step = 1 if noise_mode == "random" else batch_size
    images = []
    for start in range(0, len(seeds), step):
        batch = seeds[start:start + step]
        z = seeds_to_z(batch, G.z_dim, device)  # [n, z_dim]
        c = class_labels(G, class_idx, len(batch), device)  # [n, c_dim]
        ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff)  # [n, num_ws, w_dim]
        extra = {"centres": seeds_heatmap_spec(batch, device)} if is_spatial(G) else {}  # EqGAN-SA: per seed
        with seeded_torch_rng(batch[0] if noise_mode == "random" else None, device):
            if all_scales:  # S x [n, C, r, r] -> [n, R, S * R, C]
                images.append(scales_side_by_side(G.synthesis(ws, noise_mode=noise_mode, return_all_scales=True,
                                                              **extra)))
            else:
                images.append(to_uint8(synthesize(G, ws, noise_mode, **extra)))
    return np.concatenate(images)


def save_seed_images(images: np.ndarray, seeds: list[int], outdir: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Writes `seed0042.png`-style files (the official naming; `seed0042-scales.png` with suffix '-scales') and
    returns their paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, img in zip(seeds, images, strict=True):
        path = outdir / f"seed{seed:04d}{suffix}.png"
        save_image(img, path)
        paths.append(path)
    return paths


def default_truncation(path: str | os.PathLike) -> tuple[float, int | None]:
    """The truncation a model is meant to be used with (psi, cutoff): its training config's `trunc_psi` and
    `trunc_cutoff` (e.g. StyleGAN v1 and MSG-StyleGAN: 0.7 on the first 8 ws); none for other files."""
    config = json.loads(read_metadata(path).get("config") or "{}")
    psi = config.get("trunc_psi")
    return (1.0, None) if psi is None else (float(psi), config.get("trunc_cutoff"))
