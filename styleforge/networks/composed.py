"""The generator interface around any mapping and synthesis network: G(z, c) = synthesis(mapping(z, c)).

Generators of the family other than StyleGAN2 (StyleGAN v1, ProGAN, MSG-StyleGAN) build their own mapping
and synthesis networks and inherit the interface (attributes and `forward`) from `ComposedGenerator`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ComposedGenerator(nn.Module):
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int

    def compose(self, mapping: nn.Module, synthesis: nn.Module, z_dim: int, c_dim: int) -> None:
        """Installs the two networks and the interface attributes (w_dim, num_ws, resolution from them)."""
        self.mapping = mapping
        self.synthesis = synthesis
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = synthesis.w_dim
        self.num_ws = synthesis.num_ws
        self.img_resolution = synthesis.img_resolution
        self.img_channels = synthesis.img_channels

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:  # [N, z_dim], [N, c_dim] -> [N, img_channels, res, res]
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas, **synthesis_kwargs)


def channels_per_resolution(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """min(channel_base / res, channel_max) for res = 4 .. img_resolution (ProGAN's fmap_base 8192 is
    channel_base 16384 in this convention)."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, img_resolution.bit_length())}
