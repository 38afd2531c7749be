"""Training speed (sec/kimg) of StyleGAN v1, ProGAN and MSG-StyleGAN next to StyleGAN2, and optionally a longer
run of each on the digits with its sample grid.

Every configuration uses the `cpu` preset's sizes and batch at 32 px on the built-in digits, with its method's
official recipe (docs/family.md). Speed is
timed through the real loop (Trainer.run, schedule included) over `--steps` steps after `--warmup`; with
`--rounds` > 1 the configurations alternate and the best round counts (other processes share the CPUs).

    python benchmarks/bench_family.py --steps 16 --warmup 4 --rounds 2
    python benchmarks/bench_family.py --steps 0 --minutes 30 --long-kimg 15 --long-res 16 --grow-kimg 1 \\
        --out family-runs   # sample grids (a column per digit) of longer runs
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from styleforge.data.build import build_dataset
from styleforge.training.loop import Trainer
from styleforge.training.report import read_stats

SG1 = dict(g="stylegan1", d="stylegan1", r1_interval=0, gamma=10, pl_weight=0)
PROGAN = dict(g="progan", d="progan", loss="wgangp", r1_interval=0, pl_weight=0)
MSG = dict(d="msg", loss="msg", r1_interval=0, gamma=10, pl_weight=0, style_mixing=0)
CONFIGS = {
    "stylegan2 (cpu preset, lazy reg.)": dict(),
    "stylegan2, R1 every step, no PL": dict(r1_interval=0, pl_weight=0),
    "stylegan1": SG1,
    "progan": PROGAN,
    "progan growing (16 px fade-in)": dict(PROGAN, grow=True, grow_init_res=16, grow_stable_kimg=0,
                                           grow_fade_kimg=1000),
    "msg-stylegan2": dict(MSG, g="msg-stylegan2"),
    "msg-stylegan1": dict(MSG, g="msg-stylegan1"),
}


def sec_per_kimg(options: dict, warmup: int, steps: int) -> float:
    times: list[tuple[float, int]] = []

    def on_step(step: int, losses: dict) -> None:
        times.append((time.perf_counter(), trainer.cur_nimg))

    kimg = (warmup + steps) * options["batch"] / 1000
    trainer = Trainer({**options, "kimg": kimg, "snap": 10_000, "tick_kimg": 10_000}, step_callback=on_step,
                      quiet=True)
    trainer.run()
    (t0, n0), (t1, n1) = times[warmup - 1], times[-1]
    return (t1 - t0) / ((n1 - n0) / 1000)


def long_run(name: str, options: dict, minutes: float, kimg: float, out: Path) -> str:
    trainer = Trainer({**options, "time_budget": minutes * 60, "kimg": kimg, "tick_kimg": 1, "snap": 5},
                      quiet=True)
    start = time.time()
    run_dir = trainer.run()
    grid = sorted(run_dir.glob("fakes*.png"))[-1]
    target = out / f"{name.split(' ')[0]}.png"
    shutil.copy(grid, target)
    last = read_stats(run_dir / "stats.jsonl")[-1]
    lod = last.get("Progress/lod", {}).get("mean")
    return (f"{name:28s} {trainer.cur_nimg / 1000:5.1f} kimg in {(time.time() - start) / 60:4.1f} min, "
            f"G {last['Loss/G/loss']['mean']:.3f} "
            f"D {last['Loss/D/loss']['mean']:.3f}" + (f", lod {lod:.2f}" if lod is not None else "") + f" -> {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default=None, help="run only configs whose name contains this text")
    parser.add_argument("--minutes", type=float, default=0, help="then train each method this long (0: skip)")
    parser.add_argument("--long-kimg", type=float, default=100_000, help="or this many kimg, whichever comes first")
    parser.add_argument("--grow-kimg", type=float, default=3, help="stable and fade kimg per phase, longer runs")
    parser.add_argument("--long-res", type=int, default=32, help="resolution of the longer runs")
    parser.add_argument("--out", default="family-runs", help="folder for the longer runs' sample grids")
    args = parser.parse_args()
    names = [n for n in CONFIGS if not args.only or args.only in n]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits32.zip"
        build_dataset("builtin:digits", data, resolution=32)
        base = dict(cfg="cpu", batch=32, data=str(data), outdir=tmp, workers=0)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu; 32 px, cpu preset, batch 32")
        best: dict[str, float] = {}
        if args.steps > 0:
            for _ in range(args.rounds):
                for name in names:
                    value = sec_per_kimg({**base, **CONFIGS[name]}, args.warmup, args.steps)
                    best[name] = min(best.get(name, value), value)
            reference = best.get(names[0])
            print(f"{'config':34s} {'sec/kimg':>9s} {'vs ' + names[0][:9]:>14s}")
            for name in names:
                print(f"{name:34s} {best[name]:9.1f} {best[name] / reference:13.2f}x")
        if args.minutes > 0:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            data = Path(tmp) / f"digits{args.long_res}.zip"
            if not data.exists():
                build_dataset("builtin:digits", data, resolution=args.long_res)
            base["data"] = str(data)
            grow = dict(grow=True, grow_stable_kimg=args.grow_kimg, grow_fade_kimg=args.grow_kimg)
            runs = {"stylegan2": {}, "stylegan1 (grown from 4 px)": {**SG1, **grow},
                    "progan (grown from 4 px)": {**PROGAN, **grow}, "msg-stylegan2": CONFIGS["msg-stylegan2"]}
            for name, options in runs.items():
                if not args.only or args.only in name:
                    line = long_run(name, {**base, "cond": True, **options}, args.minutes, args.long_kimg, out)
                    print(line, flush=True)


if __name__ == "__main__":
    main()
