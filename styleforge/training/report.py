"""Per-tick statistics: collected on every rank, summed across ranks, written by rank 0 to `stats.jsonl`,
TensorBoard (when installed) and a loss plot."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from styleforge.training.distributed import all_reduce_sum

PLOTTED = ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/pl_penalty", "Progress/augment")


class TickStats:
    """Running sums of named values over one tick. Values stay on the device until the tick ends, so
    reporting does not synchronise the GPU every step."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}  # name -> [count, sum, sum of squares]

    def add(self, name: str, values: torch.Tensor) -> None:
        values = values.detach().float().flatten()
        moments = torch.stack([torch.tensor(values.numel(), dtype=torch.float64, device=values.device),
                               values.double().sum(), values.double().square().sum()])
        self._sums[name] = self._sums[name] + moments if name in self._sums else moments

    def gather(self, names: list[str]) -> dict[str, dict[str, float]]:
        """Mean and std of each value over the tick and all ranks; resets the sums.

        Every rank must call this with the same `names` (the union is agreed on by the caller)."""
        if not names:
            return {}
        device = next(iter(self._sums.values())).device if self._sums else torch.device("cpu")
        stacked = torch.stack([self._sums.get(n, torch.zeros(3, dtype=torch.float64, device=device)).to(device)
                               for n in names])
        all_reduce_sum(stacked)
        self._sums.clear()
        out = {}
        for name, (count, total, squares) in zip(names, stacked.tolist()):
            if count > 0:
                mean = total / count
                out[name] = {"mean": mean, "std": max(squares / count - mean * mean, 0.0) ** 0.5, "num": count}
        return out

    def names(self) -> list[str]:
        return sorted(self._sums)


class RunWriter:
    """Writes what rank 0 reports: stats.jsonl, TensorBoard events, losses.png."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir))
        except ImportError:  # tensorboard is an optional extra
            pass

    def write(self, entry: dict) -> None:
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        if self.tensorboard is not None:
            step = int(entry["Progress/kimg"]["mean"] * 1000)
            for name, value in entry.items():
                if isinstance(value, dict) and "mean" in value:
                    self.tensorboard.add_scalar(name, value["mean"], global_step=step)
            self.tensorboard.flush()
        self.plot()

    def plot(self) -> None:
        """losses.png: the plotted statistics over kimg, one panel each."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        entries = read_stats(self.run_dir / "stats.jsonl")
        names = [n for n in PLOTTED if any(n in e for e in entries)]
        if not names:
            return
        fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), sharex=True, squeeze=False)
        for ax, name in zip(axes[:, 0], names):
            points = [(e["Progress/kimg"]["mean"], e[name]["mean"]) for e in entries if name in e]
            ax.plot(*zip(*points), marker=".")
            ax.set_ylabel(name.split("/", 1)[1], fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("kimg")
        fig.suptitle(self.run_dir.name, fontsize=9)
        fig.tight_layout()
        fig.savefig(self.run_dir / "losses.png", dpi=90)
        plt.close(fig)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_stats(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
