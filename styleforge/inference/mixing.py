"""The style-mixing figure: rows of seeds against columns of seeds, styles swapped in chosen layers.

Row sources give the listed styles to column sources: cell (r, c) takes its ws from the column's seed,
except in the listed style layers, which come from the row's seed. With the coarse layers 0-6 a cell keeps
the column source's colours and fine detail and takes pose and shape from the row source. (The official
style_mixing.py script does the reverse, column styles into row sources; swap --rows and --cols to
reproduce its figures.)
"""

from __future__ import annotations

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.generate import synthesize
from styleforge.inference.seeds import class_labels, network_device, seeds_to_z


def mix_styles(base_ws: torch.Tensor, donor_ws: torch.Tensor, styles: list[int]) -> torch.Tensor:
    """ws [num_ws, w_dim] of a mixed image: the base source's, with the donor source's in `styles`."""
    ws = base_ws.clone()
    ws[styles] = donor_ws[styles]
    return ws


@torch.no_grad()
def style_mixing_figure(
    G: torch.nn.Module,
    row_seeds: list[int],
    col_seeds: list[int],
    styles: list[int],
    psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The figure as one uint8 image [(rows+1)*H, (cols+1)*W, C]: top row = column sources, left column =
    row sources, top-left corner black, cell (r, c) = mix_styles(ws[column c], ws[row r], styles)."""
    if not row_seeds or not col_seeds:
        raise UserError("style mixing needs at least one row seed and one column seed")
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise UserError(f"--styles {bad}: this network has style layers 0..{G.num_ws - 1}")
    device = torch.device(device) if device is not None else network_device(G)
    G = G.to(device)
    seeds = list(dict.fromkeys(row_seeds + col_seeds))
    z = seeds_to_z(seeds, G.z_dim, device)  # [S, z_dim]
    c = class_labels(G, class_idx, len(seeds), device)  # [S, c_dim]
    all_ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff)  # [S, num_ws, w_dim]
    ws_of = dict(zip(seeds, all_ws))
    image_of = dict(zip(seeds, to_uint8(synthesize(G, all_ws, noise_mode))))

    H, W, C = image_of[seeds[0]].shape
    figure = np.zeros([(len(row_seeds) + 1) * H, (len(col_seeds) + 1) * W, C], dtype=np.uint8)
    for c, seed in enumerate(col_seeds, start=1):
        figure[:H, c * W:(c + 1) * W] = image_of[seed]
    for r, row_seed in enumerate(row_seeds, start=1):
        figure[r * H:(r + 1) * H, :W] = image_of[row_seed]
        mixed = torch.stack([mix_styles(ws_of[s], ws_of[row_seed], styles) for s in col_seeds])
        row = to_uint8(synthesize(G, mixed, noise_mode))  # [cols, H, W, C]
        figure[r * H:(r + 1) * H, W:] = np.concatenate(list(row), axis=1)
    return figure
