"""What a registered metric receives: the generator, the data, the detector choice and the run options."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from styleforge.errors import UserError
from styleforge.metrics.detectors import Detector, load_detector, wrap_module
from styleforge.metrics.feature_stats import ExtractOptions, FeatureStats, generator_feature_stats, real_feature_stats
from styleforge.registry import METRICS


@dataclass
class MetricContext:
    G: torch.nn.Module
    data_path: str | os.PathLike | None
    extract: ExtractOptions
    # A file (TorchScript or state dict), a module, a ready Detector, or None for the standard network.
    detector: str | os.PathLike | torch.nn.Module | Detector | None = None
    detector_kind: str = "auto"
    num_gen: int | None = None  # overrides the metric's number of generated images (or PPL samples)
    max_real: int | None = None  # overrides the metric's number of real images
    seed: int = 0
    G_kwargs: dict = field(default_factory=dict)  # e.g. truncation_psi, noise_mode
    use_cache: bool = True

    def detector_for(self, role: str) -> Detector:
        if isinstance(self.detector, Detector):
            return self.detector
        if isinstance(self.detector, torch.nn.Module):
            return wrap_module(self.detector.to(self.extract.device), role)
        return load_detector(role, self.detector, self.detector_kind, self.extract.device, self.extract.cache_dir)

    def gen_count(self, default: int) -> int:
        return int(self.num_gen) if self.num_gen is not None else default

    def real_count(self, default: int | None) -> int | None:
        return int(self.max_real) if self.max_real is not None else default

    def real_stats(self, detector: Detector, max_items: int | None, **capture) -> FeatureStats:
        if self.data_path is None:
            raise UserError("this metric compares with real images: give the data set (--data)")
        return real_feature_stats(self.data_path, detector, self.extract, max_items, use_cache=self.use_cache,
                                  **capture)

    def generated_stats(self, detector: Detector, num_gen: int, **capture) -> FeatureStats:
        return generator_feature_stats(self.G, detector, self.extract, num_gen, self.data_path, self.seed,
                                       self.G_kwargs, **capture)


def register_metric(name: str, compute: Callable[..., float | dict[str, float]], num_gen: int, *,
                    lower_is_better: bool, **kwargs) -> None:
    """Registers `name` in `registry.METRICS` as `compute(ctx, num_gen=..., **kwargs)`, where `num_gen` and
    a `max_real` keyword can be overridden per call (MetricContext.num_gen / max_real). A float result is
    reported as {name: value}, a dict {key: value} as {name_key: value}.

    `lower_is_better` declares the direction of the first (or only) value, the one that picks the best
    checkpoint in training; the registered function carries it as `.lower_is_better`."""

    def metric(ctx: MetricContext) -> dict[str, float]:
        options = dict(kwargs)
        if "max_real" in options:
            options["max_real"] = ctx.real_count(options["max_real"])
        value = compute(ctx, num_gen=ctx.gen_count(num_gen), **options)
        if isinstance(value, dict):
            return {f"{name}_{key}": float(v) for key, v in value.items()}
        return {name: float(value)}

    metric.default_num_gen = num_gen
    metric.lower_is_better = lower_is_better
    METRICS.register(name)(metric)
