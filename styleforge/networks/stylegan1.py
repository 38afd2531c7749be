"""StyleGAN (v1; Karras et al. 2019, NVlabs/stylegan): the AdaIN generator, and its discriminator.

Mapping: PixelNorm(z) -> 8 dense layers (lrelu, lr multiplier 0.01) -> w, broadcast to one w per layer
(our `MappingNetwork`, which also tracks w_avg for truncation). Synthesis: a learned 4x4 constant (init ones);
every layer is conv -> noise (per-channel weights, init 0) -> bias -> lrelu -> InstanceNorm -> style
modulation x * (1 + ys) + yb, with (ys, yb) from w by a dense layer (gain 1). Upsampling layers are
nearest-upsample + conv 3x3 followed by a [1, 2, 1] blur; the official code switches to a transposed
convolution at 128 px and up, which is the same linear map, so one implementation (conv2d_resample's
transposed convolution) serves every resolution. A linear 1x1 ToRGB per level lets the network grow
(`lod`, see progressive.py) and, with `return_all_scales`, serve as the MSG-StyleGAN generator.

D: the ProGAN discriminator with a [1, 2, 1] blur before each downsampling convolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from styleforge.networks.composed import MappedGenerator, channels_per_resolution
from styleforge.networks.persistence import persistent
from styleforge.networks.progan import BOX, ProGANDiscriminator, check_ws
from styleforge.networks.progressive import add_lod_buffer, grow_output
from styleforge.networks.synthesis import NOISE_MODES
from styleforge.ops.bias_act import bias_act
from styleforge.ops.layers import Conv2dLayer, FullyConnectedLayer
from styleforge.ops.upfirdn2d import filter2d, setup_filter
from styleforge.registry import DISCRIMINATORS, GENERATORS

BLUR = (1, 2, 1)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each channel of each sample to zero mean and unit variance over its pixels (computed in float32)."""
    y = x.float()
    y = y - y.mean(dim=[2, 3], keepdim=True)
    y = y * (y.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()
    return y.to(x.dtype)


class AdaIN(nn.Module):
    """InstanceNorm, then the style's per-channel scale and bias: x * (1 + ys) + yb, (ys, yb) = dense(w)."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.style = FullyConnectedLayer(w_dim, channels * 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [N, C, H, W], [N, w_dim]
        ys, yb = self.style(w).to(x.dtype).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # [N, C, 1, 1] each
        return instance_norm(x) * (ys + 1) + yb


class StyleGAN1Layer(nn.Module):
    """[conv 3x3 (upsampling by 2) [-> blur]] -> noise -> bias -> lrelu -> AdaIN. Without in_channels, the layer
    has no convolution (the epilogue of the learned constant)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 blur_filter: Sequence[float] | None = BLUR, use_noise: bool = True):
        super().__init__()
        self.resolution = resolution
        self.use_noise = use_noise
        self.conv = None
        if in_channels:
            self.conv = Conv2dLayer(in_channels, out_channels, 3, bias=False, up=2 if up else 1, resample_filter=BOX)
        blur = in_channels and up and blur_filter
        self.register_buffer("blur_filter", setup_filter(blur_filter) if blur else None)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.adain = AdaIN(out_channels, w_dim)

    def add_noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got '{noise_mode}'")
        if not self.use_noise or noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype).expand(x.shape[0], 1, -1, -1)
        else:
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, dtype=x.dtype)
        return x + noise * self.noise_strength.to(x.dtype).reshape(1, -1, 1, 1)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        if self.blur_filter is not None:
            x = filter2d(x, self.blur_filter)
        x = bias_act(self.add_noise(x, noise_mode), self.bias, act="lrelu")
        return self.adain(x, w)


class StyleGAN1Block(nn.Module):
    """One level: (learned constant | upsampling layer) -> layer, and the level's ToRGB (1x1, linear)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 **layer_kwargs: Any):
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))
        self.conv0 = StyleGAN1Layer(in_channels, out_channels, w_dim, resolution, up=True, **layer_kwargs)
        self.conv1 = StyleGAN1Layer(out_channels, out_channels, w_dim, resolution, **layer_kwargs)
        self.torgb = Conv2dLayer(out_channels, img_channels, 1)
        self.num_ws = 2

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """x: [N, in_channels, r/2, r/2] (None at 4x4), ws: [N, 2, w_dim] -> [N, out_channels, r, r]."""
        if self.in_channels == 0:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.conv0(x, ws[:, 0], noise_mode)
        return self.conv1(x, ws[:, 1], noise_mode)


class StyleGAN1Synthesis(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 16384,
                 channel_max: int = 512, blur_filter: Sequence[float] | None = BLUR, use_noise: bool = True):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        self.block_resolutions = list(channels)
        self.num_levels = len(channels)
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            setattr(self, f"b{res}", StyleGAN1Block(in_channels, channels[res], w_dim, res, img_channels,
                                                    blur_filter=blur_filter, use_noise=use_noise))
        self.num_ws = 2 * self.num_levels
        add_lod_buffer(self)

    @property
    def blocks(self) -> list[StyleGAN1Block]:
        """Blocks, low to high resolution."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", update_emas: bool = False,
                return_all_scales: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """ws [N, num_ws, w_dim] -> img [N, C, R, R] at the current lod, or (return_all_scales) every level's
        image, low to high resolution (MSG-StyleGAN)."""
        del update_emas  # no running statistics
        check_ws(ws, self.num_ws, self.w_dim)
        blocks = self.blocks

        def run_level(level: int, x: torch.Tensor | None) -> torch.Tensor:
            return blocks[level](x, ws[:, 2 * level: 2 * level + 2], noise_mode)

        return grow_output(float(self.lod), self.num_levels, run_level, lambda level, x: blocks[level].torgb(x),
                           return_all_scales)


@GENERATORS.register("stylegan1")
@persistent("generator/stylegan1")
class StyleGAN1Generator(MappedGenerator):
    """StyleGAN v1 generator; synthesis_kwargs go to `StyleGAN1Synthesis` (channel_base, channel_max,
    blur_filter, use_noise)."""

    synthesis_class = StyleGAN1Synthesis
    emits_all_scales = True


@GENERATORS.register("msg-stylegan1")
@persistent("generator/msg-stylegan1")
class MSGStyleGAN1Generator(StyleGAN1Generator):
    """MSG-StyleGAN as published (akanimax/msg-stylegan-tf): the StyleGAN v1 generator, whose ToRGB at every
    level gives the multi-scale images (`G.synthesis(ws, return_all_scales=True)`); train with `--d msg`."""


@DISCRIMINATORS.register("stylegan1")
@persistent("discriminator/stylegan1")
class StyleGAN1Discriminator(ProGANDiscriminator):
    def __init__(self, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3, channel_base: int = 16384,
                 channel_max: int = 512, mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 blur_filter: Sequence[float] | None = BLUR):
        super().__init__(c_dim, img_resolution, img_channels, channel_base, channel_max, mbstd_group_size,
                         mbstd_num_channels, blur_filter)
