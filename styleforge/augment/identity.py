"""The "none" augmentation: D sees the images as they are."""

from __future__ import annotations

import torch
from torch import Tensor

from styleforge.registry import AUGMENTATIONS


@AUGMENTATIONS.register("none")
class NoAugment(torch.nn.Module):
    """Identity: `aug(images) is images`. Takes no arguments."""

    def forward(self, images: Tensor) -> Tensor:
        return images
