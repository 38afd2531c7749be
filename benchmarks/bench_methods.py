"""Training cost of FSMR and EqGAN-SA relative to plain StyleGAN2 (sec/kimg), side by side in one run.

Every configuration is the same small StyleGAN2 (`stylegan2` preset with small channels, mapping 2) on the
built-in digits; only the method flags differ. After `--warmup` untimed steps each, the configurations take
turns for `--rounds` rounds of `--steps` steps, so that drifts of the machine hit them all alike; all
phases run, lazy regularization included in proportion (use steps * rounds a multiple of 16).

    python benchmarks/bench_methods.py --res 32 --steps 8 --rounds 2 --warmup 2
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

METHODS = {
    "plain": {},
    "+fsmr": dict(fsmr_weight=0.05),
    "+fsmr (reals+fakes)": dict(fsmr_weight=0.05, fsmr_fakes=True),
    "+sel": dict(sel=True),
    "+sel+align": dict(align_weight=1.0),
    "+fsmr+sel+align": dict(fsmr_weight=0.05, align_weight=1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--cbase", type=int, default=4096, help="channel_base (channels at res r: cbase / r)")
    parser.add_argument("--cmax", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8, help="steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", default=None, help="comma-separated method names (plain is always included)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = {k: v for k, v in METHODS.items() if args.only is None or k == "plain" or k in args.only.split(",")}
    base = dict(cfg="stylegan2", cbase=args.cbase, cmax=args.cmax, map_layers=2, batch=args.batch, mbstd_group=4,
                workers=0)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"digits{args.res}.zip"
        build_dataset("builtin:digits", data, resolution=args.res)
        trainers = {name: Trainer({**base, **flags, "data": str(data), "outdir": tmp}, quiet=True)
                    for name, flags in methods.items()}
        device = next(iter(trainers.values())).device
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, {args.res} px, "
              f"batch {args.batch}, cbase {args.cbase}, cmax {args.cmax}; {args.rounds} x {args.steps} timed steps")
        batches = {name: t.batches() for name, t in trainers.items()}
        stats = TickStats()

        def steps(name: str, count: int) -> float:
            trainer = trainers[name]
            sync()
            start = time.perf_counter()
            for _ in range(count):
                trainer.train_step([next(batches[name]) for _ in trainer.my_chunks], stats)
            sync()
            return time.perf_counter() - start

        for name in trainers:
            steps(name, args.warmup)
        elapsed = dict.fromkeys(trainers, 0.0)
        for _ in range(args.rounds):
            for name in trainers:
                elapsed[name] += steps(name, args.steps)
        kimg = args.rounds * args.steps * args.batch / 1000
        print(f"{'method':22s} {'sec/kimg':>9s} {'x plain':>8s} {'G params':>10s}")
        for name, seconds in elapsed.items():
            g_params = sum(p.numel() for p in trainers[name].G.parameters())
            print(f"{name:22s} {seconds / kimg:9.1f} {seconds / elapsed['plain']:8.2f} {g_params:10,d}")


if __name__ == "__main__":
    main()
