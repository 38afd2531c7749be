"""The generator interface around any mapping and synthesis network: G(z, c) = synthesis(mapping(z, c)).

Generators of the family other than StyleGAN2 (StyleGAN v1, ProGAN, MSG-StyleGAN) build their own mapping
and synthesis networks and inherit the interface (attributes and `forward`) from `ComposedGenerator`;
`MappedGenerator` puts StyleGAN's mapping network in front of a synthesis network class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from styleforge.networks.generator import StyleGAN2Generator
from styleforge.networks.mapping import MappingNetwork
from styleforge.networks.spec import NetworkSpec


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

    forward = StyleGAN2Generator.forward  # synthesis(mapping(z, c, truncation), noise_mode, ...)


class MappedGenerator(ComposedGenerator):
    """StyleGAN's mapping network (`MappingNetwork`, with w_avg) in front of the class's `synthesis_class`.

    mapping_kwargs go to `MappingNetwork` (num_layers, lr_multiplier, w_avg_beta), synthesis_kwargs to the
    synthesis network (channel_base, channel_max, ...).
    """

    synthesis_class: type[nn.Module]

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: int = 256,
                 img_channels: int = 3, mapping_kwargs: dict[str, Any] | None = None,
                 synthesis_kwargs: dict[str, Any] | None = None):
        super().__init__()
        synthesis = self.synthesis_class(w_dim, img_resolution, img_channels, **(synthesis_kwargs or {}))
        mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=synthesis.num_ws,
                                 **(mapping_kwargs or {}))
        self.compose(mapping, synthesis, z_dim, c_dim)

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        return dict(z_dim=spec.z_dim, c_dim=spec.c_dim, w_dim=spec.w_dim, img_resolution=spec.img_resolution,
                    img_channels=spec.img_channels, mapping_kwargs=dict(num_layers=spec.mapping_layers),
                    synthesis_kwargs=dict(channel_base=spec.channel_base, channel_max=spec.channel_max))


def channels_per_resolution(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """min(channel_base / res, channel_max) for res = 4 .. img_resolution (ProGAN's fmap_base 8192 is
    channel_base 16384 in this convention)."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, img_resolution.bit_length())}
