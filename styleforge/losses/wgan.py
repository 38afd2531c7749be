"""The Wasserstein loss (Arjovsky et al. 2017): G minimizes -D(G(z)), D minimizes D(G(z)) - D(x).

`wgangp` is it as ProGAN trains (NVlabs/progressive_growing_of_gans, loss.py): with the gradient penalty
(--gp-weight 10) and the drift penalty (--drift-weight 0.001) unless set otherwise, and no R1."""

from __future__ import annotations

import torch

from styleforge.losses.base import GANLoss
from styleforge.registry import LOSSES


@LOSSES.register("wgan")
class WassersteinLoss(GANLoss):
    """Wasserstein loss without regularizers of its own (add --gp-weight, --drift-weight, --gamma)."""

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        return -fake_logits

    def discriminator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits - real_logits


@LOSSES.register("wgangp")
class WGANGPLoss(WassersteinLoss):
    """WGAN-GP as ProGAN: gradient penalty 10, drift 0.001, no R1 (each overridable)."""

    default_weights = {"gp_weight": 10.0, "drift_weight": 0.001, "gamma": 0.0}
