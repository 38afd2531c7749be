"""Throughput of the augmentations (images/s), forward and forward+backward, side by side.

    python benchmarks/bench_augment.py [--device cuda] [--batch 16] [--res 32 64] [--seconds 1] [--threads N]

Each cell is the median over timed blocks of 5 calls, so that scheduler hiccups do not dominate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import styleforge.augment  # noqa: F401 (registers the augmentations)
from styleforge.registry import AUGMENTATIONS

CONFIGS = [
    ("none", "none", {}),
    ("diffaug", "diffaug", {}),
    ("ada p=0", "ada", {"p": 0.0}),
    ("ada p=0.2", "ada", {"p": 0.2}),
    ("ada p=1.0", "ada", {"p": 1.0}),
]


def images_per_second(aug: torch.nn.Module, x: torch.Tensor, backward: bool, seconds: float) -> float:
    def step():
        if backward:
            x.grad = None
            aug(x).square().sum().backward()
        else:
            with torch.no_grad():
                aug(x)

    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up
        step()
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        sync()
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        sync()
        rates.append(5 * x.shape[0] / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--res", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    print(f"device={device} batch={args.batch} threads={torch.get_num_threads()} torch={torch.__version__}")
    header = f"{'augmentation':<12}" + "".join(f"{f'{r}px fwd':>12}{f'{r}px fwd+bwd':>14}" for r in args.res)
    print(header + "   (images/s)")
    for label, name, kwargs in CONFIGS:
        aug = AUGMENTATIONS.create(name, **kwargs).to(device)
        row = f"{label:<12}"
        for res in args.res:
            x = (torch.rand(args.batch, 3, res, res, device=device) * 2 - 1).requires_grad_()
            row += f"{images_per_second(aug, x, False, args.seconds):>12.0f}"
            row += f"{images_per_second(aug, x, True, args.seconds):>14.0f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
