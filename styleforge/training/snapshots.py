"""Snapshots of a run: the checkpoint (everything needed to resume exactly), the metrics of G_ema at that
point, the best checkpoint by the first metric, and pruning of old checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from styleforge.metrics.compute import append_metric_result, compute_metric
from styleforge.registry import METRICS
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN or infinite."""


def save_training_checkpoint(path: Path, cfg: TrainConfig, networks: dict[str, torch.nn.Module],
                             optimizers: dict[str, torch.optim.Optimizer], extra: dict[str, torch.Tensor],
                             progress: dict[str, Any]) -> None:
    """Writes the checkpoint; a diverged run (non-finite weights) stops without replacing a good one."""
    path.parent.mkdir(exist_ok=True)
    try:
        ckpt_io.save_checkpoint(path, networks, optimizers, extra, progress, dataclasses.asdict(cfg))
    except FloatingPointError as e:
        raise TrainingDiverged(f"{e} (kimg {progress['cur_nimg'] / 1000:.3f}); stopping, earlier checkpoints "
                               "are kept") from e
    ckpt_io.prune_checkpoints(path.parent.parent, cfg.keep)


def evaluate_snapshot(cfg: TrainConfig, G_ema: torch.nn.Module, path: Path, run_dir: Path | None, device: torch.device,
                      rank: int, world_size: int, log: Callable[[str], None]) -> None:
    """Every rank computes the metrics of G_ema; rank 0 (the one with `run_dir`) records them and whether
    this checkpoint is the best so far by the first metric."""
    for i, name in enumerate(cfg.metrics):
        result = compute_metric(name, G_ema, cfg.data, device, detector=cfg.metrics_detector,
                                num_gen=cfg.metrics_num_gen, rank=rank, world_size=world_size, seed=cfg.seed,
                                progress=False)
        if run_dir is None:
            continue
        append_metric_result(run_dir, result, snapshot=path)
        log(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in result["results"].items()))
        if i == 0:  # the first metric decides which checkpoint is the best
            value = next(iter(result["results"].values()))
            if ckpt_io.record_best(run_dir, path, name, value, METRICS.get(name).lower_is_better):
                log(f"best checkpoint so far by {name}: {path.name}")
