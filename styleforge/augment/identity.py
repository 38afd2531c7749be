"""The "none" augmentation: D sees the images as they are."""

from __future__ import annotations

from torch import Tensor

from styleforge.augment.base import Augmentation
from styleforge.registry import AUGMENTATIONS


@AUGMENTATIONS.register("none")
class NoAugment(Augmentation):
    """No augmentation: D sees the images as they are.

    `aug(images) is images`; takes no arguments."""

    def forward(self, images: Tensor) -> Tensor:
        return images
