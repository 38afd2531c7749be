"""What the training loop asks of an augmentation besides `aug(images)`: to build itself from the config, and,
for an adaptive one, to observe D and adapt between steps, reporting and checkpointing its state. The
defaults are those of a fixed augmentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Augmentation(torch.nn.Module):
    @classmethod
    def from_config(cls, cfg: Any) -> Augmentation:
        return cls(**cfg.aug_kwargs)

    def observe(self, real_logits: torch.Tensor) -> None:
        """D's logits on the (augmented) reals of one chunk of a main D step."""

    def end_step(self, batch: int, all_reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """After every training step of `batch` images (global); `all_reduce_sum` sums a tensor over ranks."""

    def progress(self) -> dict[str, float]:
        """Values for the tick statistics ("Progress/..." -> value)."""
        return {}

    def training_state(self) -> dict[str, Any]:
        """JSON-able state a checkpoint keeps (so a resumed run adapts exactly as the uninterrupted one)."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        pass
