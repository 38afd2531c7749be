"""Feature statistics mixing (FSM, Kim et al. 2022, naver-ai/FSMR): a discriminator feature map takes on
the per-channel mean and standard deviation of another sample's, i.e. that sample's "style".

FSMR trains D to give the same logit with and without the mixing, so that D cannot rely on feature
statistics alone. The mixing is a mode of the existing discriminator: `D(img, c, fsm=FeatureMixing.draw(N))`
makes every 3x3 convolution and residual merge of D pass its pre-activation output through the mixing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

EPS = 1e-5


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample per-channel mean and biased variance over H, W: [N, C, H, W] -> 2 x [N, C, 1, 1]."""
    var, mean = torch.var_mean(x, dim=[2, 3], keepdim=True, correction=0)
    return mean, var


def feature_statistics_mix(x: torch.Tensor, y: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """alpha * x + (1 - alpha) * FSM(x, y), where FSM(x, y) is x normalized by its own per-channel
    statistics and de-normalized with y's. x, y: [N, C, H, W]."""
    return _mix(x, channel_stats(x.float()), channel_stats(y.float()), alpha)


def _mix(x: torch.Tensor, stats_x: tuple[torch.Tensor, torch.Tensor], stats_y: tuple[torch.Tensor, torch.Tensor],
         alpha: float | torch.Tensor) -> torch.Tensor:
    (mean_x, var_x), (mean_y, var_y) = stats_x, stats_y
    # alpha * x + (1 - alpha) * ((x - mean_x) * ratio + mean_y) is a per-channel affine map of x: computing
    # its coefficients on [N, C, 1, 1] (in float32, as the statistics: fp16 variances overflow) leaves one
    # pass over the feature map, in x's dtype, and gives x exactly for alpha = 1.
    ratio = ((var_y + EPS) / (var_x + EPS)).sqrt()
    alpha = torch.as_tensor(alpha, dtype=ratio.dtype, device=ratio.device)
    scale = torch.lerp(ratio, torch.ones_like(ratio), alpha)
    shift = (1 - alpha) * (mean_y - mean_x * ratio)
    return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


@dataclass
class FeatureMixing:
    """One draw of FSM for one D call: every mixed layer shares `alpha` (a scalar) and `perm`
    (sample i takes the statistics of sample perm[i])."""

    alpha: torch.Tensor  # [] in [0, 1]
    perm: torch.Tensor  # [N] permutation of the batch

    @classmethod
    def draw(cls, batch_size: int, device: torch.device | str | None = None) -> FeatureMixing:
        """alpha ~ U(0, 1) and a fresh random permutation, from torch's generator."""
        return cls(torch.rand([], device=device), torch.randperm(batch_size, device=device))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C, H, W]
        mean, var = channel_stats(x.float())  # y = x[perm] has x's statistics, permuted
        return _mix(x, (mean, var), (mean[self.perm], var[self.perm]), self.alpha)


def conv_with_mixing(layer: nn.Module, x: torch.Tensor, fsm: FeatureMixing | None, gain: float = 1) -> torch.Tensor:
    """`layer(x, gain)` for a `Conv2dLayer`, with FSM between the convolution and the bias/activation."""
    if fsm is None:
        return layer(x, gain=gain)
    return layer.activate(fsm(layer.convolve(x)), gain)
