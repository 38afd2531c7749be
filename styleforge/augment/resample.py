"""Resampling for ADA's geometric augmentations: 2x up/down-sampling with an orthogonal wavelet filter,
and bilinear grid sampling whose second derivative w.r.t. the image works on every torch version.

The up/down-sampling pair follows the conventions of NVlabs' upfirdn2d (filter normalized to unit
sum, upsampling gain 2 per axis, the upsampling filter flipped, the downsampling one not), so that
downsample2x(upsample2x(x)) == x exactly in the interior: sym6 is orthogonal to its even shifts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Low-pass decomposition filters of Daubechies' symlets (published coefficients, as in PyWavelets).
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip


def _separable(x: Tensor, f: Tensor, conv, **kwargs_per_axis) -> Tensor:
    """Applies a 1D filter `f` [taps] along W then H to every channel, with conv (conv2d or conv_transpose2d)."""
    N, C, H, W = x.shape
    x = x.reshape(N * C, 1, H, W)
    f = f.to(x.dtype)
    x = conv(x, f.reshape(1, 1, 1, -1), **{k: v[0] for k, v in kwargs_per_axis.items()})
    x = conv(x, f.reshape(1, 1, -1, 1), **{k: v[1] for k, v in kwargs_per_axis.items()})
    return x.reshape(N, C, x.shape[2], x.shape[3])


def upsample2x(x: Tensor, f: Tensor) -> Tensor:
    """[N, C, H, W] -> [N, C, 2H, 2W]: zero insertion then convolution with `f` (unit-sum filter, gain 2 per axis).

    Written as a strided transposed convolution, which skips the inserted zeros; `padding` crops
    the result to the window of NVlabs' upsample2d (pad (taps//2, (taps-1)//2) around the zero-stuffed image).
    """
    crop = (f.numel() - 1) // 2
    return _separable(x, f * 2, F.conv_transpose2d, stride=((1, 2), (2, 1)), padding=((0, crop), (crop, 0)))


def downsample2x(x: Tensor, f: Tensor, crop: int) -> Tensor:
    """[N, C, H, W] -> [N, C, H', W']: crop `crop` px off each side, correlate with unit-sum `f`, keep every 2nd px."""
    x = x[:, :, crop : x.shape[2] - crop, crop : x.shape[3] - crop]
    return _separable(x, f, F.conv2d, stride=((1, 2), (2, 1)))


class _GridSample(torch.autograd.Function):
    """Bilinear sampling (zeros outside, align_corners=False) differentiable twice w.r.t. the image."""

    @staticmethod
    def forward(ctx, images: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(images, grid)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        images, grid = ctx.saved_tensors
        grad_images = _GridSampleBackward.apply(grad_output, images, grid) if ctx.needs_input_grad[0] else None
        return grad_images, None


class _GridSampleBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output: Tensor, images: Tensor, grid: Tensor) -> Tensor:
        ctx.save_for_backward(grid)
        # interpolation 0 = bilinear, padding 0 = zeros; only the image gradient is wanted.
        grad_images, _ = torch.ops.aten.grid_sampler_2d_backward(grad_output, images, grid, 0, 0, False, [True, False])
        return grad_images

    @staticmethod
    def backward(ctx, grad2_images: Tensor):
        (grid,) = ctx.saved_tensors
        # The image gradient is linear in grad_output (its adjoint is sampling again with the same grid)
        # and does not depend on the image's values, so the other second derivatives are zero.
        return _GridSample.apply(grad2_images, grid), None, None


def grid_sample(images: Tensor, grid: Tensor) -> Tensor:
    """F.grid_sample(bilinear, zeros, align_corners=False) whose double backward w.r.t. `images` is supported
    (R1 through augmentations); older torch releases lack that derivative. A grid that needs gradients
    falls back to torch's own op."""
    if torch.is_autocast_enabled(images.device.type):  # sample in float32, as autocast does for grid_sample
        with torch.autocast(images.device.type, enabled=False):
            return grid_sample(images.float(), grid.float())
    if grid.requires_grad:
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _GridSample.apply(images, grid)
