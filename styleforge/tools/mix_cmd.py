"""Style-mixing figure: row seeds x column seeds, styles swapped in chosen layers.

Top row = column sources, left column = row sources; row sources give their --styles layers to the
column sources: cell (r, c) = the column source with the row source's ws in those layers. Writes one PNG.

Example:
  styleforge mix --network ffhq.safetensors --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --out mix.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.images import save_image
from styleforge.inference.generate import NOISE_MODES
from styleforge.inference.mixing import style_mixing_figure
from styleforge.inference.seeds import parse_int_list
from styleforge.tools.generate_cmd import add_network_arguments, load_generator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, truncation=True)
    parser.add_argument("--rows", required=True, help="row seeds, e.g. 85,100,75")
    parser.add_argument("--cols", required=True, help="column seeds, e.g. 55,821,1789")
    parser.add_argument("--styles", default="0-6", help="style layers taken from the column seeds (default 0-6)")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="default: const")
    parser.add_argument("--out", required=True, help="output PNG")


def run(args: argparse.Namespace) -> int:
    rows = parse_int_list(args.rows, "--rows")
    cols = parse_int_list(args.cols, "--cols")
    styles = parse_int_list(args.styles, "--styles")
    G = load_generator(args)
    figure = style_mixing_figure(G, rows, cols, styles, psi=args.trunc, truncation_cutoff=args.trunc_cutoff,
                                 class_idx=args.class_idx, noise_mode=args.noise_mode)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(figure, args.out)
    print(f"wrote {args.out}")
    return 0
