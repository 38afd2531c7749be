"""The controller that adapts ADA's augmentation probability p to how much D overfits.

The overfitting heuristic is r_t = E[sign(D(real))]: near 0 when D cannot tell training reals from
fakes, near 1 when it has memorized them. Every `interval` D steps p moves by a fixed step towards
holding r_t at `target`; the step is such that p can go from 0 to 1 in `speed_kimg` thousand images.

Use in a training loop (the statistics are a tensor so that ranks can sum them first):

    ada = AdaptiveP(target=0.6)
    ...                                    # every D step on reals:
    ada.accumulate(real_logits)
    if ada.ready:
        torch.distributed.all_reduce(ada.stats)   # multi-GPU only
        augment.p = ada.update(augment.p, batch_size)   # batch_size: global batch (all ranks)
"""

from __future__ import annotations

import torch
from torch import Tensor

from styleforge.errors import UserError


class AdaptiveP:
    """Accumulates sign(D(real)) and turns it into updates of p.

    Args:
        target: the r_t that p is tuned to hold (0.6 in the paper).
        speed_kimg: thousands of images over which p can move by 1 (500; 100 is used when resuming).
        interval: D steps between updates (4).
    """

    def __init__(self, target: float = 0.6, speed_kimg: float = 500, interval: int = 4):
        if not 0 <= target <= 1:
            raise UserError(f"ADA target must be in [0, 1], got {target}")
        if not speed_kimg > 0:
            raise UserError(f"ADA speed_kimg must be > 0, got {speed_kimg}")
        if int(interval) != interval or interval < 1:
            raise UserError(f"ADA interval must be a positive integer, got {interval}")
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = int(interval)
        self.stats = torch.zeros(2)  # [sum of sign(D(real)), number of logits] since the last update
        self.num_steps = 0  # accumulate() calls since the last update
        self.last_rt: float | None = None  # r_t of the last update, for logging

    def accumulate(self, real_logits: Tensor) -> None:
        """Adds the signs of one D step's logits on reals (any shape; no sync with the device)."""
        logits = real_logits.detach()
        if self.stats.device != logits.device:
            self.stats = self.stats.to(logits.device)
        self.stats[0] += logits.sign().sum()
        self.stats[1] += logits.numel()
        self.num_steps += 1

    @property
    def ready(self) -> bool:
        """Whether `interval` D steps have been accumulated, i.e. it is time to call update()."""
        return self.num_steps >= self.interval

    def update(self, p: float, batch_size: int) -> float:
        """The new p from the accumulated statistics (then cleared): p + sign(r_t - target) * step, at least 0.

        step = batch_size * interval / (speed_kimg * 1000), batch_size being the global batch per D step.
        Returns p unchanged if nothing was accumulated.
        """
        total, count = self.stats.tolist()
        self.stats.zero_()
        self.num_steps = 0
        if count == 0:
            return p
        self.last_rt = total / count
        step = batch_size * self.interval / (self.speed_kimg * 1000)
        sign = (self.last_rt > self.target) - (self.last_rt < self.target)
        return max(p + sign * step, 0.0)

    def state_dict(self) -> dict[str, float]:
        """Pending statistics and the last r_t (if any), as plain floats (for a checkpoint's JSON metadata)."""
        total, count = self.stats.tolist()
        state = {"signs_sum": total, "signs_count": count, "num_steps": float(self.num_steps)}
        if self.last_rt is not None:
            state["last_rt"] = self.last_rt
        return state

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.stats = torch.tensor([state["signs_sum"], state["signs_count"]], device=self.stats.device)
        self.num_steps = int(state["num_steps"])
        self.last_rt = state.get("last_rt")
