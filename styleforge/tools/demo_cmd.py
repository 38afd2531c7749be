"""Run the demo: train a small conditional StyleGAN2 on the built-in digits on the CPU, write a report."""

from __future__ import annotations

import argparse
import math

from styleforge.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outdir", default="demo-out", help="where the data set, run and report go")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget (default 8)")
    parser.add_argument("--resolution", type=int, default=32, help="image size (default 32)")
    parser.add_argument("--seed", type=int, default=0)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuses bad values before the demo writes anything."""
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UserError(f"--minutes {args.minutes}: must be a positive number")
    if args.resolution < 4 or args.resolution & (args.resolution - 1):
        raise UserError(f"--resolution {args.resolution}: must be a power of two >= 4")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed}: must be >= 0")


def run(args: argparse.Namespace) -> int:
    from styleforge.tools.demo import run_demo

    check_arguments(args)

    run_demo(args.outdir, minutes=args.minutes, resolution=args.resolution, seed=args.seed)
    return 0
