"""Features of real and generated images, batched, sharded across ranks, with real statistics cached.

`FeatureStats` accumulates what a metric needs: all features (KID, precision/recall, IS) and/or the
mean and covariance in float64 (FID). Real-image statistics are stored as `.npz` under
`<cache dir>/metric-stats/`, keyed by the data set's fingerprint, the detector's identity and the options.
With torch.distributed initialised, each rank extracts every world_size-th item and the features are
all-gathered (interleaved back into the original order), so every rank ends with the same statistics.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from styleforge.errors import UserError
from styleforge.metrics.detectors import Detector
from styleforge.metrics.real_images import count_real_images, dataset_fingerprint, iterate_real_images, real_labels
from styleforge.metrics.weights import default_cache_dir


class FeatureStats:
    """Running statistics of feature vectors [N, D]."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.parts: list[np.ndarray] = []
        self.raw_sum: np.ndarray | None = None  # [D] float64
        self.raw_outer: np.ndarray | None = None  # [D, D] float64

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)  # [N, D]
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if len(x) == 0:
            return
        self.num_items += len(x)
        if self.capture_all:
            self.parts.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            if self.raw_sum is None:
                self.raw_sum, self.raw_outer = np.zeros(x.shape[1]), np.zeros([x.shape[1], x.shape[1]])
            self.raw_sum += x64.sum(axis=0)
            self.raw_outer += x64.T @ x64

    def features(self) -> np.ndarray:
        assert self.capture_all
        return np.concatenate(self.parts) if self.parts else np.zeros([0, 0], np.float32)

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean [D] and (biased, as the official code) covariance [D, D]."""
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_sum / self.num_items
        return mean, self.raw_outer / self.num_items - np.outer(mean, mean)

    def save(self, path: Path) -> None:
        arrays = {"num_items": np.int64(self.num_items)}
        if self.capture_all:
            arrays["features"] = self.features()
        if self.capture_mean_cov:
            arrays["raw_sum"], arrays["raw_outer"] = self.raw_sum, self.raw_outer
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, capture_all: bool, capture_mean_cov: bool) -> FeatureStats:
        stats = cls(capture_all=capture_all, capture_mean_cov=capture_mean_cov)
        with np.load(path, allow_pickle=False) as f:
            stats.num_items = int(f["num_items"])
            if capture_all:
                stats.parts = [f["features"]]
            if capture_mean_cov:
                stats.raw_sum, stats.raw_outer = f["raw_sum"], f["raw_outer"]
        return stats


def _distributed(world_size: int) -> bool:
    return world_size > 1 and dist.is_available() and dist.is_initialized()


def gather_interleaved(x: torch.Tensor, world_size: int) -> torch.Tensor:
    """All ranks' [N, D] batches as one [world_size * N, D] batch, item i of rank r at i * world_size + r."""
    if not _distributed(world_size):
        return x
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)


def _rank0_flag(flag: bool, world_size: int, device: torch.device) -> bool:
    """Rank 0's value of `flag` on every rank (so that all ranks take the same branch)."""
    if not _distributed(world_size):
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


@dataclass
class ExtractOptions:
    device: torch.device
    batch_size: int = 64
    rank: int = 0
    world_size: int = 1
    cache_dir: str | os.PathLike | None = None
    progress: bool = True


def real_stats_cache_path(data_path, detector: Detector, options: dict, cache_dir) -> Path:
    key = json.dumps({"data": dataset_fingerprint(data_path), "detector": detector.identity,
                      "call": detector.call_kwargs, **options}, sort_keys=True)
    tag = f"{Path(data_path).stem}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    return Path(cache_dir or default_cache_dir()) / "metric-stats" / tag


def real_feature_stats(data_path, detector: Detector, opts: ExtractOptions, max_items: int | None = None,
                       capture_all: bool = False, capture_mean_cov: bool = False,
                       use_cache: bool = True) -> FeatureStats:
    """Statistics of the detector's features of the first `max_items` real images, from the cache when there."""
    num_items = count_real_images(data_path)
    if max_items is not None:
        num_items = min(num_items, max_items)
    cache_file = real_stats_cache_path(
        data_path, detector, {"max_items": num_items, "all": capture_all, "mean_cov": capture_mean_cov},
        opts.cache_dir)
    if use_cache and _rank0_flag(cache_file.is_file(), opts.world_size, opts.device):
        return FeatureStats.load(cache_file, capture_all, capture_mean_cov)

    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num_items)
    with tqdm(total=num_items, desc="real features", unit="img", disable=not opts.progress or opts.rank != 0) as bar:
        for images in iterate_real_images(data_path, opts.batch_size, num_items, opts.rank, opts.world_size):
            features = detector(torch.from_numpy(images).to(opts.device))
            stats.append(gather_interleaved(features, opts.world_size).cpu().numpy())
            bar.n = stats.num_items
            bar.refresh()
    if use_cache and opts.rank == 0:
        stats.save(cache_file)
    return stats


class LabelSampler:
    """Random labels c [N, c_dim] for a conditional generator, drawn from the data set's labels."""

    def __init__(self, G: torch.nn.Module, data_path, seed: int):
        self.c_dim = int(G.c_dim)
        self.labels = None
        if self.c_dim > 0:
            self.labels = real_labels(data_path) if data_path is not None else None
            if self.labels is None or self.labels.shape[1] != self.c_dim:
                found = "no labels" if self.labels is None else f"labels of size {self.labels.shape[1]}"
                raise UserError(f"the generator is conditional (c_dim={self.c_dim}) but data set {data_path} "
                                f"has {found} in dataset.json")
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int, device: torch.device) -> torch.Tensor:
        if self.labels is None:
            return torch.zeros([n, self.c_dim], device=device)
        return torch.from_numpy(self.labels[self.rng.integers(len(self.labels), size=n)]).to(device)


def generated_uint8(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor, G_kwargs: dict) -> torch.Tensor:
    """Images of G as uint8 [N, C, H, W], quantised as the official metrics do."""
    img = G(z, c, **G_kwargs)
    return (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def generator_feature_stats(G: torch.nn.Module, detector: Detector, opts: ExtractOptions, num_gen: int,
                            data_path=None, seed: int = 0, G_kwargs: dict | None = None,
                            capture_all: bool = False, capture_mean_cov: bool = False,
                            with_labels: bool = False) -> FeatureStats:
    """Statistics of the detector's features of `num_gen` images of G, labels drawn from the data set.
    `with_labels`: each row is the features followed by the label G was given ([N, D + c_dim])."""
    G = copy.deepcopy(G).eval().requires_grad_(False).to(opts.device)
    labels = LabelSampler(G, data_path, seed * opts.world_size + opts.rank)
    rng = torch.Generator(device=opts.device).manual_seed(seed * opts.world_size + opts.rank)
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num_gen)
    with torch.no_grad(), tqdm(total=num_gen, desc="generator features", unit="img",
                               disable=not opts.progress or opts.rank != 0) as bar:
        while not stats.is_full():
            z = torch.randn([opts.batch_size, G.z_dim], generator=rng, device=opts.device)
            c = labels.sample(opts.batch_size, opts.device)
            features = detector(generated_uint8(G, z, c, G_kwargs or {}))
            if with_labels:
                features = torch.cat([features, c.to(features.dtype)], dim=1)
            stats.append(gather_interleaved(features, opts.world_size).cpu().numpy())
            bar.n = stats.num_items
            bar.refresh()
    return stats
