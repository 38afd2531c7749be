"""Frechet Inception Distance (Heusel et al. 2017): the Frechet distance between Gaussians fitted to
Inception pool features of real and generated images.

FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)), with the matrix square root by
`scipy.linalg.sqrtm` and the reference implementation's safeguards (TTUR / pytorch-fid): a product
that is numerically singular gets eps on the diagonals, and the tiny imaginary part that sqrtm can
return is dropped.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from styleforge.metrics.context import MetricContext, register_metric


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2); means [D], covariances [D, D]."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shapes differ: means {mu1.shape} vs {mu2.shape}, "
                         f"covariances {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.abs(np.diagonal(covmean).imag).max()
        if largest > 1e-3:  # the reference raises here; a metric during training should not, so warn
            warnings.warn(f"Frechet distance: sqrtm has an imaginary component of {largest:.3g}", stacklevel=2)
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def compute_fid(ctx: MetricContext, max_real: int | None, num_gen: int) -> float:
    detector = ctx.detector_for("fid")
    mu_real, sigma_real = ctx.real_stats(detector, max_real, capture_mean_cov=True).mean_cov()
    mu_gen, sigma_gen = ctx.generated_stats(detector, num_gen, capture_mean_cov=True).mean_cov()
    return frechet_distance(mu_real, sigma_real, mu_gen, sigma_gen)


# `_full`: all real images; the legacy `fid50k` uses the first 50k.
for _k in (50, 10, 5, 1):
    register_metric(f"fid{_k}k_full", compute_fid, num_gen=_k * 1000, max_real=None, lower_is_better=True)
register_metric("fid50k", compute_fid, num_gen=50_000, max_real=50_000, lower_is_better=True)
