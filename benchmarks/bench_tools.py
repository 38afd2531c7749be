"""Speed of the tools on a StyleGAN2 G with random weights (speed does not depend on the values).

    python benchmarks/bench_tools.py [--device cuda] [--res 64] [--channel-base 8192] [--steps 20]

Prints: generate (images/s, batches of 16, const noise), the per-seed path of random noise (images/s),
projection (ms per step, W+, multi-scale MSE; LPIPS adds a VGG16 pass per step), and the export time
and max abs difference to PyTorch of TorchScript and ONNX.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import styleforge.networks  # noqa: F401  (registers the networks)
from styleforge.inference.generate import generate
from styleforge.registry import GENERATORS
from styleforge.tools.export import export_generator
from styleforge.tools.projector import ProjectionSettings, project, w_statistics


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--channel-base", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num", type=int, default=64, help="images to generate")
    args = parser.parse_args()

    torch.manual_seed(0)
    G = GENERATORS.get("stylegan2")(img_resolution=args.res, synthesis_kwargs=dict(channel_base=args.channel_base))
    G = G.eval().requires_grad_(False).to(args.device)
    params = sum(p.numel() for p in G.parameters()) / 1e6
    print(f"G: {args.res}px, channel_base {args.channel_base}, {params:.1f}M parameters, device {args.device}, "
          f"{torch.get_num_threads()} threads")
    generate(G, [0])  # warm-up
    seeds = list(range(args.num))
    for mode in ("const", "random"):
        seconds = timed(lambda mode=mode: generate(G, seeds, psi=0.7, noise_mode=mode))
        print(f"generate --noise-mode {mode}: {args.num / seconds:.1f} images/s")

    target = generate(G, [1])[0]
    c = torch.zeros([1, 0], device=args.device)
    stats_seconds = timed(lambda: w_statistics(G, c, 10000))
    settings = ProjectionSettings(num_steps=args.steps, w_avg_samples=10000)
    seconds = timed(lambda: project(G, target, w_plus=True, settings=settings, distance="mse", progress=False))
    print(f"project: w statistics (10000 samples) {stats_seconds:.1f} s, then "
          f"{1000 * (seconds - stats_seconds) / args.steps:.0f} ms/step (W+, mse)")

    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("torchscript", "onnx"):
            result = None

            def run(fmt=fmt):
                nonlocal result
                result = export_generator(G, Path(tmp) / f"G.{fmt}", fmt, psi=0.7)

            seconds = timed(run)
            print(f"export {fmt}: {seconds:.1f} s, max abs diff {result.max_abs_diff:.2e}")


if __name__ == "__main__":
    main()
