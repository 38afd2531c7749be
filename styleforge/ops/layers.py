"""Equalized-learning-rate layers: weights stored as N(0, 1) / lr_multiplier and scaled at run time.

The run-time scale (lr_multiplier / sqrt(fan_in)) gives every layer the same effective learning
rate under Adam (Karras et al., ProGAN); lr_multiplier < 1 slows a layer down (the mapping network).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from styleforge.ops.bias_act import activate_, activation_gain, bias_act, gain_before_activation
from styleforge.ops.conv2d_resample import conv2d_resample
from styleforge.ops.upfirdn2d import setup_filter

DEFAULT_FILTER = (1, 3, 3, 1)


class FullyConnectedLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        before, after = gain_before_activation(self.activation, activation_gain(self.activation))
        w = self.weight.to(x.dtype).t()
        if self.bias is None:
            x = torch.mm(x, w) * (self.weight_gain * before)
        else:  # bias * beta + (x @ w) * alpha in one op
            x = torch.addmm(self.bias.to(x.dtype), x, w, beta=self.bias_gain * before, alpha=self.weight_gain * before)
        return activate_(x, self.activation, gain_after=after)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution (optionally with FIR up/downsampling by 2) -> bias -> activation * gain -> clamp.

    `forward` folds the bias and gain into the convolution; `convolve` and `activate` compute the
    same in two steps, for methods that act on the pre-activation output (e.g. feature-statistics mixing).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
        trainable: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.activation = in_channels, out_channels, activation
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        # Kept (as the official networks do) so that state dicts and buffer counts match theirs.
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.requires_grad_(trainable)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:  # [N, I, H, W] -> [N, O, H*up/down, W*up/down]
        w = (self.weight * self.weight_gain).to(x.dtype)
        return conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)

    def activate(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        """`activate(convolve(x), gain)`, with the gain and bias folded into the convolution."""
        act_gain = self.act_gain * gain
        before, after = gain_before_activation(self.activation, act_gain)
        w = (self.weight * (self.weight_gain * before)).to(x.dtype)
        b = (self.bias * before).to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, bias=b)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return activate_(x, self.activation, gain_after=after, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.weight.shape[-1]}, "
            f"activation={self.activation}, up={self.up}, down={self.down}"
        )
