"""The StyleGAN2 generator G(z, c) = synthesis(mapping(z, c)), and style mixing."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styleforge.networks.mapping import MappingNetwork
from styleforge.networks.persistence import persistent
from styleforge.networks.spec import NetworkSpec
from styleforge.networks.synthesis import SynthesisNetwork
from styleforge.registry import GENERATORS


def style_mix(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int | torch.Tensor) -> torch.Tensor:
    """ws1 for the layers before `crossover`, ws2 from `crossover` on.

    ws: [N, num_ws, w_dim]; crossover: an int, or an [N] tensor of per-sample crossover indices.
    """
    idx = torch.arange(ws1.shape[1], device=ws1.device)
    crossover = torch.as_tensor(crossover, device=ws1.device).reshape(-1, 1)  # [N or 1, 1]
    use_second = (idx[None, :] >= crossover).unsqueeze(-1)  # [N or 1, num_ws, 1]
    return torch.where(use_second, ws2, ws1)


@GENERATORS.register("stylegan2")
@persistent("generator/stylegan2")
class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator (Karras et al. 2020), official architecture and parameter names.

    mapping_kwargs go to `MappingNetwork` (num_layers, lr_multiplier, w_avg_beta, ...),
    synthesis_kwargs to `SynthesisNetwork` (channel_base, channel_max, num_fp16_res, conv_clamp,
    architecture, use_noise, use_sel, ...).
    """

    supports_sel = True  # EqGAN-SA: synthesis_kwargs use_sel

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        synthesis = dict(channel_base=spec.channel_base, channel_max=spec.channel_max,
                         num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp, architecture=spec.g_architecture)
        if spec.use_sel:
            synthesis["use_sel"] = True
        return dict(z_dim=spec.z_dim, c_dim=spec.c_dim, w_dim=spec.w_dim, img_resolution=spec.img_resolution,
                    img_channels=spec.img_channels, mapping_kwargs=dict(num_layers=spec.mapping_layers),
                    synthesis_kwargs=synthesis)

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 256,
        img_channels: int = 3,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_emas: bool = False,
        **synthesis_kwargs,
    ) -> torch.Tensor:  # [N, z_dim], [N, c_dim] -> [N, img_channels, res, res]
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas, **synthesis_kwargs)
