"""WGAN-GP's gradient penalty (Gulrajani et al. 2017), as ProGAN trains with it
(NVlabs/progressive_growing_of_gans, loss.py): lambda / target^2 * (|grad D(x_hat)| - target)^2 at
x_hat = lerp(x, G(z), u), u ~ U(0, 1) per sample. It runs in D's regularization phase: every step with
--r1-interval 0 (the official recipe), else every k steps scaled by k. The fakes carry the reals' labels,
as in the official code. Multi-scale D: every scale is interpolated with the same u, and the penalty is
averaged over the scales."""

from __future__ import annotations

import torch

from styleforge.losses.regularizers import Regularizer, input_gradients
from styleforge.registry import REGULARIZERS


@REGULARIZERS.register("gradient_penalty")
class GradientPenalty(Regularizer):
    """--gp-weight: (|grad D(x_hat)| - 1)^2 between reals and fakes in D's regularization phase."""

    option = "gp_weight"
    network = "D"
    lazy = True
    own_pass = True
    stat = "Loss/gp_penalty"

    def __init__(self, weight: float, target: float = 1.0):
        super().__init__(weight)
        self.target = target

    def own_pass_penalty(self, loss, chunk, stats) -> torch.Tensor:
        real_img, real_c = chunk.real_img, chunk.real_c
        fakes = chunk.fakes
        if fakes is None or real_c.shape[1] > 0:  # D's main phase drew them with G's labels
            with torch.no_grad():
                fakes = loss.generate(chunk.gen_z, real_c, all_scales=loss.multi_scale)
        u = torch.rand([real_img.shape[0], 1, 1, 1], device=real_img.device, dtype=real_img.dtype)
        reals = loss.reals(real_img, requires_grad=False)
        pairs = zip(reals, fakes.img) if loss.multi_scale else [(reals, fakes.img)]
        mixed = [torch.lerp(r, f.to(r.dtype), u).requires_grad_(True) for r, f in pairs]
        scored = loss.discriminate(mixed if loss.multi_scale else mixed[0], real_c)
        grads = input_gradients(scored.logits, scored.img)
        norms = [g.float().square().sum(dim=[1, 2, 3]).sqrt() for g in grads]
        penalty = torch.stack([(n - self.target).square() for n in norms]).mean(dim=0)[:, None]  # [N, 1]
        stats[self.stat] = penalty.detach()
        return scored.logits * 0 + penalty * (self.weight / self.target**2)
