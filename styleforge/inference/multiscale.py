"""The images of a multi-scale generator (MSG-StyleGAN) at every scale, as one grid."""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F

from styleforge.errors import UserError
from styleforge.images import to_uint8


def is_multiscale(G: torch.nn.Module) -> bool:
    return "return_all_scales" in inspect.signature(G.synthesis.forward).parameters


@torch.no_grad()
def msg_scales_grid(
    G: torch.nn.Module,
    z: torch.Tensor,
    c: torch.Tensor | None = None,
    truncation_psi: float = 1,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
) -> np.ndarray:
    """z [N, z_dim], c [N, c_dim] -> uint8 [N * R, S * R, C]: one row per latent, its S scales from 4x4 (left)
    to R x R (right), each nearest-upsampled to R so that pixels stay visible."""
    if not is_multiscale(G):
        raise UserError(f"{type(G).__name__} does not emit multi-scale images (use an MSG-StyleGAN network)")
    if c is None:
        c = torch.zeros([z.shape[0], G.c_dim], device=z.device)
    ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    images = G.synthesis(ws, noise_mode=noise_mode, return_all_scales=True)  # S x [N, C, r, r]
    return np.concatenate(scales_side_by_side(images))  # [N * R, S * R, C]


def scales_side_by_side(images: list[torch.Tensor]) -> np.ndarray:
    """S x [N, C, r, r] (low -> high resolution) -> uint8 [N, R, S * R, C]: each latent's scales in a row, each
    nearest-upsampled to the top resolution R."""
    size = images[-1].shape[-1]
    row = torch.cat([F.interpolate(img.float(), size=size, mode="nearest") for img in images], dim=-1)  # [N, C, R, S*R]
    return to_uint8(row)
