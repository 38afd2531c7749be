"""Export a generator to ONNX or TorchScript, checked against PyTorch.

The exported model maps z [N, z_dim] (and one-hot c [N, c_dim] for conditional networks) to images
[N, C, H, W] in [-1, 1], with --trunc and --noise-mode fixed. The file is kept only if its output
matches PyTorch's within 1e-4 (max abs difference, printed). ONNX needs the `export` extra.

Examples:
  styleforge export --network ffhq.safetensors --format onnx --out ffhq.onnx --trunc 0.7
  styleforge export --network ffhq.safetensors --format torchscript --out ffhq.pt
"""

from __future__ import annotations

import argparse

from styleforge.tools.export import EXPORT_NOISE_MODES, FORMATS, TOLERANCE, export_generator
from styleforge.tools.generate_cmd import add_network_arguments, load_generator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser, truncation=True)  # baked into the export
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="default: onnx")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--noise-mode", choices=EXPORT_NOISE_MODES, default="const", help="default: const")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"max abs difference (default {TOLERANCE})")


def run(args: argparse.Namespace) -> int:
    G = load_generator(args)
    result = export_generator(G, args.out, args.format, psi=args.trunc, truncation_cutoff=args.trunc_cutoff,
                              noise_mode=args.noise_mode, tolerance=args.tolerance)
    print(f"wrote {result.path} ({args.format}); max abs difference to PyTorch {result.max_abs_diff:.3g}")
    return 0
