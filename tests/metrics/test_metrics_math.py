"""The metric formulas on features whose answers are known."""

import numpy as np
import pytest
import scipy.linalg
import torch

from styleforge.errors import UserError
from styleforge.metrics.frechet import frechet_distance
from styleforge.metrics.inception_score import inception_score
from styleforge.metrics.kernel_distance import kernel_distance
from styleforge.metrics.perceptual_path_length import filtered_mean, slerp
from styleforge.metrics.precision_recall import precision_recall


def _mean_cov(x):
    mu = x.mean(axis=0)
    return mu, (x - mu).T @ (x - mu) / len(x)


def _frechet_by_eigenvalues(mu1, s1, mu2, s2):
    """Independent reference: tr sqrt(S1 S2) = sum of sqrt of the eigenvalues of S1^1/2 S2 S1^1/2 (PSD)."""
    vals, vecs = np.linalg.eigh(s1)
    root1 = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum()


def test_frechet_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Same eigenvectors, so the trace term is sum (sqrt(a) - sqrt(b))^2.
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("num_items", [500, 20], ids=["full-rank", "near-singular"])
def test_frechet_matches_references_on_random_features(num_items):
    rng = np.random.default_rng(1)
    d = 48  # with 20 items the covariances have rank 19 of 48
    x = rng.normal(size=(num_items, d)) @ rng.normal(size=(d, d))
    y = rng.normal(loc=0.3, size=(num_items, d)) @ rng.normal(size=(d, d))
    (mu1, s1), (mu2, s2) = _mean_cov(x), _mean_cov(y)
    fid = frechet_distance(mu1, s1, mu2, s2)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert fid == pytest.approx(direct, rel=1e-6)
    assert fid == pytest.approx(_frechet_by_eigenvalues(mu1, s1, mu2, s2), rel=1e-6)


def test_kid_is_unbiased_and_separates_distributions():
    rng = np.random.default_rng(2)
    d, m, repeats = 8, 20, 300

    def kid_samples(shift):
        return np.array([kernel_distance(rng.normal(size=(m, d)), rng.normal(loc=shift, size=(m, d)),
                                         num_subsets=1, max_subset_size=m, seed=i) for i in range(repeats)])

    same = kid_samples(0.0)
    standard_error = same.std(ddof=1) / np.sqrt(repeats)
    assert abs(same.mean()) < 3.5 * standard_error  # the biased V-statistic sits ~70 SE above 0 here
    different = kid_samples(1.0)
    assert different.mean() > 20 * standard_error


def test_kid_uses_subsets_of_at_most_the_smaller_set():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(loc=2, size=(50, 4))
    value = kernel_distance(x, y, num_subsets=10, max_subset_size=1000)
    assert value > 0 and value == kernel_distance(x, y, num_subsets=10, max_subset_size=1000)  # seeded


def test_kid_of_two_whole_sets_is_the_unbiased_mmd_of_those_sets():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 6)), rng.normal(loc=0.5, size=(40, 6))
    k = lambda a, b: (a @ b.T / 6 + 1) ** 3
    off_diagonal_mean = lambda a: (k(a, a).sum() - np.trace(k(a, a))) / (40 * 39)
    mmd = off_diagonal_mean(x) + off_diagonal_mean(y) - 2 * k(x, y).mean()
    assert kernel_distance(x, y, num_subsets=100, max_subset_size=1000) == pytest.approx(mmd, rel=1e-9)


def _precision_recall_brute_force(real, gen, k):
    def radii(s):
        d = np.linalg.norm(s[:, None] - s[None], axis=2)
        return np.sort(d, axis=1)[:, k]

    def inside(probes, s):
        return (np.linalg.norm(probes[:, None] - s[None], axis=2) <= radii(s)[None]).any(axis=1).mean()

    return inside(gen, real), inside(real, gen)


def test_precision_recall_identical_disjoint_and_reference():
    rng = np.random.default_rng(4)
    real = torch.from_numpy(rng.normal(size=(60, 5)).astype(np.float32))
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    far = real + 100
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}

    gen = torch.from_numpy(rng.normal(loc=0.7, scale=0.8, size=(45, 5)).astype(np.float32))
    expected = _precision_recall_brute_force(real.double().numpy(), gen.double().numpy(), 3)
    blocked = precision_recall(real, gen, nhood_size=3, row_batch_size=7, col_batch_size=5)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    assert blocked["precision"] == pytest.approx(expected[0]) and blocked["recall"] == pytest.approx(expected[1])


def test_inception_score_extremes():
    num, classes = 100, 10
    constant = np.zeros((num, classes))
    constant[:, 3] = 1
    assert inception_score(constant) == {"mean": pytest.approx(1.0), "std": pytest.approx(0.0)}
    uniform = np.eye(classes)[np.arange(num) % classes]  # each split holds every class once
    assert inception_score(uniform) == {"mean": pytest.approx(classes), "std": pytest.approx(0.0, abs=1e-9)}
    with pytest.raises(UserError, match="probabilities"):
        inception_score(uniform * 3)


def test_filtered_mean_drops_the_outer_percentiles_as_official():
    dist = np.random.default_rng(5).permutation(np.arange(1000.0))
    # percentile 1 ('lower') is item 9, percentile 99 ('higher') is item 990 of the sorted values.
    assert filtered_mean(dist) == pytest.approx(np.arange(9, 991).mean())


def test_slerp_ends_and_constant_speed():
    a, b = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    unit_a, unit_b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(slerp(a, b, torch.zeros(5, 1, dtype=torch.float64)), unit_a)
    assert torch.allclose(slerp(a, b, torch.ones(5, 1, dtype=torch.float64)), unit_b)
    mid = slerp(a, b, torch.full((5, 1), 0.5, dtype=torch.float64))
    assert torch.allclose((mid * unit_a).sum(1), (mid * unit_b).sum(1))  # equal angles to both ends
    assert torch.allclose(mid.norm(dim=1), torch.ones(5, dtype=torch.float64))
