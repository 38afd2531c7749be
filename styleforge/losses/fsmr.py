"""FSMR's penalty (Kim et al. 2022, naver-ai/FSMR): D must score an image the same when its feature
statistics are mixed with another sample's, penalty = (D_mix(x) - D(x))^2 per sample.

Both calls see the same (augmented) batch; the gradient flows through both. The loss adds
`weight * mean penalty` to D's main loss every step (not lazily), on reals and optionally on fakes.
"""

from __future__ import annotations

import torch

from styleforge.networks.fsm import FeatureMixing


def fsmr_penalty(D: torch.nn.Module, img: torch.Tensor, c: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(D(img, c, mixed) - logits)^2, [N, 1]; `logits` = D(img, c), already computed by the caller.
    One alpha and one permutation of the batch, freshly drawn, for the whole D call."""
    mixed_logits = D(img, c, fsm=FeatureMixing.draw(img.shape[0], img.device))
    return (mixed_logits - logits).square()
