"""Import an official NVlabs StyleGAN2 pickle (.pkl) into a StyleForge network file.

Reads stylegan2-ada-pytorch pickles (network-snapshot-*.pkl, published models) and the StyleGAN2
networks of stylegan3 pickles without running any code they contain, and writes G, D and G_ema into
one .safetensors file for every StyleForge tool. A seed then names the same image as in the official
tools.

Example:
  styleforge import --pkl ffhq.pkl --out ffhq.safetensors
"""

from __future__ import annotations

import argparse

from styleforge.tools.importer import import_official_pickle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pkl", required=True, metavar="PATH", help="official network pickle")
    parser.add_argument("--out", required=True, metavar="FILE", help="StyleForge network file (.safetensors)")


def run(args: argparse.Namespace) -> int:
    result = import_official_pickle(args.pkl, args.out)
    counts = ", ".join(f"{key} ({n} tensors)" for key, n in result.networks.items())
    print(f"wrote {result.path}: {counts}")
    if result.skipped:
        print(f"not imported: {', '.join(result.skipped)}")
    return 0
