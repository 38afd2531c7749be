"""Generate images from seeds with a trained generator.

One PNG per seed (seed0042.png), and with --grid also grid.png. With --all-scales (MSG-StyleGAN networks) each
seed's PNG (seed0042-scales.png) shows its images at every scale side by side, 4x4 to full resolution, each
enlarged to full resolution. A seed names the same image as in the
official NVlabs tools (z = RandomState(seed).randn(1, z_dim)).

Examples:
  styleforge generate --network run/ckpt.safetensors --seeds 0-99,200 --trunc 0.7 --outdir out
  styleforge generate --network cifar.safetensors --seeds 0-35 --class 3 --outdir out --grid 6x6
  styleforge generate --network msg.safetensors --seeds 0-7 --all-scales --outdir out
  styleforge generate --network G.safetensors --settings studio/studio-0001.json --outdir out  (a studio image)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

import styleforge
from styleforge.errors import UserError
from styleforge.images import make_grid, save_image
from styleforge.inference.generate import NOISE_MODES, default_truncation, generate, save_seed_images
from styleforge.inference.seeds import default_device, parse_grid, parse_int_list

CHUNK = 64  # images generated (and held in memory) at a time


def add_network_arguments(parser: argparse.ArgumentParser, truncation: bool = False) -> None:
    """--network and --device, shared by the tools that use a trained generator; with `truncation`, --trunc
    and --trunc-cutoff, whose defaults are the model's (see `load_generator`)."""
    parser.add_argument("--network", required=True, metavar="FILE",
                        help="network file or training checkpoint (.safetensors); G_ema is used")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the check of the file's SHA-256 checksums (faster loading of large files)")
    if truncation:
        parser.add_argument("--trunc", type=float, default=None,
                            help="truncation psi (default: the model's, e.g. 0.7 for StyleGAN v1; else 1: none)")
        parser.add_argument("--trunc-cutoff", type=int, default=None,
                            help="truncate only the first N ws (default: the model's, else all)")


def load_generator(args: argparse.Namespace):
    """G_ema of --network; fills --trunc and --trunc-cutoff left unset with the model's own."""
    G = styleforge.load(args.network, device=args.device or default_device(), verify=args.verify)
    if getattr(args, "trunc", False) is None:
        args.trunc, cutoff = default_truncation(args.network)
        args.trunc_cutoff = cutoff if args.trunc_cutoff is None else args.trunc_cutoff
    return G


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, truncation=True)
    parser.add_argument("--seeds", default=None, help="seeds, e.g. 0-99,200")
    parser.add_argument("--settings", default=None, metavar="FILE",
                        help="instead of --seeds: the image a studio settings file (studio-NNNN.json) describes")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="default: const")
    parser.add_argument("--outdir", required=True, help="where the PNGs go")
    parser.add_argument("--grid", default=None, metavar="COLSxROWS", help="also save grid.png, e.g. 10x10")
    parser.add_argument("--all-scales", action="store_true",
                        help="MSG-StyleGAN: every scale of a seed side by side (seed0042-scales.png)")


def run(args: argparse.Namespace) -> int:
    if args.settings:
        return run_settings(args)
    if args.seeds is None:
        raise UserError("name the images with --seeds (or draw a studio image with --settings FILE)")
    seeds = parse_int_list(args.seeds, "--seeds")
    grid = parse_grid(args.grid) if args.grid else None
    if grid and len(seeds) > grid[0] * grid[1]:
        raise UserError(f"--grid {args.grid} holds {grid[0] * grid[1]} images but --seeds names {len(seeds)}")
    G = load_generator(args)
    kept = []
    for start in tqdm(range(0, len(seeds), CHUNK), desc="generate", unit="chunk", disable=len(seeds) <= CHUNK):
        chunk = seeds[start:start + CHUNK]
        images = generate(G, chunk, psi=args.trunc, truncation_cutoff=args.trunc_cutoff, class_idx=args.class_idx,
                          noise_mode=args.noise_mode, all_scales=args.all_scales)
        save_seed_images(images, chunk, args.outdir, suffix="-scales" if args.all_scales else "")
        if grid:
            kept.append(images)
    print(f"wrote {len(seeds)} images to {args.outdir}")
    if grid:
        save_image(make_grid(np.concatenate(kept), cols=grid[0]), Path(args.outdir) / "grid.png")
        print(f"wrote {Path(args.outdir) / 'grid.png'}")
    return 0


def run_settings(args: argparse.Namespace) -> int:
    given = [flag for flag, value in (("--seeds", args.seeds), ("--trunc-cutoff", args.trunc_cutoff),
                                      ("--class", args.class_idx), ("--grid", args.grid),
                                      ("--all-scales", args.all_scales or None)) if value is not None]
    if given:
        raise UserError(f"--settings {args.settings} holds the whole image; leave out {', '.join(given)}")
    from styleforge.inference.render import draw_settings_file

    print(f"wrote {draw_settings_file(load_generator(args), args.settings, args.outdir)}")
    return 0
