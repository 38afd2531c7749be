"""MSG-GAN's losses (Karnewar and Wang 2020): G's images at every scale go to D, with the reals' 2x2
average-pooled pyramid; R1 (--gamma) then averages over the scales.

- `msg`: the non-saturating logistic loss, as MSG-StyleGAN (akanimax/msg-stylegan-tf; its r1_gamma 10 is
  our --gamma 10, a weight of 5 on the penalty, not lazy: --r1-interval 0).
- `msg-rahinge`: the relativistic average hinge loss of BMSG-GAN.
Both need a multi-scale G (`msg-stylegan2`, `msg-stylegan1`) and D (`msg`); augmentation is refused (the
scales of an image would need one and the same transform). Path length regularizes the top scale.
"""

from __future__ import annotations

from styleforge.losses.logistic import LogisticLoss
from styleforge.losses.rahinge import RelativisticHingeLoss
from styleforge.registry import LOSSES


@LOSSES.register("msg")
class MSGLoss(LogisticLoss):
    """Non-saturating logistic loss over every scale (MSG-StyleGAN)."""

    multi_scale = True


@LOSSES.register("msg-rahinge")
class MSGRelativisticHingeLoss(RelativisticHingeLoss):
    """Relativistic average hinge loss over every scale (BMSG-GAN)."""

    multi_scale = True
