"""The entry points the training loop and the CLI call: compute one registered metric, log its result."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from styleforge.metrics.context import MetricContext
from styleforge.metrics.detectors import Detector
from styleforge.metrics.feature_stats import ExtractOptions
from styleforge.registry import METRICS


def compute_metric(name: str, G: torch.nn.Module, data_path: str | os.PathLike | None,
                   device: torch.device | str = "cpu",
                   detector: str | os.PathLike | torch.nn.Module | Detector | None = None,
                   num_gen: int | None = None, batch_size: int = 64,
                   cache_dir: str | os.PathLike | None = None, rank: int = 0, world_size: int = 1, *,
                   detector_kind: str = "auto", max_real: int | None = None, seed: int = 0,
                   G_kwargs: dict | None = None, use_cache: bool = True, progress: bool = True) -> dict:
    """Computes the metric registered as `name` (e.g. `fid50k_full`) of generator G against the data set.

    `detector`: None for the standard network of the metric, else a file (`detector_kind`: auto,
    torchscript, state-dict), a module or a `Detector`. `num_gen` / `max_real` override the metric's
    numbers of generated / real images (e.g. `fid50k_full` with num_gen=500 for a quick check).
    `G_kwargs` go to G(z, c, ...) (default: truncation_psi=1, noise_mode='random', as the official
    metrics). With torch.distributed initialised and world_size > 1, every rank must call this; the work is
    split and every rank returns the same result.

    Returns {"results": {key: value}, "metric": name, "total_time": s, "num_gen": n, "world_size": w}.
    """
    metric = METRICS.get(name)
    if world_size > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ValueError(f"world_size={world_size} needs torch.distributed to be initialised on every rank")
    ctx = MetricContext(
        G=G, data_path=data_path,
        extract=ExtractOptions(device=torch.device(device), batch_size=batch_size, rank=rank, world_size=world_size,
                               cache_dir=cache_dir, progress=progress),
        detector=detector, detector_kind=detector_kind, num_gen=num_gen, max_real=max_real, seed=seed,
        G_kwargs=dict(G_kwargs or {}), use_cache=use_cache)
    start = time.time()
    results = metric(ctx)
    return {"results": results, "metric": name, "total_time": time.time() - start,
            "num_gen": ctx.gen_count(metric.default_num_gen), "world_size": world_size}


def append_metric_result(run_dir: str | os.PathLike, result: dict, snapshot: str | os.PathLike | None = None) -> Path:
    """Appends `result` (from compute_metric) with the snapshot's path (relative to run_dir when inside it)
    and a timestamp as one JSON line to `<run_dir>/metric-<name>.jsonl`; returns that file."""
    run_dir = Path(run_dir)
    if snapshot is not None:
        snapshot = Path(snapshot)
        try:
            snapshot = snapshot.resolve().relative_to(run_dir.resolve())
        except ValueError:
            pass
        snapshot = snapshot.as_posix()
    path = run_dir / f"metric-{result['metric']}.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(dict(result, snapshot=snapshot, timestamp=time.time())) + "\n")
    return path
