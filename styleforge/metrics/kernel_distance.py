"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased estimate of the squared MMD between
real and generated Inception features with the polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets (100 subsets of at most 1000 items, as the official metric)."""

from __future__ import annotations

import numpy as np

from styleforge.metrics.context import MetricContext, register_metric


def kernel_distance(real: np.ndarray, gen: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
                    seed: int = 0) -> float:
    """Unbiased MMD^2 of features real [Nr, D] and gen [Ng, D], mean over subsets of m = min(Nr, Ng, max) items:
    within-set kernel sums exclude the diagonal (divided by m(m-1)), the cross term is divided by m^2."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 items per set, got {len(real)} real and {len(gen)} generated")
    if m == len(real) == len(gen):  # every subset is both whole sets, reordered: the same value each time
        num_subsets = 1
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        within = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3  # [m, m]
        cross = (x @ y.T / d + 1) ** 3  # [m, m]
        total += (within.sum() - np.trace(within)) / (m - 1) - cross.sum() * 2 / m
    return float(total / num_subsets / m)


def compute_kid(ctx: MetricContext, max_real: int | None, num_gen: int, num_subsets: int = 100,
                max_subset_size: int = 1000) -> float:
    detector = ctx.detector_for("fid")
    real = ctx.real_stats(detector, max_real, capture_all=True).features()
    gen = ctx.generated_stats(detector, num_gen, capture_all=True).features()
    return kernel_distance(real, gen, num_subsets, max_subset_size, seed=ctx.seed)


for _k in (50, 10, 5, 1):
    register_metric(f"kid{_k}k_full", compute_kid, num_gen=_k * 1000, max_real=1_000_000, lower_is_better=True)
register_metric("kid50k", compute_kid, num_gen=50_000, max_real=50_000, lower_is_better=True)
