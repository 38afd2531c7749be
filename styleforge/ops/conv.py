"""2D (transposed) convolutions whose second derivatives are as fast as their first.

R1 and path-length regularization differentiate through a gradient. PyTorch's built-in double
backward of a convolution computes the weight term as a convolution with a kernel the size of the
image, on transposed (copied) tensors: about twice the cost of the forward convolution plus copies
(measured on CPU). Here the input gradient of a convolution is the built-in transposed convolution
(and vice versa), so differentiating it again is an ordinary, fast convolution backward. The weight
gradient uses the built-in kernel (aten.convolution_backward), whose own derivative is exact.

A custom autograd function cannot tell which of its gradients the caller asked for: when only input
gradients are needed (the inner `autograd.grad` of R1 or path length), wrap the call in
`no_weight_gradients()` to skip the weight gradients (as the official code does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

Pair = tuple[int, int]


def _pair(v: int | Pair) -> Pair:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def conv2d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair = 0, groups: int = 1) -> torch.Tensor:
    """Same as `F.conv2d` (no dilation), with fast derivatives of every order."""
    return _convolution(x, w, bias, _pair(stride), _pair(padding), (0, 0), groups, transposed=False)


def conv_transpose2d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, stride: int | Pair = 1,
                     padding: int | Pair = 0, output_padding: int | Pair = 0, groups: int = 1) -> torch.Tensor:
    """Same as `F.conv_transpose2d` (no dilation), with fast derivatives of every order."""
    return _convolution(x, w, bias, _pair(stride), _pair(padding), _pair(output_padding), groups, transposed=True)


# A process-wide flag, not a thread-local one: autograd runs backward passes of accelerator tensors
# on its own worker threads.
_weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True) -> Iterator[None]:
    """Skips the weight gradients of these convolutions inside the block: for `autograd.grad` calls that
    ask only for input gradients. (Other parameters' gradients are unaffected.)"""
    global _weight_gradients_disabled
    previous = _weight_gradients_disabled
    _weight_gradients_disabled = disable
    try:
        yield
    finally:
        _weight_gradients_disabled = previous


def _convolution(x, w, bias, stride, padding, output_padding, groups, transposed):
    if torch.is_autocast_enabled(x.device.type):  # cast here, so that the autograd function sees one dtype
        dtype = torch.get_autocast_dtype(x.device.type)
        x, w = x.to(dtype), w.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
        with torch.autocast(x.device.type, enabled=False):
            return _convolution(x, w, bias, stride, padding, output_padding, groups, transposed)
    conf = (stride, padding, output_padding, groups, transposed)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, w, bias))
    # Plain ops for tracers, exporters and torch.compile, which cannot see through a Python autograd.Function.
    if not needs_grad or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return _conv(x, w, bias, conf)
    return _Convolution.apply(x, w, bias, conf)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a tensor in that layout (and not also plain contiguous), else contiguous."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _conv(x, w, bias, conf):
    stride, padding, output_padding, groups, transposed = conf
    if transposed:
        return F.conv_transpose2d(x, w, bias, stride, padding, output_padding, groups)
    return F.conv2d(x, w, bias, stride, padding, 1, groups)


class _Convolution(torch.autograd.Function):
    """The input gradient is the adjoint convolution as a built-in (differentiable) op; the weight
    gradient is the built-in weight-gradient kernel, differentiable through its own formula."""

    @staticmethod
    def forward(ctx, x, w, bias, conf):
        ctx.save_for_backward(x, w)
        ctx.conf = conf
        return _conv(x, w, bias, conf)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        stride, padding, output_padding, groups, transposed = ctx.conf
        gy = gy.contiguous(memory_format=memory_format_of(x))  # NCHW gradients would take slow kernels
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            if transposed:  # the adjoint of a transposed convolution is a convolution, and vice versa
                gx = F.conv2d(gy, w, None, stride, padding, 1, groups)
            else:
                # output_padding that makes the adjoint restore x's exact size
                adjoint_padding = [x.shape[i] - ((gy.shape[i] - 1) * stride[i - 2] - 2 * padding[i - 2] + w.shape[i])
                                   for i in (2, 3)]
                gx = F.conv_transpose2d(gy, w, None, stride, padding, adjoint_padding, groups)
        if ctx.needs_input_grad[1] and not _weight_gradients_disabled:
            gw = torch.ops.aten.convolution_backward(
                gy, x, w, None, stride, padding, (1, 1), transposed, output_padding, groups, (False, True, False))[1]
        if ctx.needs_input_grad[2]:
            gb = gy.sum(dim=[0, 2, 3])
        return gx, gw, gb, None
