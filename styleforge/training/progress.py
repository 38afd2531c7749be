"""What a run shows while it trains: the progress bar, a line per tick in log.txt, the tick's statistics
(stats.jsonl, TensorBoard, losses.png) and the sample grids of fixed seeds (fakesNNNNNN.png, reals.png)."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from styleforge.images import save_grid
from styleforge.training.report import RunWriter, TickStats


class SampleGrid:
    """Fixed latents (and one column per class when conditional) drawn by G_ema at every snapshot."""

    def __init__(self, G: torch.nn.Module, num_seeds: int, seed: int, label_dim: int, device: torch.device):
        gen = torch.Generator().manual_seed(seed)
        self.seed = seed
        if label_dim:
            # One column per class, so each column of the grid shows one class.
            self.cols = label_dim
            n = -(-num_seeds // label_dim) * label_dim
            self.z = torch.randn([n, G.z_dim], generator=gen).to(device)
            self.c = torch.eye(label_dim, device=device)[torch.arange(n) % label_dim]
        else:
            self.cols = int(np.ceil(np.sqrt(num_seeds)))
            self.z = torch.randn([num_seeds, G.z_dim], generator=gen).to(device)
            self.c = torch.zeros([num_seeds, 0], device=device)

    @torch.no_grad()
    def save(self, G_ema: torch.nn.Module, path: Path) -> None:
        G_ema.eval()
        device = self.z.device
        # Seeded, so that networks that draw random inputs (e.g. EqGAN-SA heatmaps) show the same ones each time.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            fakes = [G_ema(z, c, noise_mode="const") for z, c in zip(self.z.split(16), self.c.split(16))]
        save_grid(torch.cat(fakes), path, self.cols)

    def save_reals(self, dataset, path: Path) -> None:
        count = min(len(dataset), len(self.z))
        reals = np.stack([dataset[i][0] for i in range(count)]).transpose(0, 2, 3, 1)
        save_grid(reals, path, self.cols)


class TickReport:
    """Turns a tick's statistics into its stats.jsonl entry, its log line and the progress bar's state."""

    def __init__(self, run_dir: Path | None, total: int, by_time: bool, start_nimg: int, show_bar: bool):
        """run_dir: where stats go (rank 0), None on the other ranks."""
        self.writer = RunWriter(run_dir) if run_dir is not None else None
        self.by_time = by_time  # a time budget (the demo's case): the bar counts seconds, not images
        self.total = total
        seconds_format = "{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}{postfix}]"
        self.bar = tqdm(total=total, initial=0 if by_time else min(start_nimg, total), unit="img",
                        unit_scale=not by_time, bar_format=seconds_format if by_time else None, dynamic_ncols=True,
                        disable=not show_bar, desc="train")
        self.start_tick(start_nimg)

    def start_tick(self, cur_nimg: int) -> None:
        self.tick_start, self.tick_start_nimg = time.time(), cur_nimg

    def step(self, batch: int, elapsed: float) -> None:
        self.bar.update(min(int(elapsed), self.total) - self.bar.n if self.by_time else batch)

    def entry(self, stats: TickStats, tick: int, cur_nimg: int, total_sec: float, device: torch.device,
              progress: dict[str, float]) -> dict[str, Any]:
        """The tick's record: every statistic's mean/std/num over the tick and ranks, plus progress and timing."""
        entry: dict[str, Any] = stats.gather(sorted(set(stats.names()) | {"Loss/G/loss", "Loss/D/loss"}))
        elapsed = time.time() - self.tick_start
        kimg_done = (cur_nimg - self.tick_start_nimg) / 1000
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if device.type == "cuda":
            peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        scalars = {
            "Progress/tick": tick, "Progress/kimg": cur_nimg / 1000, "Timing/sec_per_tick": elapsed,
            "Timing/sec_per_kimg": elapsed / max(kimg_done, 1e-8), "Timing/total_sec": total_sec,
            "Resources/peak_memory_mb": peak_mb, **progress,
        }
        entry.update({k: {"mean": float(v)} for k, v in scalars.items()})
        entry["timestamp"] = time.time()
        return entry

    def write(self, entry: dict[str, Any], tick: int) -> str:
        """Writes the entry (rank 0) and returns the tick's log line."""
        def mean(name):
            return entry.get(name, {}).get("mean", float("nan"))
        line = (f"tick {tick:<4d} kimg {mean('Progress/kimg'):<8.1f} sec/kimg {mean('Timing/sec_per_kimg'):<7.2f} "
                f"G {mean('Loss/G/loss'):.3f} D {mean('Loss/D/loss'):.3f}")
        if "Progress/augment" in entry:
            line += f" p {mean('Progress/augment'):.3f}"
        if self.writer is not None:
            self.writer.write(entry)
        self.bar.set_postfix(kimg=f"{mean('Progress/kimg'):.1f}", s_per_kimg=f"{mean('Timing/sec_per_kimg'):.1f}",
                             G=f"{mean('Loss/G/loss'):.3f}", D=f"{mean('Loss/D/loss'):.3f}")
        return line

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
