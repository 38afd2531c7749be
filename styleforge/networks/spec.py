"""What a registered network is built from in training: the data's shape and the run's network options,
named as the constructors name them. Each registered network class turns a spec into its constructor
kwargs (`kwargs_from_spec`), so the training loop knows no network; `--g-kwargs` / `--d-kwargs` go on top.

Capabilities that losses and regularizers check before anything is built are class attributes:
`emits_all_scales` (G: `synthesis(ws, return_all_scales=True)`), `reads_all_scales` (D takes the scales
as a list), `supports_sel` (G has EqGAN-SA's spatial encoding layers), `supports_feature_mixing`
(D: `D(img, c, fsm=...)`), `has_blocks` (D: `D.blocks` by feature size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class NetworkSpec:
    img_resolution: int
    img_channels: int
    c_dim: int
    z_dim: int
    w_dim: int
    mapping_layers: int  # depth of the mapping network
    channel_base: int  # channels at resolution r: min(channel_base / r, channel_max)
    channel_max: int
    mbstd_group_size: int | None
    num_fp16_res: int  # reduced precision on the top N resolutions (CUDA)
    conv_clamp: float | None
    g_architecture: str  # orig, skip, resnet
    d_architecture: str  # orig, skip, resnet
    use_sel: bool  # EqGAN-SA's spatial encoding layers in G


def merge_kwargs(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` on top; nested dicts (e.g. synthesis_kwargs) are merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_kwargs(out[key], value) if nested else value
    return out


def build_network(cls: type[nn.Module], spec: NetworkSpec, overrides: dict[str, Any] | None = None) -> nn.Module:
    """The registered network `cls` for `spec`, with `overrides` (the user's extra kwargs) on top."""
    return cls(**merge_kwargs(cls.kwargs_from_spec(spec), overrides or {}))
