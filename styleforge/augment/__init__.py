"""Differentiable augmentations applied to every D input, registered in `registry.AUGMENTATIONS`:
"ada" (AdaptiveAugment, with the AdaptiveP controller for its p), "diffaug" (DiffAugment), "none"."""

from styleforge.augment.ada import AdaDraw, AdaOptions, AdaptiveAugment
from styleforge.augment.adaptive import AdaptiveP
from styleforge.augment.diffaug import DiffAugment
from styleforge.augment.identity import NoAugment

__all__ = ["AdaDraw", "AdaOptions", "AdaptiveAugment", "AdaptiveP", "DiffAugment", "NoAugment"]
