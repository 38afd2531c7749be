"""StyleGAN2's modulated convolution with weight demodulation.

w'_{n,o,i,k} = w_{o,i,k} * s_{n,i};  demodulated: w'' = w' / sqrt(sum_{i,k} w'^2 + 1e-8).

Two equivalent execution paths:
- fused: one grouped convolution (groups = batch) with per-sample weights; cheapest when the batch
  is 1 or on GPUs (the official default in inference);
- unfused: scale the activations by the styles, convolve with the shared weight (one big batched
  convolution, much faster on CPUs), then scale the outputs by the demodulation coefficients.
"""

from __future__ import annotations

import math

import torch

from styleforge.ops.conv2d_resample import conv2d_resample
from styleforge.ops.upfirdn2d import Padding


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    gain: float = 1,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """(modulated conv(x) + noise + bias) * gain.

    x: [N, I, H, W], weight: [O, I, kh, kw], styles: [N, I], noise: broadcastable to the output
    ([N, 1, H', W'] or [H', W']), bias: [O]. The gain and bias are folded into the cheapest place.
    """
    N = x.shape[0]
    O, I, kh, kw = weight.shape
    if styles.shape != (N, I):
        raise ValueError(f"styles must be [{N}, {I}], got {list(styles.shape)}")

    # float16 overflows for large styles: pre-normalize (demodulation removes the scale again).
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(I * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    bias = bias.to(x.dtype) * gain if bias is not None else None

    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(N, 1, I, 1, 1)  # [N, O, I, kh, kw]
        if demodulate:
            w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        x = conv2d_resample(x.reshape(1, N * I, *x.shape[2:]), (w * gain).reshape(N * O, I, kh, kw).to(x.dtype),
                            resample_filter, up=up, down=down, padding=padding, groups=N,
                            bias=bias.repeat(N) if bias is not None else None)
        x = x.reshape(N, O, *x.shape[2:])
    else:
        x = x * styles.to(x.dtype).reshape(N, I, 1, 1)
        if demodulate:
            # sum_{i,k} (w s)^2 = s^2 @ sum_k w^2: the demodulation coefficients without per-sample weights.
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
            x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding)
            scale = (dcoefs * gain).to(x.dtype).reshape(N, O, 1, 1)
            x = torch.addcmul(bias.reshape(1, O, 1, 1), x, scale) if bias is not None else x * scale
        else:
            x = conv2d_resample(x, (weight * gain).to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                                bias=bias)
    if noise is not None:
        x = x.add_((noise * gain).to(x.dtype))
    return x
