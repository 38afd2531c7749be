"""Batches of homogeneous transformation matrices: 3x3 for 2D pixel coordinates, 4x4 for RGB colours.

Every builder takes per-sample parameters as tensors of shape [N] (plain numbers are broadcast)
and returns [N, 3, 3] or [N, 4, 4]; with numbers only, pass a 0-d `like` tensor to get one matrix.
Rows are built with torch.stack, so the matrices are differentiable in their parameters and live
on the parameters' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

Scalar = Tensor | float


def matrix(*rows: list[Scalar], like: Tensor) -> Tensor:
    """Stacks rows of per-sample values [N] or numbers into a batch of matrices [N, R, C]; `like` gives N and device."""
    # Numbers become device-side fills, not host-to-device copies (which would stall a CUDA stream).
    elems = [e.to(like.dtype).expand(like.shape) if isinstance(e, Tensor) else torch.full_like(like, e)
             for row in rows for e in row]  # fmt: skip
    return torch.stack(elems, dim=-1).reshape(*like.shape, len(rows), len(rows[0]))


def _like(*values: Scalar, like: Tensor | None) -> Tensor:
    """The reference for shape, device and dtype: `like` if given, else the first tensor parameter."""
    if like is not None:
        return like
    for v in values:
        if isinstance(v, Tensor):
            return v
    raise TypeError("pass `like` when no parameter is a tensor")


def translate2d(tx: Scalar, ty: Scalar, like: Tensor | None = None) -> Tensor:
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], like=_like(tx, ty, like=like))


def scale2d(sx: Scalar, sy: Scalar, like: Tensor | None = None) -> Tensor:
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], like=_like(sx, sy, like=like))


def rotate2d(theta: Tensor) -> Tensor:
    """Counter-clockwise rotation by `theta` radians (x right, y down: clockwise on screen)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return matrix([c, -s, 0], [s, c, 0], [0, 0, 1], like=theta)


def translate3d(tx: Scalar, ty: Scalar, tz: Scalar) -> Tensor:
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1], like=_like(tx, ty, tz, like=None))


def scale3d(sx: Scalar, sy: Scalar, sz: Scalar) -> Tensor:
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1], like=_like(sx, sy, sz, like=None))


def rotate3d(axis: tuple[float, float, float], theta: Tensor) -> Tensor:
    """Rotation by `theta` about the unit vector `axis` (Rodrigues' formula)."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return matrix(
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
        like=theta,
    )
