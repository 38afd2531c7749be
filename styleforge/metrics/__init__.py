"""Feature networks and GAN metrics (FID, KID, precision/recall, IS, PPL, class accuracy and coverage).

Importing the package registers every metric in `styleforge.registry.METRICS`.
"""

from styleforge.metrics import (
    class_metrics,
    frechet,
    inception_score,
    kernel_distance,
    perceptual_path_length,
    precision_recall,
)
from styleforge.metrics.compute import append_metric_result, compute_metric
from styleforge.metrics.detectors import Detector, load_detector
from styleforge.metrics.real_images import iterate_real_images

__all__ = [
    "append_metric_result", "compute_metric", "Detector", "load_detector", "iterate_real_images",
    "class_metrics", "frechet", "inception_score", "kernel_distance", "perceptual_path_length", "precision_recall",
]
