"""Class metrics, read by a classifier of the data set's classes (`--detector builtin:digits`).

- `class_acc`: the share of generated images that the classifier assigns to the class the (conditional)
  generator was asked for. Labels are drawn from the data set's, as for every metric.
- `class_coverage`: the entropy of the histogram of predicted classes divided by log K (K: the classifier's
  classes): 1 when every class is predicted equally often, 0 when only one is. Any generator.
"""

from __future__ import annotations

import numpy as np

from styleforge.errors import UserError
from styleforge.metrics.context import MetricContext, register_metric


def class_accuracy(asked: np.ndarray, predicted: np.ndarray) -> float:
    """The share of predicted class indices [N] that equal the asked ones [N]."""
    return float((np.asarray(asked) == np.asarray(predicted)).mean())


def class_coverage(predicted: np.ndarray, num_classes: int) -> float:
    """Entropy of the predicted classes' histogram / log(num_classes), in [0, 1]."""
    if num_classes < 2:
        raise ValueError(f"coverage needs at least 2 classes, got {num_classes}")
    share = np.bincount(np.asarray(predicted), minlength=num_classes) / len(predicted)
    share = share[share > 0]
    return float((share * np.log(1 / share)).sum() / np.log(num_classes))


def generated_predictions(ctx: MetricContext, num_gen: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The classes G was asked for [N] (empty for an unconditional G), the predicted ones [N], and K."""
    rows = ctx.generated_stats(ctx.detector_for("classes"), num_gen, capture_all=True, with_labels=True).features()
    c_dim = int(ctx.G.c_dim)
    scores, c = rows[:, :rows.shape[1] - c_dim], rows[:, rows.shape[1] - c_dim:]
    if scores.shape[1] < 2:
        raise UserError(f"the class metrics need a classifier with one score per class; the detector returned "
                        f"{scores.shape[1]} value(s) per image")
    asked = c.argmax(axis=1) if c_dim else np.zeros([0], dtype=np.int64)
    return asked, scores.argmax(axis=1), scores.shape[1]


def compute_class_acc(ctx: MetricContext, num_gen: int) -> float:
    if not ctx.G.c_dim:
        raise UserError("class_acc needs a conditional generator (this one has c_dim 0); class_coverage works "
                        "for any generator")
    asked, predicted, num_classes = generated_predictions(ctx, num_gen)
    if num_classes != ctx.G.c_dim:
        raise UserError(f"the detector tells {num_classes} classes but the generator has {ctx.G.c_dim}")
    return class_accuracy(asked, predicted)


def compute_class_coverage(ctx: MetricContext, num_gen: int) -> float:
    _, predicted, num_classes = generated_predictions(ctx, num_gen)
    return class_coverage(predicted, num_classes)


register_metric("class_acc", compute_class_acc, num_gen=10_000, lower_is_better=False)
register_metric("class_coverage", compute_class_coverage, num_gen=10_000, lower_is_better=False)
