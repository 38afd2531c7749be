"""Bias + activation + gain + clamp, the epilogue of every StyleGAN layer.

Each activation has a default gain that keeps the signal's second moment roughly unchanged for
unit-variance inputs (sqrt(2) for ReLU-like functions), as in the official StyleGAN2 code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]  # (x, alpha) -> y
    def_gain: float
    def_alpha: float = 0.0
    # In-place version for positively homogeneous functions (act(g*x) = g*act(x) for g > 0), which
    # lets layers fold the gain into their weights and bias; None for the others.
    func_: Callable[[torch.Tensor, float], torch.Tensor] | None = None


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 1.0, func_=lambda x, a: x),
    "relu": Activation(lambda x, a: F.relu(x), math.sqrt(2), func_=lambda x, a: F.relu_(x)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), math.sqrt(2), 0.2, func_=lambda x, a: F.leaky_relu_(x, a)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 1.0),
    "swish": Activation(lambda x, a: F.silu(x), math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    return get_activation(act).def_gain


def get_activation(act: str) -> Activation:
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(f"unknown activation '{act}'; choose one of: {', '.join(ACTIVATIONS)}") from None


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp), with b broadcast along `dim`.

    `gain=None` uses the activation's default gain; `clamp=None` disables clamping.
    """
    spec = get_activation(act)
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act != "linear":
        x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def gain_before_activation(act: str, gain: float) -> tuple[float, float]:
    """Splits the output gain into (before, after) the activation. Homogeneous activations take all
    of it before, where a layer folds it into its weights and bias at no cost."""
    if get_activation(act).func_ is not None and gain > 0:
        return gain, 1.0
    return 1.0, gain


def activate_(x: torch.Tensor, act: str, gain_after: float = 1, clamp: float | None = None) -> torch.Tensor:
    """act(x) * gain_after, clamped; the activation in place where possible. x must be a fresh layer
    output that nothing else reads (convolution and matmul backward passes do not read their outputs).
    Later steps are out of place: an in-place activation's backward reads its result."""
    spec = get_activation(act)
    x = spec.func_(x, spec.def_alpha) if spec.func_ is not None else spec.func(x, spec.def_alpha)
    if gain_after != 1:
        x = x * gain_after
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
