"""Compute quality metrics (FID, KID, precision/recall, IS, PPL, class accuracy) of a trained generator.

Metrics: fid50k_full, kid50k_full, pr50k3_full, is50k, ppl2_wend, ppl_zfull, ppl_wfull, ppl_zend, ppl_wend,
smaller variants (fid10k_full, fid1k_full, kid10k_full, pr10k3_full, is10k, ...) and legacy fid50k/kid50k/pr50k3;
class_acc (conditional G: the share of images classified as the class asked for) and class_coverage (entropy
of the predicted classes / log K), which need a classifier as --detector.
--num-gen overrides the number of generated images (PPL: samples) of every metric, for a quick check.

Feature networks are found in this order: --detector PATH, $STYLEFORGE_INCEPTION / $STYLEFORGE_VGG16 /
$STYLEFORGE_LPIPS, the folder $STYLEFORGE_WEIGHTS, ~/.cache/styleforge/weights ($STYLEFORGE_CACHE), then a
checked download. --detector also takes your own network (TorchScript, or a state dict of the built-in one),
or builtin:digits: a classifier of the built-in digits shipped with StyleForge, for every metric but PPL.

Examples:
  styleforge metrics --network run/network-snapshot-001000.safetensors --data data.zip \\
      --metrics fid50k_full,kid50k_full,pr50k3_full --out run/metrics.jsonl
  styleforge metrics --network CKPT --data digits32.zip --detector builtin:digits \\
      --metrics fid10k_full,kid10k_full,pr10k3_full,class_acc,class_coverage
"""

from __future__ import annotations

import argparse
import json

import torch

import styleforge
from styleforge.errors import UserError
from styleforge.metrics import compute_metric
from styleforge.metrics.network_files import FILE_KINDS
from styleforge.registry import METRICS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--network", required=True, help="network file or training checkpoint (uses G_ema)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the check of the network file's SHA-256 checksums (faster loading)")
    parser.add_argument("--data", help="training data set (ZIP or folder of images) to compare with")
    parser.add_argument("--metrics", default="fid50k_full", help="comma-separated metric names (default %(default)s)")
    parser.add_argument("--detector", help="feature network file instead of the standard one, or builtin:digits")
    parser.add_argument("--detector-kind", choices=FILE_KINDS, default="auto", help="format of --detector")
    parser.add_argument("--num-gen", type=int, help="number of generated images (PPL: samples) per metric")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--truncation-psi", type=float, default=1.0, help="truncation of G (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of latents and labels (default %(default)s)")
    parser.add_argument("--cache-dir", help="cache of weights and real-image statistics (default ~/.cache/styleforge)")
    parser.add_argument("--out", help="append results as JSON lines to this file")


def run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)}; choose from: {', '.join(METRICS.names())}")
    if args.num_gen is not None and args.num_gen < 2:
        raise UserError(f"--num-gen must be at least 2, got {args.num_gen}")
    G = styleforge.load(args.network, device=args.device, verify=args.verify)
    for name in names:
        result = compute_metric(
            name, G, args.data, args.device, detector=args.detector, num_gen=args.num_gen,
            batch_size=args.batch_size, cache_dir=args.cache_dir, detector_kind=args.detector_kind, seed=args.seed,
            G_kwargs={"truncation_psi": args.truncation_psi})
        line = json.dumps(dict(result, network=str(args.network)))
        print(line)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0
