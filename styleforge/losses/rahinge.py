"""The relativistic average hinge loss (Jolicoeur-Martineau 2019), BMSG-GAN's default; the means are over
the chunk of the batch:
D: relu(1 - (D(x) - mean D(G(z)))) + relu(1 + (D(G(z)) - mean D(x))); G: the same with the signs swapped."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styleforge.losses.base import GANLoss
from styleforge.registry import LOSSES


@LOSSES.register("rahinge")
class RelativisticHingeLoss(GANLoss):
    """Relativistic average hinge loss: G's term reads D's logits on the reals too."""

    relativistic = True

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        real_vs_fake = real_logits - fake_logits.mean()
        fake_vs_real = fake_logits - real_logits.mean()
        return F.relu(1 + real_vs_fake) + F.relu(1 - fake_vs_real)

    def discriminator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        real_vs_fake = real_logits - fake_logits.mean()
        fake_vs_real = fake_logits - real_logits.mean()
        return F.relu(1 - real_vs_fake) + F.relu(1 + fake_vs_real)
