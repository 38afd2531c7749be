"""Progressive growing (ProGAN, StyleGAN v1) as a training schedule.

The level of detail is a function of the images shown (methods.md, official `training_schedule`):
  phase = floor(kimg / (stable + fade)), t = kimg - phase * (stable + fade),
  lod = log2 R - log2 init_res - phase - max(t - stable, 0) / fade, clamped at 0,
so each resolution trains `stable` kimg alone and then fades in the next one over `fade` kimg. Before every
step the schedule sets the lod of G, D and G_ema, picks the batch of the resolution being trained, and resets
the optimizers' state whenever floor(lod) or ceil(lod) changes (a fade starts or ends), as the official code;
the learning rate may differ per resolution too (StyleGAN v1 and ProGAN raise it from 128 px on).
Reals are shown at the lod (progressive.reals_at_lod). Since lod depends on cur_nimg alone and the previous
lod is kept in checkpoints, a run resumed in the middle of a fade continues exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from styleforge.errors import UserError
from styleforge.networks.progressive import has_lod, quantize_lod, reals_at_lod, set_lod
from styleforge.training.schedule import Schedule, StepPlan


def lod_at(cur_nimg: int, img_resolution: int, init_res: int, stable_kimg: float, fade_kimg: float) -> float:
    """The lod after `cur_nimg` images (counted in whole images, so phase boundaries fall exactly)."""
    stable, fade = round(stable_kimg * 1000), round(fade_kimg * 1000)
    phase = cur_nimg // (stable + fade) if stable + fade > 0 else 0
    lod = math.log2(img_resolution) - math.log2(init_res) - phase
    if fade > 0:
        lod -= max(cur_nimg - phase * (stable + fade) - stable, 0) / fade
    return max(lod, 0.0)


class ProgressiveGrowing(Schedule):
    def __init__(self, networks: list[torch.nn.Module], img_resolution: int, init_res: int = 4,
                 stable_kimg: float = 600, fade_kimg: float = 600, batch: int = 32,
                 batch_per_res: dict[int, int] | None = None, lr_per_res: dict[int, float] | None = None):
        super().__init__(batch)
        flat = [name for name, net in zip(("G", "D"), networks) if not has_lod(net)]
        if flat:
            raise UserError(f"--grow: {' and '.join(flat)} cannot grow (no level of detail); "
                            "use --g progan or stylegan1 and --d progan or stylegan1")
        self.networks = networks
        self.img_resolution = img_resolution
        self.init_res, self.stable_kimg, self.fade_kimg = init_res, stable_kimg, fade_kimg
        self.batch_per_res = dict(batch_per_res or {})
        self.lr_per_res = dict(lr_per_res or {})
        self.lod: float | None = None  # of the coming step
        self.prev_lod: float | None = None  # of the previous step

    def lod_at(self, cur_nimg: int) -> float:
        return quantize_lod(lod_at(cur_nimg, self.img_resolution, self.init_res, self.stable_kimg, self.fade_kimg))

    def resolution_at(self, lod: float) -> int:
        """The resolution being trained (the new one during a fade)."""
        return self.img_resolution >> math.floor(lod)

    def before_step(self, cur_nimg: int) -> StepPlan:
        lod = self.lod_at(cur_nimg)
        for net in self.networks:
            set_lod(net, lod)
        prev = self.prev_lod
        reset = prev is not None and (math.floor(lod) != math.floor(prev) or math.ceil(lod) != math.ceil(prev))
        self.lod = self.prev_lod = lod
        res = self.resolution_at(lod)
        return StepPlan(self.batch_per_res.get(res, self.batch), reset, self.lr_per_res.get(res))

    def process_reals(self, img: torch.Tensor) -> torch.Tensor:
        return reals_at_lod(img, self.lod)

    def progress(self) -> dict[str, float]:
        if self.lod is None:
            return {}
        return {"Progress/lod": self.lod, "Progress/resolution": float(self.resolution_at(self.lod))}

    def state_dict(self) -> dict[str, Any]:
        return {"prev_lod": self.prev_lod}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prev_lod = state.get("prev_lod")
