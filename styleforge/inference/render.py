"""Pixels from studio settings: the one function the page and `styleforge generate --settings` share.

Plain settings (a seed, truncation, class, noise mode) go through exactly the steps of
`tools.generate.generate`, so they give the same pixels as `styleforge generate --seeds`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from styleforge.images import save_image, to_uint8
from styleforge.inference.generate import seeded_torch_rng
from styleforge.inference.interpolation import slerp
from styleforge.inference.mixing import mix_styles
from styleforge.inference.multiscale import is_multiscale
from styleforge.inference.network_info import describe
from styleforge.inference.seeds import class_labels, is_spatial, network_device, seed_heatmap_spec, seeds_to_z
from styleforge.inference.settings import Heatmaps, ImageSettings, parse_settings, read_settings_file
from styleforge.networks.heatmaps import HeatmapSpec


@dataclass
class Rendered:
    image: np.ndarray  # [H, W, C] uint8, full resolution
    scales: list[np.ndarray]  # [h, w, C] uint8 low -> high resolution (MSG-StyleGAN); [image] otherwise
    settings: ImageSettings  # what was drawn, heatmap centres filled in


def default_heatmaps(seed: int) -> Heatmaps:
    """The heatmap centres the studio starts from for a seed: those `styleforge edit` starts from."""
    spec = seed_heatmap_spec(seed, "cpu")
    centres = tuple(tuple((y, x) for y, x in level[0].tolist()) for level in spec.centres)
    sigmas = tuple(tuple(level[0].tolist()) for level in spec.sigmas)
    return Heatmaps(centres, sigmas)


def heatmap_spec(heatmaps: Heatmaps, device: torch.device):
    """The settings' centres as the EqGAN-SA synthesis network takes them (a batch of one)."""
    centres = tuple(torch.tensor([level], dtype=torch.float32, device=device) for level in heatmaps.centres)
    sigmas = tuple(torch.tensor([level], dtype=torch.float32, device=device) for level in heatmaps.sigmas)
    return HeatmapSpec(centres, sigmas)  # [1, k, 2] and [1, k] per level


@torch.no_grad()
def settings_ws(G: torch.nn.Module, settings: ImageSettings, device: torch.device) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of the settings: the seed's (or a point on the way to the interpolation seed),
    with the mixing seed's ws in the mixed layers."""
    c = class_labels(G, settings.class_idx, 1, device)  # [1, c_dim]

    def mapping(z: torch.Tensor) -> torch.Tensor:
        return G.mapping(z, c, truncation_psi=settings.psi, truncation_cutoff=settings.cutoff)

    z = seeds_to_z([settings.seed], G.z_dim, device)  # [1, z_dim]
    interp = settings.interp
    if interp is None:
        ws = mapping(z)
    elif interp.space == "z":  # Z is a Gaussian, whose mass lies near a sphere: walk along it
        ws = mapping(slerp(z, seeds_to_z([interp.seed], G.z_dim, device), interp.t))
    else:
        ws = torch.lerp(mapping(z), mapping(seeds_to_z([interp.seed], G.z_dim, device)), interp.t)
    if settings.mix is not None:
        donor = mapping(seeds_to_z([settings.mix.seed], G.z_dim, device))
        ws = mix_styles(ws[0], donor[0], settings.mix.layers)[None]
    return ws  # [1, num_ws, w_dim]


@torch.no_grad()
def render(G: torch.nn.Module, settings: ImageSettings) -> Rendered:
    """Draws one image on G's device."""
    device = network_device(G)
    ws = settings_ws(G, settings, device)
    synthesis_kwargs = {}
    if is_spatial(G):
        if settings.heatmaps is None:
            settings = replace(settings, heatmaps=default_heatmaps(settings.seed))
        synthesis_kwargs["centres"] = heatmap_spec(settings.heatmaps, device)
    if is_multiscale(G):
        synthesis_kwargs["return_all_scales"] = True
    # As in tools.generate: random noise is drawn from a generator seeded by the image's seed.
    with seeded_torch_rng(settings.seed if settings.noise_mode == "random" else None, device):
        out = G.synthesis(ws, noise_mode=settings.noise_mode, **synthesis_kwargs)
    scales = [to_uint8(img.float())[0] for img in (out if isinstance(out, list | tuple) else [out])]
    return Rendered(image=scales[-1], scales=scales, settings=settings)


def draw_settings_file(G: torch.nn.Module, settings_file: str | os.PathLike, outdir: str | os.PathLike) -> Path:
    """`styleforge generate --settings`: draws the image a studio settings file describes into
    outdir/<file stem>.png and returns that path."""
    settings = parse_settings(read_settings_file(settings_file), describe(G))
    out = Path(outdir) / (Path(settings_file).stem + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(render(G, settings).image, out)
    return out
