"""Training speed (sec/kimg) and peak memory of StyleGAN2 with the `paper256` preset, per variant.

Variants: eager float32; compiled (`--compile`: the main phases through torch.compile); float16 on the top 4
resolutions with conv_clamp 256 (the official paper256 setting on GPUs); both. Each variant trains
`--warmup` untimed steps (compilation happens there and is printed) and then `--steps` timed ones: use a
multiple of 16 so that lazy R1 (every 16 steps) and path length (every 4) count in proportion. Reals are
random images written to a dataset ZIP first. `benchmarks/gpu_check.sh` runs this on one GPU:

    python benchmarks/bench_paper256.py [--res 256] [--steps 16] [--warmup 4] [--variants eager compiled fp16]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from styleforge.data.build import build_dataset
from styleforge.training.loop import Trainer
from styleforge.training.report import TickStats

VARIANTS = {
    "eager": {},
    "compiled": {"compile": True},
    "fp16": {"fp16_res": 4, "conv_clamp": 256},
    "compiled+fp16": {"compile": True, "fp16_res": 4, "conv_clamp": 256},
}


def random_dataset(workdir: Path, res: int, count: int = 128) -> Path:
    images = workdir / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return build_dataset(images, workdir / f"random{res}.zip").dest


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak (CPU runs)


def run_variant(options: dict, args: argparse.Namespace, device: torch.device) -> str:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    trainer = Trainer(options, device=device, quiet=True)
    batches, stats = trainer._batches(), TickStats()

    def step() -> None:
        trainer.train_step([next(batches) for _ in trainer.my_chunks], stats)

    for _ in range(args.warmup):
        step()
    synchronize(device)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    sec_per_kimg = (time.perf_counter() - start) / (args.steps * trainer.cfg.batch / 1000)
    cfg = trainer.cfg
    return (f"{sec_per_kimg:9.2f} {setup:9.1f} {peak_memory_mib(device):9.0f}   batch {cfg.batch}, "
            f"precision {cfg.precision}, fp16_res {cfg.fp16_res}, compile {cfg.compile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="default: the preset's (64)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, res {args.res}, preset paper256, {args.steps} timed steps")
    print(f"{'variant':15s} {'sec/kimg':>9s} {'setup s':>9s} {'peak MiB':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        data = random_dataset(Path(tmp), args.res)
        for variant in args.variants:
            options = dict(cfg="paper256", data=str(data), outdir=tmp, workers=2, **VARIANTS[variant])
            if args.batch:
                options.update(batch=args.batch, mbstd_group=min(args.batch, 8))
            try:
                line = run_variant(options, args, device)
            except Exception as e:  # one failing variant (e.g. a compiler error) must not hide the others
                traceback.print_exc()
                line = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"{variant:15s} {line}", flush=True)
            torch._dynamo.reset()


if __name__ == "__main__":
    main()
