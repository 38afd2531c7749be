"""FIR resampling of images: upsample (zero insertion), pad, filter, downsample (`upfirdn2d`).

Same semantics as `upfirdn2d` of the official StyleGAN2 code (and scipy.signal.upfirdn), written
with depthwise (transposed) convolutions only: upsampling is a stride-`up` transposed convolution
(no zero-inserted copy), downsampling a stride-`down` convolution (no wasted outputs). Built from
plain differentiable torch ops, so first and second derivatives are exact. Depthwise convolutions
are fast on CPU in channels_last layout, which the networks use there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from styleforge.ops.conv import memory_format_of

Padding = int | Sequence[int]


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """The FIR filter tensor for `upfirdn2d`: 1D taps become their 2D outer product unless
    `separable` (default: separable only for 8 taps or more, as the official code decides)."""
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"FIR filter must be 1D or 2D and non-empty, got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """int, (x, y) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")
    return tuple(padding)  # type: ignore[return-value]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1D (separable) or 2D filter."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def pad2d(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pads (positive) or crops (negative) the last two dims."""
    if min(x0, x1, y0, y1) < 0:
        H, W = x.shape[-2:]
        x = x[..., max(-y0, 0) : H - max(-y1, 0), max(-x0, 0) : W - max(-x1, 0)]
    if max(x0, x1, y0, y1) > 0:
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x


def _depthwise_kernels(f: torch.Tensor, channels: int, dtype: torch.dtype, gain: float) -> list[torch.Tensor]:
    """Per-channel conv weights [C, 1, kh, kw] for a 2D filter, or a (horizontal, vertical) pair for a 1D one."""
    f = f.to(dtype) * (gain ** (f.ndim / 2))
    if f.ndim == 2:
        return [f[None, None].expand(channels, 1, *f.shape)]
    return [f.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1), f.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1)]


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with `f`, keep every `down`-th pixel.

    x: [N, C, H, W]. f: [fh, fw] or separable [taps], None = identity. `padding` is relative to
    the upsampled image. flip_filter=False is true convolution (the official default).
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if f.requires_grad:
        raise ValueError("upfirdn2d does not differentiate with respect to the filter")
    padding = parse_padding(padding)
    if torch.compiler.is_compiling() and x.device.type in TAPS_WHEN_COMPILING:
        return upfirdn2d_taps(x, f, up, down, padding, flip_filter, gain)
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or not (torch.is_grad_enabled() and x.requires_grad):
        # Plain ops when nothing needs our backward: tracers and exporters (TorchScript, ONNX) cannot see
        # through a Python autograd.Function.
        return _upfirdn2d(x, f, up, down, padding, flip_filter, gain)
    return _UpFirDn2d.apply(x, f, up, down, padding, flip_filter, gain)


# Device types on which torch.compile sees the filter as shifted slices and multiply-adds (`upfirdn2d_taps`),
# which it fuses with the bias, activation, gain and clamp around it into one kernel (what the official CUDA
# kernels do in two); elsewhere it sees a depthwise convolution.
TAPS_WHEN_COMPILING = {"cuda"}


def upfirdn2d_taps(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, padding: Padding = 0,
                   flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """`upfirdn2d` from its definition with indexing and pointwise ops only: zero insertion by padding a
    broadcast dimension, padding, then one multiply-add of a strided slice per filter tap. Slow in eager
    mode; torch.compile turns it into a single fused loop."""
    N, C, H, W = x.shape
    x0, x1, y0, y1 = parse_padding(padding)
    if up > 1:  # [N, C, H, 1, W, 1] -> [N, C, H, up, W, up], zeros after each sample -> [N, C, H*up, W*up]
        x = F.pad(x[:, :, :, None, :, None], [0, up - 1, 0, 0, 0, up - 1]).reshape(N, C, H * up, W * up)
    x = pad2d(x, x0, x1, y0, y1)
    taps = (f if flip_filter else f.flip(list(range(f.ndim)))).to(x.dtype)  # correlation order
    if f.ndim == 1:  # separable: along W, then along H, each with gain**0.5
        taps = taps * gain**0.5
        x = _taps_along(x, taps, down, dim=3)
        return _taps_along(x, taps, down, dim=2)
    fh, fw = taps.shape
    out_h, out_w = (x.shape[2] - fh) // down + 1, (x.shape[3] - fw) // down + 1
    taps = taps * gain
    y = None
    for i in range(fh):
        for j in range(fw):
            term = x[:, :, i : i + (out_h - 1) * down + 1 : down, j : j + (out_w - 1) * down + 1 : down] * taps[i, j]
            y = term if y is None else y + term
    return y


def _taps_along(x: torch.Tensor, taps: torch.Tensor, down: int, dim: int) -> torch.Tensor:
    out = (x.shape[dim] - taps.shape[0]) // down + 1
    y = None
    for k in range(taps.shape[0]):
        term = x.narrow(dim, k, (out - 1) * down + 1)
        term = (term[:, :, ::down] if dim == 2 else term[:, :, :, ::down]) * taps[k]
        y = term if y is None else y + term
    return y


class _UpFirDn2d(torch.autograd.Function):
    """upfirdn2d is linear in x; its adjoint is again an upfirdn2d (up and down swapped, filter flipped).

    Expressing the backward with this same function makes derivatives of every order exact and as fast
    as the forward. (Autograd's own double backward of depthwise convolutions loops over channels.)
    """

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):
        y = _upfirdn2d(x, f, up, down, padding, flip_filter, gain)
        if y._base is not None:  # a cropped view: autograd forbids in-place ops on views made in here
            y = y.clone()
        ctx.save_for_backward(f)
        ctx.args = (x.shape, y.shape, up, down, padding, flip_filter, gain)
        ctx.memory_format = memory_format_of(x)
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        (_, _, ih, iw), (_, _, oh, ow), up, down, (x0, x1, y0, y1), flip_filter, gain = ctx.args
        dy = dy.contiguous(memory_format=ctx.memory_format)  # depthwise convolutions are slow in NCHW
        fw, fh = filter_size(f)
        p = (fw - x0 - 1, iw * up - ow * down + x0 - up + 1, fh - y0 - 1, ih * up - oh * down + y0 - up + 1)
        dx = _UpFirDn2d.apply(dy, f, down, up, p, not flip_filter, gain)
        return dx, None, None, None, None, None, None


def _depthwise_transposed(x: torch.Tensor, kernels: list[torch.Tensor], up: int, pad_x: int, pad_y: int
                          ) -> torch.Tensor:
    """Stride-`up` depthwise transposed convolution with a 2D kernel or a (horizontal, vertical) pair.

    CPUs have no fast kernel for it in bfloat16/float16 (measured 25x slower than float32): there it
    runs in float32, outside autocast."""
    C, dtype = x.shape[1], x.dtype
    if x.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", enabled=False):
            return _depthwise_transposed(x.float(), [k.float() for k in kernels], up, pad_x, pad_y).to(dtype)
    if len(kernels) == 1:
        return F.conv_transpose2d(x, kernels[0], stride=up, padding=(pad_y, pad_x), groups=C)
    x = F.conv_transpose2d(x, kernels[0], stride=(1, up), padding=(0, pad_x), groups=C)
    return F.conv_transpose2d(x, kernels[1], stride=(up, 1), padding=(pad_y, 0), groups=C)


def _upfirdn2d(
    x: torch.Tensor, f: torch.Tensor, up: int, down: int, padding: tuple[int, int, int, int], flip_filter: bool,
    gain: float
) -> torch.Tensor:
    N, C, H, W = x.shape
    x0, x1, y0, y1 = padding
    fw, fh = filter_size(f)
    flipped = f.flip(list(range(f.ndim)))

    if up > 1:
        # A stride-`up` transposed convolution (a true convolution) of the input is the full convolution
        # of the zero-inserted signal; the wanted window starts (fh - 1 - y0, fw - 1 - x0) samples into it.
        kernels = _depthwise_kernels(flipped if flip_filter else f, C, x.dtype, gain)
        full_h, full_w = (H - 1) * up + fh, (W - 1) * up + fw
        want_h, want_w = H * up + y0 + y1 - fh + 1, W * up + x0 + x1 - fw + 1
        start_y, start_x = fh - 1 - y0, fw - 1 - x0
        crop = [start_x, full_w - start_x - want_w, start_y, full_h - start_y - want_h]  # negative: pad
        # The transposed convolution crops symmetrically through its `padding`; the rest is cropped or padded.
        sym_x, sym_y = max(min(crop[0], crop[1]), 0), max(min(crop[2], crop[3]), 0)
        x = _depthwise_transposed(x, kernels, up, sym_x, sym_y)
        x = pad2d(x, sym_x - crop[0], sym_x - crop[1], sym_y - crop[2], sym_y - crop[3])
        return x[:, :, ::down, ::down] if down > 1 else x

    # conv2d correlates: a true convolution needs the flipped filter.
    kernels = _depthwise_kernels(f if flip_filter else flipped, C, x.dtype, gain)
    # Let the convolution pad (no padded copy): symmetrically by the larger side, cropping the surplus
    # output afterwards (a view), which is exact only without striding.
    crop = [0, 0, 0, 0]
    if down == 1 and min(x0, x1, y0, y1) >= 0:
        crop = [max(x0, x1) - x0, max(x0, x1) - x1, max(y0, y1) - y0, max(y0, y1) - y1]
        x0 = x1 = max(x0, x1)
        y0 = y1 = max(y0, y1)
    elif not (x0 == x1 and y0 == y1 and x0 >= 0 and y0 >= 0):
        x = pad2d(x, x0, x1, y0, y1)
        x0 = y0 = 0
    if len(kernels) == 1:
        x = F.conv2d(x, kernels[0], stride=down, padding=(y0, x0), groups=C)
    else:
        x = F.conv2d(x, kernels[0], stride=(1, down), padding=(0, x0), groups=C)
        x = F.conv2d(x, kernels[1], stride=(down, 1), padding=(y0, 0), groups=C)
    return pad2d(x, -crop[0], -crop[1], -crop[2], -crop[3]) if any(crop) else x


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: Padding = 0, gain: float = 1) -> torch.Tensor:
    """Filters with `f`, output the same size as the input plus `padding`."""
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0, gain: float = 1) -> torch.Tensor:
    """Upsamples by `up` with FIR interpolation; output `up` times the input size (plus `padding`)."""
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2, y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=gain * up * up)


def downsample2d(
    x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0, gain: float = 1
) -> torch.Tensor:
    """Low-pass filters with `f` and downsamples by `down`; output 1/`down` of the input size (plus `padding`)."""
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2, y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p, gain=gain)
