"""What a loaded generator can do, as the studio page needs to know it.

Optional abilities are detected from the network (the same checks the command-line tools use):
- spatial heatmaps (EqGAN-SA): synthesis then takes `centres=HeatmapSpec(...)`.
- every scale (MSG-StyleGAN): synthesis then returns the images low -> high resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from styleforge.inference.multiscale import is_multiscale
from styleforge.inference.seeds import is_spatial
from styleforge.networks.heatmaps import NUM_CENTRES


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


def describe(G: torch.nn.Module) -> NetworkInfo:
    spatial = is_spatial(G)
    return NetworkInfo(
        z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws, resolution=G.img_resolution,
        channels=G.img_channels, name=getattr(G, "registry_name", type(G).__name__),
        truncation=getattr(G.mapping, "w_avg", None) is not None and getattr(G.mapping, "w_avg_beta", 0) is not None,
        spatial=spatial,
        centres_per_level=tuple(NUM_CENTRES) if spatial else (),
        multiscale=is_multiscale(G),
    )
