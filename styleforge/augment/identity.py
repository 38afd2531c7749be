"""The "none" augmentation: D sees the images as they are."""

from __future__ import annotations

from torch import Tensor

from styleforge.augment.base import Augmentation
from styleforge.registry import AUGMENTATIONS


@AUGMENTATIONS.register("none")
class NoAugment(Augmentation):
    """Identity: `aug(images) is images`. Takes no arguments."""

    def forward(self, images: Tensor) -> Tensor:
        return images
