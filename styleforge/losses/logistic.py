"""The non-saturating logistic loss (Goodfellow et al. 2014) that StyleGAN, StyleGAN2 and MSG-StyleGAN
train with: G minimizes softplus(-D(G(z))), D minimizes softplus(D(G(z))) + softplus(-D(x))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleforge.losses.base import GANLoss
from styleforge.registry import LOSSES


@LOSSES.register("stylegan2")
class LogisticLoss(GANLoss):
    """Non-saturating logistic loss (StyleGAN2's; R1 and path length come from --gamma and --pl-weight)."""

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        return F.softplus(-fake_logits)  # -log(sigmoid(D(G(z))))

    def discriminator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake_logits) + F.softplus(-real_logits)  # -log(1 - sigmoid(D(G(z)))) - log(sigmoid(D(x)))
