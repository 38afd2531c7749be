"""Interpolation between latents: slerp in Z (a Gaussian, whose mass lies near a sphere), lerp in W, and the
position along a looping path of keyframes."""

from __future__ import annotations

import math

import torch

SPACES = ("z", "w")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of rows of a and b [N, D] (lerp where they are parallel)."""
    cos = (a / a.norm(dim=-1, keepdim=True) * b / b.norm(dim=-1, keepdim=True)).sum(-1, keepdim=True)
    omega = cos.clamp(-1, 1).acos()  # [N, 1]
    sin = omega.sin()
    parallel = sin.abs() < 1e-6
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    spherical = ((1 - t) * omega).sin() / safe_sin * a + (t * omega).sin() / safe_sin * b
    return torch.where(parallel, torch.lerp(a, b, t), spherical)


def latent_at(keys: torch.Tensor, t: float, space: str) -> torch.Tensor:
    """The latents of every cell at time t of the loop (t = 0 and t = 1 are the same point).

    keys: [cells, k, ...] keyframes, visited in order at t = j/k and wrapping around to keys[:, 0] at t = 1.
    """
    k = keys.shape[1]
    position = (t % 1.0) * k
    j = min(int(math.floor(position)), k - 1)
    frac = position - j
    a, b = keys[:, j], keys[:, (j + 1) % k]
    return slerp(a, b, frac) if space == "z" else torch.lerp(a, b, frac)
