"""Looping latent-interpolation video (MP4) of a trained generator.

Each grid cell walks through its share of the seeds and wraps around, so the video loops seamlessly:
slerp between z keyframes (--space z) or lerp between w keyframes (--space w). Needs the `video` extra.

Example:
  styleforge video --network ffhq.safetensors --seeds 0-31 --grid 4x2 --seconds 8 --fps 30 --out lerp.mp4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.errors import UserError
from styleforge.inference.generate import NOISE_MODES
from styleforge.inference.interpolation import SPACES
from styleforge.inference.seeds import parse_grid, parse_int_list
from styleforge.tools.generate_cmd import add_network_arguments, load_generator
from styleforge.tools.video import interpolation_frames, require_video_extra, write_video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, truncation=True)
    parser.add_argument("--seeds", required=True, help="keyframe seeds, split evenly over the grid cells")
    parser.add_argument("--grid", default="1x1", metavar="COLSxROWS", help="default 1x1")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one loop (default 8)")
    parser.add_argument("--fps", type=float, default=30.0, help="default 30")
    parser.add_argument("--space", choices=SPACES, default="z", help="interpolate in Z (slerp) or W (lerp)")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="default: const")
    parser.add_argument("--out", required=True, help="output .mp4")


def run(args: argparse.Namespace) -> int:
    require_video_extra()  # fail before any work when the video extra is missing
    seeds = parse_int_list(args.seeds, "--seeds")
    grid = parse_grid(args.grid)
    num_frames = round(args.seconds * args.fps)
    if num_frames < 1:
        raise UserError(f"--seconds {args.seconds} at --fps {args.fps} makes no frames")
    G = load_generator(args)
    frames = interpolation_frames(G, seeds, grid, num_frames, space=args.space, psi=args.trunc,
                                  truncation_cutoff=args.trunc_cutoff, class_idx=args.class_idx,
                                  noise_mode=args.noise_mode)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    count = write_video(frames, args.out, fps=args.fps)
    print(f"wrote {args.out} ({count} frames)")
    return 0
