"""R1 (Mescheder et al. 2018): (gamma / 2) * |grad D(x)|^2 on the reals, as StyleGAN2 (lazy, every
--r1-interval D steps). With a multi-scale D (MSG-GAN) the squared norms are averaged over the scales, as
akanimax/msg-stylegan-tf does."""

from __future__ import annotations

import torch

from styleforge.losses.regularizers import Regularizer, input_gradients
from styleforge.registry import REGULARIZERS


@REGULARIZERS.register("r1")
class R1(Regularizer):
    """--gamma: R1 on the reals in D's regularization phase."""

    option = "gamma"
    network = "D"
    lazy = True
    on_reals = True
    needs_input_grad = True
    stat = "Loss/r1_penalty"

    def penalty(self, loss, scored, stats) -> torch.Tensor:
        grads = input_gradients(scored.logits, scored.img)
        # Summed in float32: under bf16 autocast the squares of small gradients would lose their digits.
        r1_penalty = torch.stack([g.float().square().sum(dim=[1, 2, 3]) for g in grads]).mean(dim=0)[:, None]
        stats[self.stat] = r1_penalty.detach()
        return r1_penalty * (self.weight / 2)
