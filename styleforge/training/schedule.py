"""What may change from one training step to the next: the loop asks a schedule before every step.

`schedule.before_step(cur_nimg)` returns the step's `StepPlan` (its global batch, whether to clear the
optimizers' state) after adjusting whatever it drives (e.g. the networks' level of detail). The schedule
may also transform the real images (`process_reals`), reports progress values for the tick statistics, and
has a state that checkpoints keep, so a resumed run makes the same decisions as an uninterrupted one.

`Schedule` itself changes nothing; `ProgressiveGrowing` (growing.py) grows ProGAN and StyleGAN v1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StepPlan:
    batch: int  # global batch of this step (all ranks)
    reset_optimizers: bool = False  # clear the optimizers' state (moments, step counts) before this step
    lr: float | None = None  # learning rate of G and D for this step (None: the configured ones)


class Schedule:
    """The constant schedule: every step trains on `batch` images, nothing else changes."""

    def __init__(self, batch: int):
        self.batch = batch

    def before_step(self, cur_nimg: int) -> StepPlan:
        return StepPlan(self.batch)

    def process_reals(self, img: torch.Tensor) -> torch.Tensor:
        return img

    def progress(self) -> dict[str, float]:
        """Values for the tick statistics ("Progress/..." -> value)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def make_schedule(cfg: Any, networks: list[torch.nn.Module], img_resolution: int) -> Schedule:
    """The schedule the config asks for; `networks` are G, D and G_ema."""
    if not cfg.grow:
        return Schedule(cfg.batch)
    from styleforge.training.growing import ProgressiveGrowing

    return ProgressiveGrowing(networks, img_resolution, init_res=cfg.grow_init_res, stable_kimg=cfg.grow_stable_kimg,
                              fade_kimg=cfg.grow_fade_kimg, batch=cfg.batch,
                              batch_per_res={int(res): batch for res, batch in cfg.grow_batch.items()},
                              lr_per_res={int(res): lr for res, lr in cfg.grow_lr.items()})
