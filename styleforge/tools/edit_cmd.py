"""Move the object or its parts in an EqGAN-SA image by moving its heatmap centres.

Writes before.png, after.png, before_after.png (side by side) and edit.json (the centres, (y, x), before and
after) to --outdir. The seed names the latent and the starting heatmaps (those the studio starts from).

--move LEVEL:DX,DY (repeatable; moves add up):
  level 0  the object: the level-1 heatmap with all its parts
  level 1  the parts (both level-2 centres)
  level 2  the fine parts (the four level-3 centres)
  DX, DY in heatmap coordinates, where the image spans [-1, 1]: DX > 0 moves right, DY > 0 moves down
  (DX = 1 is half the image width).

Examples:
  styleforge edit --network cats.safetensors --seed 7 --move 0:0.3,0 --outdir edit    # object to the right
  styleforge edit --network cats.safetensors --seed 7 --move 0:0,-0.2 --move 1:0.1,0 --trunc 0.7 --outdir edit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from styleforge.errors import UserError
from styleforge.images import save_image
from styleforge.inference.generate import NOISE_MODES
from styleforge.tools.generate_cmd import add_network_arguments, load_generator
from styleforge.tools.heatmap_edit import edit_heatmaps, parse_move, spec_to_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, truncation=True)
    parser.add_argument("--seed", type=int, required=True, help="the image (latent and starting heatmaps)")
    parser.add_argument("--move", action="append", default=[], metavar="LEVEL:DX,DY",
                        help="shift level 0 (object), 1 (parts) or 2 (fine parts) by DX right, DY down; repeatable")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="default: const")
    parser.add_argument("--outdir", required=True, help="where the PNGs and edit.json go")


def run(args: argparse.Namespace) -> int:
    if not args.move:
        raise UserError("say what to move with --move LEVEL:DX,DY, e.g. --move 0:0.2,0")
    moves = [parse_move(text) for text in args.move]
    G = load_generator(args)
    before, after, spec_before, spec_after = edit_heatmaps(G, args.seed, moves, psi=args.trunc,
                                                           truncation_cutoff=args.trunc_cutoff,
                                                           class_idx=args.class_idx, noise_mode=args.noise_mode)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    save_image(before, outdir / "before.png")
    save_image(after, outdir / "after.png")
    save_image(np.concatenate([before, after], axis=1), outdir / "before_after.png")  # [H, 2W, C]
    record = {"network": str(args.network), "seed": args.seed, "psi": args.trunc, "cutoff": args.trunc_cutoff,
              "class": args.class_idx,
              "noise_mode": args.noise_mode, "moves": [vars(m) for m in moves],
              "before": spec_to_json(spec_before), "after": spec_to_json(spec_after)}
    (outdir / "edit.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote before.png, after.png, before_after.png and edit.json to {outdir}")
    return 0
