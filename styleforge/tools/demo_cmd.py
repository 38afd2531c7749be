"""Run the demo: train a small conditional StyleGAN2 on the built-in digits on the CPU, write a report."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outdir", default="demo-out", help="where the data set, run and report go")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget (default 8)")
    parser.add_argument("--resolution", type=int, default=32, help="image size (default 32)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from styleforge.tools.demo import run_demo

    run_demo(args.outdir, minutes=args.minutes, resolution=args.resolution, seed=args.seed)
    return 0
