"""A generator's numbers beside the floor: the same numbers for real images that no generator can beat.

The real images are split at random (a fixed seed) into halves A and B; not by index, since data sets are
often ordered (the built-in digits cycle 0, 1, ..., 9, so even indices are mostly even digits). The floor
measures A as if it were generated, against B; the generator draws as many images as A holds, each asked
for the class of its image in A, and is measured against B the same way. Equal sample sizes matter: FID's
bias grows as the samples shrink, so only numbers from equal counts can stand side by side. One pass of a
detector that serves FID and the class metrics (`builtin:digits`) gives FID, KID, precision/recall,
class_acc and class_coverage. Used by the demo report and benchmarks/bench_quality.py; training and
`styleforge metrics` use the registered metrics.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.metrics.class_metrics import class_accuracy, class_coverage
from styleforge.metrics.detectors import Detector, load_detector
from styleforge.metrics.feature_stats import FeatureStats, generated_uint8
from styleforge.metrics.frechet import frechet_distance
from styleforge.metrics.kernel_distance import kernel_distance
from styleforge.metrics.precision_recall import precision_recall
from styleforge.metrics.real_images import iterate_real_images, real_labels

SPLIT_SEED = 0


@dataclass
class Sample:
    """What the detector saw of a set of images: features [N, D], predicted classes [N], asked classes [N]
    (the real labels for real images; None without labels)."""

    features: np.ndarray
    predicted: np.ndarray
    asked: np.ndarray | None


class _Reader:
    """The detector's two outputs for one batch: features (role `fid`) and class scores (role `classes`)."""

    def __init__(self, detector: str | os.PathLike, device: torch.device):
        self.features: Detector = load_detector("fid", detector, device=device)
        self.classes: Detector = load_detector("classes", detector, device=device)
        self.num_classes = 0

    def read(self, batches, asked: np.ndarray | None) -> Sample:
        features, predicted = [], []
        for images in batches:
            features.append(self.features(images).cpu().numpy())
            scores = self.classes(images)
            self.num_classes = scores.shape[1]
            predicted.append(scores.argmax(dim=1).cpu().numpy())
        return Sample(np.concatenate(features), np.concatenate(predicted), asked)


def measure(sample: Sample, reference: np.ndarray, num_classes: int, seed: int = 0) -> dict[str, float | None]:
    """FID, KID, precision, recall of `sample` against reference features [M, D]; class_acc (None without asked
    classes) and class_coverage of its predictions."""
    stats = []
    for features in (sample.features, reference):
        s = FeatureStats(capture_mean_cov=True)
        s.append(features)
        stats.append(s.mean_cov())
    pr = precision_recall(torch.from_numpy(reference), torch.from_numpy(sample.features))
    return {
        "fid": frechet_distance(*stats[1], *stats[0]),
        "kid": kernel_distance(reference, sample.features, seed=seed),
        "precision": pr["precision"], "recall": pr["recall"],
        "class_acc": None if sample.asked is None else class_accuracy(sample.asked, sample.predicted),
        "class_coverage": class_coverage(sample.predicted, num_classes),
    }


def _read_real(reader: _Reader, data_path: str | os.PathLike, device: torch.device, batch_size: int) -> Sample:
    """Every image of a data set, its labels (if any) as the asked classes."""
    batches = (torch.from_numpy(b).to(device) for b in iterate_real_images(data_path, batch_size))
    labels = real_labels(data_path)
    return reader.read(batches, None if labels is None else labels.argmax(axis=1))


def _real_halves(reader: _Reader, data_path: str | os.PathLike, device: torch.device,
                 batch_size: int) -> tuple[Sample, Sample]:
    real = _read_real(reader, data_path, device, batch_size)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(real.features))
    half = len(order) // 2  # equal halves (one image left out of an odd count): KID then needs one subset
    halves = [Sample(real.features[part], real.predicted[part], None if real.asked is None else real.asked[part])
              for part in (order[:half], order[half:2 * half])]
    return halves[0], halves[1]


def _generated(reader: _Reader, G: torch.nn.Module, asked: np.ndarray | None, num: int, device: torch.device,
               batch_size: int, seed: int, G_kwargs: dict) -> Sample:
    G_asked = asked if G.c_dim else None
    if G_asked is not None and G.c_dim != reader.num_classes:
        raise UserError(f"the generator has {G.c_dim} classes but the detector tells {reader.num_classes}")
    rng = torch.Generator(device=device).manual_seed(seed)

    def batches():
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            z = torch.randn([n, G.z_dim], generator=rng, device=device)
            c = torch.zeros([n, G.c_dim], device=device)
            if G_asked is not None:
                c[torch.arange(n), torch.from_numpy(G_asked[start:start + n]).to(device)] = 1
            yield generated_uint8(G, z, c, G_kwargs)

    with torch.no_grad():
        return reader.read(batches(), G_asked)


def quality_with_floor(G: torch.nn.Module, data_path: str | os.PathLike, device: torch.device | str = "cpu",
                       detector: str | os.PathLike = "builtin:digits", seed: int = 0, batch_size: int = 64,
                       G_kwargs: dict | None = None) -> dict:
    """{"generated": numbers, "floor": numbers, "num_images": |A| = |B|} with numbers as `measure` returns
    them. `data_path`: the reference data set (for limited-data runs: the full one)."""
    device = torch.device(device)
    reader = _Reader(detector, device)
    half_a, half_b = _real_halves(reader, data_path, device, batch_size)
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    generated = _generated(reader, G, half_a.asked, len(half_a.features), device, batch_size, seed, G_kwargs or {})
    return {"generated": measure(generated, half_b.features, reader.num_classes, seed),
            "floor": measure(half_a, half_b.features, reader.num_classes, seed),
            "num_images": len(half_a.features)}


def copying_the_training_set(train_path: str | os.PathLike, data_path: str | os.PathLike,
                             device: torch.device | str = "cpu", detector: str | os.PathLike = "builtin:digits",
                             seed: int = 0, batch_size: int = 64) -> dict[str, float | None]:
    """The numbers of a "generator" that only copies its training images (`train_path`, e.g. a small subset of
    `data_path`): drawn with replacement, as many as half A holds, each of the class asked for where labelled,
    and measured against B like a generator. What a model of a small training set reaches by memorizing it;
    training images that are also in B make it a little too good."""
    device = torch.device(device)
    reader = _Reader(detector, device)
    half_a, half_b = _real_halves(reader, data_path, device, batch_size)
    train = _read_real(reader, train_path, device, batch_size)
    rng = np.random.default_rng(seed)
    if train.asked is not None and half_a.asked is not None:
        picks = np.array([rng.choice(np.flatnonzero(train.asked == k)) for k in half_a.asked])
    else:
        picks = rng.integers(len(train.features), size=len(half_a.features))
    copies = Sample(train.features[picks], train.predicted[picks], None if train.asked is None else train.asked[picks])
    return measure(copies, half_b.features, reader.num_classes, seed)
