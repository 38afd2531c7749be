"""The best checkpoint follows each metric's declared direction (FID lower, class accuracy higher)."""

import json

import pytest
import torch

import styleforge.training.snapshots as snapshots
from styleforge.training.config import TrainConfig


@pytest.mark.parametrize("metric, values, best", [("fid1k_full", [5.0, 3.0, 4.0], 1), ("class_acc", [0.5, 0.9, 0.7], 1),
                                                  ("class_acc", [0.9, 0.5, 0.7], 0)])
def test_best_checkpoint_by_the_metrics_direction(tmp_path, monkeypatch, metric, values, best):
    results = iter(values)
    monkeypatch.setattr(snapshots, "compute_metric", lambda name, *a, **k: {
        "metric": name, "results": {name: next(results)}})
    cfg = TrainConfig(data="x", metrics=[metric])
    (tmp_path / "checkpoints").mkdir()
    paths = [tmp_path / "checkpoints" / f"ckpt-{i:010d}.safetensors" for i in range(3)]
    for path in paths:
        snapshots.evaluate_snapshot(cfg, torch.nn.Identity(), path, tmp_path, torch.device("cpu"), 0, 1, print)
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["path"] == paths[best].name
