"""Import an official network pickle (.pkl) into a StyleForge network file, or list what it holds.

Reads, without running any code they contain:
- PyTorch pickles of stylegan2-ada-pytorch (network-snapshot-*.pkl, published models), the StyleGAN2
  networks of stylegan3 pickles, and EqGAN-SA snapshots;
- TensorFlow pickles (no TensorFlow needed) of StyleGAN2 (NVlabs/stylegan2, stylegan2-ada), StyleGAN v1
  (NVlabs/stylegan) and ProGAN (progressive_growing_of_gans).
G, D and G_ema (a TF pickle's Gs) go into one .safetensors file for every StyleForge tool. A seed then
names the same image as in the official tools.

Examples:
  styleforge import --pkl ffhq.pkl --out ffhq.safetensors
  styleforge import --list karras2019stylegan-ffhq-1024x1024.pkl
"""

from __future__ import annotations

import argparse

from styleforge.errors import UserError
from styleforge.official.importer import describe, import_official_pickle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--pkl", metavar="PATH", help="official network pickle to import")
    action.add_argument("--list", metavar="PATH", help="print what an official pickle holds, import nothing")
    parser.add_argument("--out", metavar="FILE", help="StyleForge network file to write (.safetensors)")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(describe(args.list)))
        return 0
    if not args.out:
        raise UserError("--pkl needs --out FILE (the StyleForge network file to write)")
    result = import_official_pickle(args.pkl, args.out)
    counts = ", ".join(f"{key} ({n} tensors)" for key, n in result.networks.items())
    print(f"wrote {result.path} ({result.format} pickle): {counts}")
    if result.skipped:
        print(f"not imported: {', '.join(result.skipped)}")
    return 0
