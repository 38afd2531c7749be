"""Numbers for official networks' parameters, derived from each parameter's name alone.

The same numbers are computed by the official code (scripts/reference_eqgan.py, which records that code's
outputs in tests/official/data/) and by the tests (which build pickles from them), so no weights need storing. Plain
arithmetic, no random generator: the same on every torch version and device.
"""

from __future__ import annotations

import math
import zlib

import torch


def official_value(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """float32 numbers of `shape` for the official parameter `name`; biases small, affine biases near 1
    (where the official initialization puts them), so that images stay in a sane range."""
    phase = zlib.crc32(name.encode()) % 1000
    v = torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 0.7 + phase).reshape(shape)
    if name.endswith("affine.bias"):
        v = 1 + 0.1 * v
    elif name.endswith(("bias", "noise_strength")):
        v = 0.2 * v
    return v.float()


def fill_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with every tensor but the fixed resampling filters replaced by `official_value`."""
    return {k: v if k.endswith("resample_filter") else official_value(k, tuple(v.shape)) for k, v in state.items()}
