"""What a loaded generator can do, as the studio page needs to know it.

Optional abilities are detected, not assumed, so the studio works with whichever generators exist:
- spatial heatmaps (EqGAN-SA): `G.synthesis.heatmap_encoder` is set and `styleforge.networks.heatmaps`
  exists; synthesis then takes `centres=HeatmapSpec(...)`.
- every scale (MSG-StyleGAN): `G.synthesis.forward` accepts `return_all_scales` and then returns the
  images low -> high resolution.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import asdict, dataclass
from types import ModuleType

import torch


@dataclass(frozen=True)
class NetworkInfo:
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    resolution: int
    channels: int
    name: str  # registry name, e.g. "generator/stylegan2"
    truncation: bool  # tracks w_avg, so psi != 1 is possible
    spatial: bool  # EqGAN-SA heatmap centres can be set
    centres_per_level: tuple[int, ...]  # (1, 2, 4) for spatial networks, () otherwise
    multiscale: bool  # MSG-StyleGAN: synthesis can return every scale

    def to_json(self) -> dict:
        return asdict(self)


def heatmaps_module() -> ModuleType | None:
    """EqGAN-SA's heatmap module, when this install of StyleForge has it."""
    try:
        return importlib.import_module("styleforge.networks.heatmaps")
    except ImportError:
        return None


def is_spatial(G: torch.nn.Module) -> bool:
    return getattr(G.synthesis, "heatmap_encoder", None) is not None and heatmaps_module() is not None


def is_multiscale(G: torch.nn.Module) -> bool:
    try:
        return "return_all_scales" in inspect.signature(G.synthesis.forward).parameters
    except (TypeError, ValueError):
        return False


def describe(G: torch.nn.Module) -> NetworkInfo:
    spatial = is_spatial(G)
    return NetworkInfo(
        z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws, resolution=G.img_resolution,
        channels=G.img_channels, name=getattr(G, "registry_name", type(G).__name__),
        truncation=getattr(G.mapping, "w_avg", None) is not None and getattr(G.mapping, "w_avg_beta", 0) is not None,
        spatial=spatial,
        centres_per_level=tuple(heatmaps_module().NUM_CENTRES) if spatial else (),
        multiscale=is_multiscale(G),
    )
