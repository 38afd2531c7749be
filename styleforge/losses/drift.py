"""ProGAN's drift penalty: epsilon * D(x)^2 on the reals, which keeps WGAN's critic from drifting away from
zero (NVlabs/progressive_growing_of_gans, loss.py, wgan_epsilon 0.001)."""

from __future__ import annotations

import torch

from styleforge.losses.regularizers import Regularizer
from styleforge.registry import REGULARIZERS


@REGULARIZERS.register("drift")
class Drift(Regularizer):
    """--drift-weight: epsilon * D(x)^2 on the reals in every D step."""

    option = "drift_weight"
    network = "D"
    on_reals = True
    stat = "Loss/drift_penalty"

    def penalty(self, loss, scored, stats) -> torch.Tensor:
        drift = scored.logits.float().square()
        stats[self.stat] = drift.detach()
        return drift * self.weight
