"""2D convolution fused with FIR up- or downsampling, in the cheapest order for each case.

Semantics of the official StyleGAN2 `conv2d_resample` (as its layers call it): padding is given
relative to the upsampled image and applied once; upsampling is a stride-2 transposed convolution
followed by the FIR filter, downsampling the FIR filter followed by a strided convolution, and
1x1 kernels resample on the cheaper side of the convolution.
"""

from __future__ import annotations

import torch

from styleforge.ops.conv import conv2d, conv_transpose2d
from styleforge.ops.upfirdn2d import Padding, filter_size, pad2d, parse_padding, upfirdn2d


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [N, I, H, W], w: [O, I/groups, kh, kw], f: FIR filter for resampling, bias: [O] added at the end.

    Without resampling this is `F.conv2d` (correlation). With `up`, the weight acts as in a
    transposed convolution (as the official code calls it, with flip_weight=False).
    """
    O, I, kh, kw = w.shape
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = parse_padding(padding)
    if up > 1:
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2

    if kw == 1 and kh == 1 and down > 1 and up == 1:  # 1x1: downsample first, then convolve fewer pixels
        x = upfirdn2d(x, f, down=down, padding=[x0, x1, y0, y1])
        return conv2d(x, w, bias, groups=groups)
    if kw == 1 and kh == 1 and up > 1 and down == 1:  # 1x1: convolve first, then upsample
        x = conv2d(x, w, groups=groups)
        return _add_bias(upfirdn2d(x, f, up=up, padding=[x0, x1, y0, y1], gain=up * up), bias)
    if down > 1 and up == 1:  # filter, then strided convolution
        x = upfirdn2d(x, f, padding=[x0, x1, y0, y1])
        return conv2d(x, w, bias, stride=down, groups=groups)
    if up > 1:  # transposed strided convolution, then filter (and optional downsampling)
        x0, x1, y0, y1 = x0 - (kw - 1), x1 - (kw - up), y0 - (kh - 1), y1 - (kh - up)
        if _prefers_polyphase(x):
            x, extra_h, extra_w = transposed_conv_polyphase(x, w, up, groups)
            x1, y1 = x1 - extra_w, y1 - extra_h
        else:
            # conv_transpose2d wants [in, out/groups, kh, kw].
            w = w.reshape(groups, O // groups, I, kh, kw).transpose(1, 2).reshape(groups * I, O // groups, kh, kw)
            pxt, pyt = max(min(-x0, -x1), 0), max(min(-y0, -y1), 0)
            x = conv_transpose2d(x, w, stride=up, padding=[pyt, pxt], groups=groups)
            x0, x1, y0, y1 = x0 + pxt, x1 + pxt, y0 + pyt, y1 + pyt
        x = upfirdn2d(x, f, padding=[x0, x1, y0, y1], gain=up * up)
        return _add_bias(upfirdn2d(x, f, down=down) if down > 1 else x, bias)
    if x0 == x1 and y0 == y1 and x0 >= 0 and y0 >= 0:  # plain convolution
        return conv2d(x, w, bias, padding=[y0, x0], groups=groups)
    return conv2d(pad2d(x, x0, x1, y0, y1), w, bias, groups=groups)


def _add_bias(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x if bias is None else x + bias.reshape(1, -1, 1, 1)


def _prefers_polyphase(x: torch.Tensor) -> bool:
    """CPUs run bfloat16/float16 convolutions on matrix units (AMX) that their transposed convolutions do
    not use: there a regular convolution with 16/9 of the multiply-adds is several times faster."""
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    return x.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16)


def transposed_conv_polyphase(
    x: torch.Tensor, w: torch.Tensor, up: int, groups: int = 1
) -> tuple[torch.Tensor, int, int]:
    """The full stride-`up` transposed convolution (as `conv2d_resample` applies w) as one regular
    convolution computing the `up`*`up` output phases as channels, then interleaves the phases (a pixel shuffle).

    Output phase a at input position j: out[up*j + a] = sum_q x[j - q] * w[up*q + a] (taps past the kernel
    are zero). Returns (output, extra_h, extra_w): the output is the full transposed convolution followed
    by extra_h rows and extra_w columns of zeros.
    """
    O, I, kh, kw = w.shape  # [out, in/groups, kh, kw], out = groups * (out per group)
    Qh, Qw = -(-kh // up), -(-kw // up)  # taps per phase
    w = torch.nn.functional.pad(w, [0, Qw * up - kw, 0, Qh * up - kh])  # [O, I, Qh*up, Qw*up]
    w = w.reshape(O, I, Qh, up, Qw, up).flip([2, 4])  # [O, I, q, a_y, q, a_x], q reversed: correlation order
    if groups == 1:  # channels (a_y, a_x, o): the phases interleave in whole pixels of channels_last memory
        w = w.permute(3, 5, 0, 1, 2, 4).reshape(up * up * O, I, Qh, Qw)
    else:  # channels (o, a_y, a_x), keeping the groups apart
        w = w.permute(0, 3, 5, 1, 2, 4).reshape(O * up * up, I, Qh, Qw)
    x = conv2d(x, w, padding=[Qh - 1, Qw - 1], groups=groups)  # [N, O*up*up, H+Qh-1, W+Qw-1]
    N, _, Hq, Wq = x.shape
    if groups == 1:
        # [N, Hq, Wq, a_y, a_x, O] in channels_last memory -> [N, Hq, a_y, Wq, a_x, O]: one copy of whole
        # pixels (measured 3-4x faster than pixel_shuffle on channels_last tensors).
        x = x.permute(0, 2, 3, 1).reshape(N, Hq, Wq, up, up, O).transpose(2, 3)
        x = x.reshape(N, Hq * up, Wq * up, O).permute(0, 3, 1, 2)
    else:
        x = torch.nn.functional.pixel_shuffle(x, up)  # [N, O, up*Hq, up*Wq]
    H, W = Hq - Qh + 1, Wq - Qw + 1
    return x, up * Hq - ((H - 1) * up + kh), up * Wq - ((W - 1) * up + kw)
