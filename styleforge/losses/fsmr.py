"""FSMR (Kim et al. 2022, naver-ai/FSMR): D must score an image the same when its feature statistics are
mixed with another sample's, penalty = (D_mix(x) - D(x))^2 per sample.

Both calls see the same (augmented) batch; the gradient flows through both. The penalty joins D's main
loss every step (not lazily), on reals and, with --fsmr-fakes, on fakes; the paper's weight is 0.05.
D must support the mixing (`D(img, c, fsm=...)`, the StyleGAN2 D).
"""

from __future__ import annotations

import torch

from styleforge.losses.regularizers import Regularizer
from styleforge.networks.fsm import FeatureMixing
from styleforge.registry import REGULARIZERS


def fsmr_penalty(D: torch.nn.Module, img: torch.Tensor, c: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(D(img, c, mixed) - logits)^2, [N, 1]; `logits` = D(img, c), already computed by the caller.
    One alpha and one permutation of the batch, freshly drawn, for the whole D call."""
    mixed_logits = D(img, c, fsm=FeatureMixing.draw(img.shape[0], img.device))
    return (mixed_logits - logits).square()


@REGULARIZERS.register("fsmr")
class FSMR(Regularizer):
    """--fsmr-weight: feature-statistics mixing penalty in every D step (reals; --fsmr-fakes: fakes too)."""

    option = "fsmr_weight"
    network = "D"
    on_reals = True
    stat = "Loss/fsmr_penalty/real"  # and .../fake with --fsmr-fakes

    def __init__(self, weight: float, fakes: bool = False):
        super().__init__(weight)
        self.on_fakes = fakes

    @classmethod
    def from_config(cls, cfg) -> FSMR | None:
        return cls(cfg.fsmr_weight, cfg.fsmr_fakes) if cfg.fsmr_weight else None

    @classmethod
    def incompatibility(cls, cfg, loss_class, G_class, D_class) -> str | None:
        if not getattr(D_class, "supports_feature_mixing", False):
            return f"FSMR mixes feature statistics inside D, which --d {cfg.d} cannot do (--d stylegan2 can)"
        return None

    def penalty(self, loss, scored, stats) -> torch.Tensor:
        kind = "real" if scored.source == "reals" else "fake"
        penalty = fsmr_penalty(loss.D, scored.seen, scored.c, scored.logits)
        stats[f"Loss/fsmr_penalty/{kind}"] = penalty.detach()
        return penalty * self.weight
