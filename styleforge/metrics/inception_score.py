"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) over 10 splits of the generated
images, reported as mean and standard deviation over the splits. Probabilities come from the
Inception network without the output bias, as the official metric."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from styleforge.errors import UserError
from styleforge.metrics.context import MetricContext, register_metric


def inception_score(probs: np.ndarray, num_splits: int = 10) -> dict[str, float]:
    """{'mean': ..., 'std': ...} of the score of class probabilities [N, K] split into `num_splits` parts."""
    probs = np.asarray(probs, dtype=np.float64)
    if not np.allclose(probs.sum(axis=1), 1, atol=1e-3) or (probs < 0).any():
        raise UserError("the Inception Score needs class probabilities (non-negative rows summing to 1) "
                        "from its detector")
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0, keepdims=True)  # p(y) [1, K]
        # xlogy: 0 * log 0 = 0, so one-hot rows are fine.
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores))}


def compute_is(ctx: MetricContext, num_gen: int, num_splits: int = 10) -> dict[str, float]:
    probs = ctx.generated_stats(ctx.detector_for("is"), num_gen, capture_all=True).features()
    return inception_score(probs, num_splits)


for _k in (50, 10, 5, 1):
    register_metric(f"is{_k}k", compute_is, num_gen=_k * 1000, lower_is_better=False)
