"""Improved precision and recall (Kynkaanniemi et al. 2019) on VGG16 fc2 features.

Each set of features defines a manifold: the union of balls around its points, each with the radius
of its k-th nearest neighbour (k = 3) within the set. Precision is the fraction of generated points
inside the real manifold; recall the fraction of real points inside the generated manifold.
Distances are computed in row x column blocks (as the official code) but only the k+1 smallest per
row and the "inside" flags are kept, so memory stays at one block.
"""

from __future__ import annotations

import torch

from styleforge.metrics.context import MetricContext, register_metric


def _column_blocks(cols: torch.Tensor, col_batch_size: int):
    for start in range(0, len(cols), col_batch_size):
        yield start, cols[start:start + col_batch_size]


def kth_neighbour_radii(manifold: torch.Tensor, k: int, row_batch_size: int = 10_000,
                        col_batch_size: int = 10_000) -> torch.Tensor:
    """Distance [N] from each point to its k-th nearest neighbour in `manifold` [N, D] (itself excluded)."""
    radii = []
    for rows in manifold.split(row_batch_size):
        nearest = None  # [R, <= k+1] smallest distances so far, the point itself (0) included
        for _, cols in _column_blocks(manifold, col_batch_size):
            dist = torch.cdist(rows, cols)  # [R, C]
            both = dist if nearest is None else torch.cat([nearest, dist], dim=1)
            nearest = both.topk(min(k + 1, both.shape[1]), dim=1, largest=False).values
        if nearest.shape[1] < k + 1:
            raise ValueError(f"precision/recall with k={k} needs more than {k} items per set, got {len(manifold)}")
        radii.append(nearest[:, k])
    return torch.cat(radii)


def inside_manifold(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, row_batch_size: int = 10_000,
                    col_batch_size: int = 10_000) -> torch.Tensor:
    """Bool [P]: whether each probe lies within the radius of some manifold point."""
    inside = []
    for rows in probes.split(row_batch_size):
        hit = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        for start, cols in _column_blocks(manifold, col_batch_size):
            hit |= (torch.cdist(rows, cols) <= radii[start:start + len(cols)]).any(dim=1)
        inside.append(hit)
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, gen: torch.Tensor, nhood_size: int = 3, row_batch_size: int = 10_000,
                     col_batch_size: int = 10_000) -> dict[str, float]:
    """{'precision': ..., 'recall': ...} of features real [Nr, D] and gen [Ng, D]."""
    real, gen = real.to(torch.float32), gen.to(torch.float32)
    results = {}
    for name, manifold, probes in (("precision", real, gen), ("recall", gen, real)):
        radii = kth_neighbour_radii(manifold, nhood_size, row_batch_size, col_batch_size)
        inside = inside_manifold(probes, manifold, radii, row_batch_size, col_batch_size)
        results[name] = inside.to(torch.float32).mean().item()
    return results


def compute_pr(ctx: MetricContext, max_real: int | None, num_gen: int, nhood_size: int = 3) -> dict[str, float]:
    detector = ctx.detector_for("pr")
    device = ctx.extract.device
    real = torch.from_numpy(ctx.real_stats(detector, max_real, capture_all=True).features()).to(device)
    gen = torch.from_numpy(ctx.generated_stats(detector, num_gen, capture_all=True).features()).to(device)
    return precision_recall(real, gen, nhood_size)


for _k in (50, 10, 5, 1):
    register_metric(f"pr{_k}k3_full", compute_pr, num_gen=_k * 1000, max_real=200_000, lower_is_better=False)
register_metric("pr50k3", compute_pr, num_gen=50_000, max_real=50_000, lower_is_better=False)
