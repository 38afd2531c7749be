"""Level of detail (lod) of progressively grown networks (ProGAN, StyleGAN v1).

A network of resolution R has levels 0 .. L-1 at resolutions 4, 8, .., R (L = log2 R - 1). `lod` counts
halvings from the top: lod 0 shows R, lod k shows R / 2^k. A fractional lod k + f (0 < f < 1) is the fade-in
of resolution R / 2^k: its output is blended with the (upscaled) output of the level below by f, so f = 1
is the lower resolution alone and f = 0 the new one alone (alpha = 1 - f in the paper's terms).

Images keep the full resolution R at every lod, as in the official ProGAN: G nearest-upsamples its output
and D box-downsamples its input to the current resolution, so data loading, augmentation, sample grids and
metrics see the same shapes all along. Networks keep `lod` as a buffer (saved with them, copied into G_ema)
that the training schedule sets before every step (see training/growing.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def add_lod_buffer(module: nn.Module) -> None:
    module.register_buffer("lod", torch.zeros([]))


def has_lod(net: nn.Module) -> bool:
    return any("lod" in dict(m.named_buffers(recurse=False)) for m in net.modules())


def set_lod(net: nn.Module, lod: float) -> None:
    """Sets every `lod` buffer in `net` (a generator keeps it in its synthesis network)."""
    for m in net.modules():
        if "lod" in dict(m.named_buffers(recurse=False)):
            m.lod.fill_(lod)


def quantize_lod(lod: float) -> float:
    """The lod as the networks' float32 buffer holds it, so that the schedule and the networks agree on
    floor(lod) even where float64 would round across an integer."""
    return float(np.float32(lod))


def split_lod(lod: float, num_levels: int) -> tuple[int, float]:
    """(top level, fade fraction f): the highest level computed and the weight of the level below it."""
    lod = min(max(float(lod), 0.0), num_levels - 1.0)
    whole = math.floor(lod)
    return num_levels - 1 - whole, lod - whole


def upscale_nearest(img: torch.Tensor, factor: int) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H*f, W*f]
    return img if factor == 1 else F.interpolate(img, scale_factor=factor, mode="nearest")


def downscale_box(img: torch.Tensor, factor: int) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H/f, W/f]
    return img if factor == 1 else F.avg_pool2d(img, factor)


def reals_at_lod(img: torch.Tensor, lod: float) -> torch.Tensor:
    """Full-resolution reals as D should see them at `lod`: box-downsampled to the current resolution,
    blended towards their 2x box-down / nearest-up version by frac(lod), nearest-upsampled back."""
    whole = math.floor(lod)
    frac = lod - whole
    img = downscale_box(img, 2**whole)
    if frac > 0:
        img = torch.lerp(img, upscale_nearest(downscale_box(img, 2), 2), frac)
    return upscale_nearest(img, 2**whole)


def grow_output(
    lod: float,
    num_levels: int,
    run_level: Callable[[int, torch.Tensor | None], torch.Tensor],
    to_rgb: Callable[[int, torch.Tensor], torch.Tensor],
    return_all_scales: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """G's image at `lod`, at full resolution: lerp(new_rgb, upscale(old_rgb), f), nearest-upsampled; or
    (return_all_scales) every level's image, low to high resolution, as MSG-GAN uses them.

    run_level(level, x) runs one level's layers (x is None for level 0); to_rgb(level, x) is its ToRGB.
    """
    if return_all_scales:
        x, images = None, []
        for level in range(num_levels):
            x = run_level(level, x)
            images.append(to_rgb(level, x))
        return images
    top, frac = split_lod(lod, num_levels)
    x = below = None
    for level in range(top + 1):
        below, x = x, run_level(level, x)
    img = to_rgb(top, x)
    if frac > 0:
        img = torch.lerp(img, upscale_nearest(to_rgb(top - 1, below), 2), frac)
    return upscale_nearest(img, 2 ** (num_levels - 1 - top))


def grow_input(
    img: torch.Tensor,
    lod: float,
    num_levels: int,
    from_rgb: Callable[[int, torch.Tensor], torch.Tensor],
    run_level: Callable[[int, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """D's output for a full-resolution `img` at `lod`: the top level reads the image at its resolution and
    its result is blended with fromrgb(downscale(img)) of the level below by f, then the lower levels run.

    run_level(level, x) runs one level (level 0 is the 4x4 head and returns D's output).
    """
    top, frac = split_lod(lod, num_levels)
    img = downscale_box(img, 2 ** (num_levels - 1 - top))
    x = run_level(top, from_rgb(top, img))
    if frac > 0:
        x = torch.lerp(x, from_rgb(top - 1, downscale_box(img, 2)), frac)
    for level in range(top - 1, -1, -1):
        x = run_level(level, x)
    return x
