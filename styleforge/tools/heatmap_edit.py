"""Editing an EqGAN-SA image by moving its heatmap centres: the library function behind `styleforge edit`.

A seed names both its latent (as in `tools.generate`) and its heatmaps: EqGAN-SA's random draw from torch's
generator seeded by the seed, on the CPU so that every device starts from the same centres (the studio
starts from the same ones).

Move convention (`Move(level, dx, dy)`, on the command line `LEVEL:DX,DY`):
- level 0 moves the object: the level-1 centre together with all its parts (levels 2 and 3);
- level 1 moves the parts: both level-2 centres;
- level 2 moves the fine parts: the four level-3 centres.
dx, dy are in the heatmaps' coordinates, where the image spans [-1, 1] on each axis: x grows to the right,
y downwards, so dx = 1 moves by half the image width. Centres themselves are stored (y, x).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.images import to_uint8
from styleforge.inference.generate import NOISE_MODES, seeded_torch_rng
from styleforge.inference.seeds import class_labels, is_spatial, network_device, seed_heatmap_spec, seeds_to_z
from styleforge.networks.heatmaps import HeatmapSpec

MOVE_LEVELS = {0: (1, 2, 3), 1: (2,), 2: (3,)}  # move level -> the heatmap levels whose centres it shifts
MOVE_NAMES = {0: "object", 1: "parts", 2: "fine parts"}
_MOVE = re.compile(r"^\s*(\d+)\s*:\s*([^,]+),([^,]+)$")


@dataclass(frozen=True)
class Move:
    """Shift the centres of `level` (0 object, 1 parts, 2 fine parts) by dx (right) and dy (down)."""

    level: int
    dx: float
    dy: float


def parse_move(text: str) -> Move:
    """'0:0.2,-0.1' -> Move(level=0, dx=0.2, dy=-0.1)."""
    match = _MOVE.match(text)
    if not match:
        raise UserError(f"--move '{text}': expected LEVEL:DX,DY, e.g. 0:0.2,-0.1")
    level = int(match.group(1))
    if level not in MOVE_LEVELS:
        choices = ", ".join(f"{k} {name}" for k, name in MOVE_NAMES.items())
        raise UserError(f"--move '{text}': level {level} does not exist ({choices})")
    try:
        dx, dy = float(match.group(2)), float(match.group(3))
    except ValueError:
        raise UserError(f"--move '{text}': DX and DY must be numbers") from None
    if not (np.isfinite(dx) and np.isfinite(dy)):
        raise UserError(f"--move '{text}': DX and DY must be finite")
    return Move(level, dx, dy)


def apply_moves(spec: HeatmapSpec, moves: Sequence[Move]) -> HeatmapSpec:
    """The spec with every move applied in turn (moves add up)."""
    for move in moves:
        spec = spec.moved((move.dy, move.dx), levels=MOVE_LEVELS[move.level])  # HeatmapSpec takes (y, x)
    return spec


def spec_to_json(spec: HeatmapSpec) -> dict:
    """The first image's centres ([[y, x], ...] per level) and widths, as the studio's settings files hold them."""
    return {"centres": [level[0].tolist() for level in spec.centres],
            "sigmas": [level[0].tolist() for level in spec.sigmas]}


@torch.no_grad()
def render_with_heatmaps(G: torch.nn.Module, ws: torch.Tensor, spec: HeatmapSpec, noise_mode: str = "const",
                         noise_seed: int | None = None) -> np.ndarray:
    """ws [1, num_ws, w_dim] drawn with the given heatmaps -> uint8 [H, W, C]. Random noise comes from `noise_seed`,
    so two renders of one seed differ only by their heatmaps."""
    with seeded_torch_rng(noise_seed if noise_mode == "random" else None, ws.device):
        img = G.synthesis(ws, noise_mode=noise_mode, centres=spec)  # [1, C, H, W]
    return to_uint8(img.float())[0]


@torch.no_grad()
def edit_heatmaps(
    G: torch.nn.Module,
    seed: int,
    moves: Sequence[Move | tuple[int, float, float]],
    psi: float = 1,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
) -> tuple[np.ndarray, np.ndarray, HeatmapSpec, HeatmapSpec]:
    """The seed's image before and after moving its heatmap centres: (before uint8 [H, W, C], after uint8
    [H, W, C], spec_before, spec_after). `moves` are `Move`s or (level, dx, dy) tuples (see the module docstring)."""
    if not is_spatial(G):
        raise UserError(f"{type(G).__name__}: this network has no heatmaps to move (edit needs an EqGAN-SA network, "
                        "trained with --sel)")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode '{noise_mode}': choose one of {NOISE_MODES}")
    moves = [m if isinstance(m, Move) else Move(*m) for m in moves]
    for move in moves:
        if move.level not in MOVE_LEVELS:
            raise UserError(f"move level {move.level}: choose 0 (object), 1 (parts) or 2 (fine parts)")
    device = network_device(G)
    z = seeds_to_z([seed], G.z_dim, device)  # [1, z_dim]
    ws = G.mapping(z, class_labels(G, class_idx, 1, device), truncation_psi=psi,
                   truncation_cutoff=truncation_cutoff)  # [1, num_ws, w_dim]
    before_spec = seed_heatmap_spec(seed, device)
    after_spec = apply_moves(before_spec, moves)
    before = render_with_heatmaps(G, ws, before_spec, noise_mode, seed)
    after = render_with_heatmaps(G, ws, after_spec, noise_mode, seed)
    return before, after, before_spec, after_spec
