"""The demo: build the built-in digits data set, train a small conditional StyleGAN2 on the CPU for a
time budget, measure it with the built-in digits classifier beside the floor (real half against real
half, metrics/floor.py), and write sample grids, the loss plot and a short report."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from styleforge.training.report import read_stats


def run_demo(outdir: str | Path = "demo-out", minutes: float = 8.0, resolution: int = 32, seed: int = 0,
             extra_options: dict | None = None, quiet: bool = False) -> Path:
    """Returns the path of the written report (report.md)."""
    from styleforge.data.build import build_dataset
    from styleforge.metrics.floor import quality_with_floor
    from styleforge.training.loop import Trainer

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = outdir / f"digits{resolution}.zip"
    if not data.exists():
        summary = build_dataset("builtin:digits", data, resolution=resolution, progress=not quiet)
        print(summary)
    options = {**dict(data=str(data), outdir=str(outdir / "runs"), cfg="cpu", cond=True, seed=seed, kimg=10_000,
                      time_budget=minutes * 60), **(extra_options or {})}
    start = time.time()
    trainer = Trainer(options, quiet=quiet)
    run_dir = trainer.run()
    seconds = time.time() - start
    quality = quality_with_floor(trainer.G_ema, data, trainer.device, seed=seed)
    grids = sorted(run_dir.glob("fakes*.png"))
    shutil.copy(grids[-1], outdir / "samples.png")
    shutil.copy(run_dir / "losses.png", outdir / "losses.png")
    stats = read_stats(run_dir / "stats.jsonl")
    report = outdir / "report.md"
    report.write_text(_report_text(trainer, run_dir, stats, seconds, outdir, quality))
    print("\n" + "\n".join(_quality_table(quality)))
    print(f"\nreport: {report}\nsamples: {outdir / 'samples.png'}\nloss plot: {outdir / 'losses.png'}")
    return report


def _quality_table(quality: dict) -> list[str]:
    def row(name: str, numbers: dict) -> str:
        acc = "-" if numbers["class_acc"] is None else f"{numbers['class_acc']:.3f}"
        return f"| {name} | {numbers['fid']:.2f} | {acc} | {numbers['class_coverage']:.3f} |"

    n = quality["num_images"]
    return [
        "| measured against real half B | FID | class_acc | coverage |",
        "|---|---|---|---|",
        row(f"G_ema: {n} samples, each asked for the class of a real image of half A", quality["generated"]),
        row(f"floor: real half A against real half B ({n} images each)", quality["floor"]),
    ]


def _report_text(trainer, run_dir: Path, stats: list[dict], seconds: float, outdir: Path, quality: dict) -> str:
    cfg, ds = trainer.cfg, trainer.dataset
    last = stats[-1] if stats else {}

    def mean(name: str) -> float:
        return last.get(name, {}).get("mean", float("nan"))

    g_params = sum(p.numel() for p in trainer.G.parameters())
    d_params = sum(p.numel() for p in trainer.D.parameters())
    ckpts = sorted((run_dir / "checkpoints").glob("ckpt-*.safetensors"))
    lines = [
        "# StyleForge demo report",
        "",
        f"Trained a conditional StyleGAN2 ({cfg.g} G, {g_params:,} parameters; {cfg.d} D, {d_params:,} parameters)",
        f"on the built-in UCI digits ({len(ds)} images, {ds.resolution}x{ds.resolution}, "
        f"{ds.num_channels} channel(s), {ds.label_dim} classes)",
        f"with preset `{cfg.cfg}`: batch {cfg.batch}, lr {cfg.glr}, R1 gamma {cfg.gamma}, path length weight "
        f"{cfg.pl_weight}, style mixing {cfg.style_mixing}, EMA half-life {cfg.ema_kimg} kimg.",
        "",
        f"- Training: {trainer.cur_nimg / 1000:.1f} kimg in {seconds / 60:.1f} minutes "
        f"({mean('Timing/sec_per_kimg'):.1f} s/kimg in the last tick) on {trainer.device}.",
        f"- Last tick's losses: G {mean('Loss/G/loss'):.3f}, D {mean('Loss/D/loss'):.3f}, "
        f"D(real) {mean('Loss/scores/real'):.2f}, D(fake) {mean('Loss/scores/fake'):.2f}.",
        "",
        "## Quality",
        "",
        "Measured with `builtin:digits`, a classifier of the digits shipped with StyleForge (its penultimate",
        "features for FID). class_acc: the share of samples classified as the digit they were asked for;",
        "coverage: entropy of the predicted digits / log 10 (1: all ten equally often). The floor is what real",
        "images score: the closer G_ema comes to it, the better.",
        "",
        *_quality_table(quality),
        "",
        "## Files",
        f"- `{outdir / 'samples.png'}`: G_ema samples from fixed seeds, one column per digit class (0-9).",
        f"- `{outdir / 'losses.png'}`: losses over kimg.",
        f"- `{run_dir}`: the run (config.json, log.txt, stats.jsonl, sample grid per snapshot, reals.png).",
        f"- `{ckpts[-1] if ckpts else '(none)'}`: the last checkpoint (resume with "
        f"`styleforge train --resume {run_dir}`).",
        "",
        "Config:",
        "",
        "```json",
        json.dumps({k: getattr(cfg, k) for k in ("cfg", "batch", "cbase", "cmax", "z_dim", "w_dim", "map_layers",
                                                 "g_arch", "d_arch", "mbstd_group", "seed")}, indent=1),
        "```",
    ]
    return "\n".join(lines) + "\n"
