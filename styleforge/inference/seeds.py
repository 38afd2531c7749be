"""Seeds, latents and labels: how a seed names an image, the same way as the official NVlabs tools."""

from __future__ import annotations

import re

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.networks.heatmaps import HeatmapSpec, sample_heatmap_spec

_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_int_list(text: str, what: str = "list") -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (ranges are inclusive, as in the official tools)."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = _RANGE.match(part)
        if match:
            start, stop = int(match.group(1)), int(match.group(2))
            if stop < start:
                raise UserError(f"{what} '{text}': range {part} runs backwards")
            values.extend(range(start, stop + 1))
        elif part.isdigit():
            values.append(int(part))
        else:
            raise UserError(f"{what} '{text}': '{part}' is neither a number nor a range like 0-9")
    return values


def parse_grid(text: str) -> tuple[int, int]:
    """'10x4' -> (columns, rows) = (10, 4)."""
    match = re.match(r"^(\d+)x(\d+)$", text.strip())
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise UserError(f"grid '{text}': expected COLUMNSxROWS, e.g. 4x2")
    return int(match.group(1)), int(match.group(2))


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The latent a seed names: z = RandomState(seed).randn(1, z_dim), as in the official generate.py."""
    if not 0 <= seed < 2**32:
        raise UserError(f"seed {seed}: must be in [0, 2^32)")
    return np.random.RandomState(seed).randn(1, z_dim)  # [1, z_dim] float64


def seeds_to_z(seeds: list[int], z_dim: int, device: torch.device | str) -> torch.Tensor:
    """[N, z_dim] float32 latents of `seeds`. The official code feeds float64 z, which its mapping casts
    to float32 first, so casting here gives the same image."""
    z = np.concatenate([seed_to_z(s, z_dim) for s in seeds])
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)


def class_labels(G: torch.nn.Module, class_idx: int | None, n: int, device: torch.device | str) -> torch.Tensor:
    """One-hot labels [n, c_dim] for `class_idx` ([n, 0] for an unconditional G)."""
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise UserError(f"class {class_idx}: this network is unconditional (c_dim = 0); leave out --class")
        return c
    if class_idx is None:
        raise UserError(f"this network is conditional ({G.c_dim} classes): name a class with --class 0..{G.c_dim - 1}")
    if not 0 <= class_idx < G.c_dim:
        raise UserError(f"class {class_idx}: out of range, this network has classes 0..{G.c_dim - 1}")
    c[:, class_idx] = 1
    return c


def network_device(G: torch.nn.Module) -> torch.device:
    """The device G's weights live on (CPU for a module without parameters or buffers)."""
    for tensor in [*G.parameters(), *G.buffers()]:
        return tensor.device
    return torch.device("cpu")


def default_device() -> torch.device:
    """The CLI's device: the first GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


IMAGE_RANGE = (-1.0, 1.0)  # heatmap coordinates of the image's first and last pixel


def is_spatial(G: torch.nn.Module) -> bool:
    """True for EqGAN-SA generators (synthesis with spatial encoding layers fed by heatmaps)."""
    return getattr(G.synthesis, "heatmap_encoder", None) is not None


def seed_heatmap_spec(seed: int, device: torch.device | str | None = None) -> HeatmapSpec:
    """The heatmaps an EqGAN-SA image of `seed` is drawn with (a batch of one), centres clipped into the image.
    The caller's RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        spec = sample_heatmap_spec(1, "cpu")
    centres = tuple(level.clamp(*IMAGE_RANGE).to(device) for level in spec.centres)  # [1, k, 2] (y, x)
    return HeatmapSpec(centres, tuple(level.to(device) for level in spec.sigmas))


def seeds_heatmap_spec(seeds: list[int], device: torch.device | str | None = None) -> HeatmapSpec:
    """`seed_heatmap_spec` of each seed, as one batch."""
    specs = [seed_heatmap_spec(seed, device) for seed in seeds]
    return HeatmapSpec(tuple(torch.cat(levels) for levels in zip(*(s.centres for s in specs))),
                       tuple(torch.cat(levels) for levels in zip(*(s.sigmas for s in specs))))
