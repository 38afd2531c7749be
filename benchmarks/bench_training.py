"""Training speed (sec/kimg) of the full loop, side by side in one run.

Configurations: the demo (`--cfg cpu` on the digits at 32 px) and the official `stylegan2` preset at 32 px
with small channels (channel_base 4096, channel_max 256, mapping 2), each optionally with augmentations.
Each is timed over `--steps` training steps after `--warmup` steps (all phases, lazy regularisation
included in proportion: use a multiple of 16 steps).

    python benchmarks/bench_training.py --steps 16 --warmup 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from styleforge.data.build import build_dataset
from styleforge.training.loop import Trainer
from styleforge.training.report import TickStats

CONFIGS = {
    "demo (cpu preset)": dict(cfg="cpu", cond=True),
    "stylegan2 small": dict(cfg="stylegan2", cbase=4096, cmax=256, map_layers=2, batch=16, mbstd_group=4),
    "stylegan2 small + ada p=0.2": dict(cfg="stylegan2", cbase=4096, cmax=256, map_layers=2, batch=16,
                                        mbstd_group=4, aug="ada", aug_p=0.2),
    "stylegan2 small + diffaug": dict(cfg="stylegan2", cbase=4096, cmax=256, map_layers=2, batch=16,
                                      mbstd_group=4, aug="diffaug"),
}


def time_steps(trainer: Trainer, warmup: int, steps: int) -> float:
    """Seconds per kimg over `steps` steps, after `warmup` untimed steps."""
    stats = TickStats()
    batches = trainer.batches()
    for _ in range(warmup):
        trainer.train_step([next(batches) for _ in trainer.my_chunks], stats)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step([next(batches) for _ in trainer.my_chunks], stats)
    elapsed = time.perf_counter() - start
    return elapsed / (steps * trainer.cfg.batch / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", default=None, help="run only configs whose name contains this text")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits32.zip"
        build_dataset("builtin:digits", data, resolution=32)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
        print(f"{'config':32s} {'sec/kimg':>9s} {'img/s':>7s} {'G params':>10s} {'D params':>10s}")
        for name, options in CONFIGS.items():
            if args.only and args.only not in name:
                continue
            trainer = Trainer({**options, "data": str(data), "outdir": tmp, "workers": 0}, quiet=True)
            sec_per_kimg = time_steps(trainer, args.warmup, args.steps)
            g_params = sum(p.numel() for p in trainer.G.parameters())
            d_params = sum(p.numel() for p in trainer.D.parameters())
            print(f"{name:32s} {sec_per_kimg:9.1f} {1000 / sec_per_kimg:7.1f} {g_params:10,d} {d_params:10,d}")


if __name__ == "__main__":
    main()
