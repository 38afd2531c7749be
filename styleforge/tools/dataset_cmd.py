"""Build a training data set (ZIP or folder of PNGs) from a folder, ZIP, LMDB or builtin:digits.

The output is compatible with NVlabs' stylegan2-ada-pytorch: PNGs named 00000/img00000000.png and
dataset.json with {"labels": [[path, class], ...]} (or null), plus our own keys (class_names, source,
resize_filter, ...). It is written to a temporary name and renamed when complete.

Examples:
  styleforge dataset --source builtin:digits --dest datasets/digits.zip
  styleforge dataset --source ~/ffhq --dest datasets/ffhq256.zip --resolution 256 --resize-filter box
  styleforge dataset --source ~/pets --dest pets.zip --resolution 64 --transform center-crop --labels folders
"""

from __future__ import annotations

import argparse

from styleforge.data.build import LABEL_MODES, ON_ERROR, build_dataset
from styleforge.data.transforms import RESIZE_FILTERS, TRANSFORMS

MAX_LISTED = 20


def _aspect(text: str) -> float:
    """'4:3' or '1.333'."""
    try:
        if ":" in text:
            w, h = text.split(":")
            return float(w) / float(h)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r}: expected W:H or a number") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="folder of images (recursive), ZIP, LMDB folder, or builtin:digits")
    p.add_argument("--dest", required=True, help="output .zip, or a new/empty folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --dest ZIP or data set folder (once the new one is complete)")
    p.add_argument("--resolution", type=int, help="output size (power of two); default: the sources' size "
                   "(builtin:digits: 32)")
    p.add_argument("--transform", choices=TRANSFORMS, default="none",
                   help="crop before resizing: none (images must be square), center-crop, center-crop-wide")
    p.add_argument("--wide-aspect", type=_aspect, default=4 / 3, metavar="W:H",
                   help="aspect of the region kept by center-crop-wide (default 4:3)")
    p.add_argument("--resize-filter", choices=list(RESIZE_FILTERS), default="lanczos",
                   help="box reproduces published FFHQ-256 FIDs (default lanczos)")
    p.add_argument("--channels", type=int, choices=[1, 3], help="convert to grayscale (1) or RGB (3); "
                   "default: keep (all sources must agree)")
    p.add_argument("--labels", choices=LABEL_MODES, help="json: the source's dataset.json (or built-in labels); "
                   "folders: one class per sub-folder; default: json if the source has labels, else none")
    p.add_argument("--max-images", type=int, help="write at most this many images")
    p.add_argument("--on-error", choices=ON_ERROR, default="fail",
                   help="bad input images stop the run (fail) or are skipped and listed (skip)")
    p.add_argument("--compress-level", type=int, default=0,
                   help="PNG compression 0-9; 0 (default, as the official tool) decodes fastest")


def run(args: argparse.Namespace) -> int:
    summary = build_dataset(
        args.source, args.dest, resolution=args.resolution, transform=args.transform,
        resize_filter=args.resize_filter, channels=args.channels, labels=args.labels,
        max_images=args.max_images, on_error=args.on_error, wide_aspect=args.wide_aspect,
        compress_level=args.compress_level, progress=True, overwrite=args.overwrite,
    )
    for warning in summary.warnings:
        print(f"warning: {warning}")
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} bad image(s):")
        for line in summary.skipped[:MAX_LISTED]:
            print(f"  {line}")
        if len(summary.skipped) > MAX_LISTED:
            print(f"  ... and {len(summary.skipped) - MAX_LISTED} more")
    print(summary)
    return 0
