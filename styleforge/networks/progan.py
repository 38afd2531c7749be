"""ProGAN (Karras et al. 2018, NVlabs/progressive_growing_of_gans): a generator and a discriminator that grow.

G: PixelNorm(z, c) -> dense to 4x4 -> lrelu -> PixelNorm -> conv 3x3 -> lrelu -> PixelNorm; each higher level:
nearest-upsample + conv 3x3 (one transposed convolution, which is the same linear map) and conv 3x3, each
followed by lrelu and PixelNorm (eps 1e-8); a linear 1x1 ToRGB per level.
D: per level a 1x1 FromRGB (lrelu), conv 3x3 and conv 3x3 + 2x2 average pooling (lrelu); the 4x4 head has
minibatch stddev (group 4), conv 3x3, dense, dense out. All layers have the equalized learning rate.

Both take the level of detail from their `lod` buffer (see progressive.py); at lod 0 they are plain
fixed-structure networks. Labels: G concatenates c to z (as the official code); D selects its output by the
label ("label switch" of StyleGAN v1 rather than ProGAN's auxiliary classifier, so D(img, c) stays [N, 1]).
The StyleGAN v1 D is this D with a [1, 2, 1] blur before each downsampling convolution (`blur_filter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from styleforge.networks.composed import ComposedGenerator, channels_per_resolution
from styleforge.networks.discriminator import MinibatchStdLayer
from styleforge.networks.mapping import normalize_2nd_moment
from styleforge.networks.persistence import persistent
from styleforge.networks.progressive import add_lod_buffer, grow_input, grow_output
from styleforge.networks.spec import NetworkSpec
from styleforge.ops.bias_act import bias_act
from styleforge.ops.layers import Conv2dLayer, FullyConnectedLayer
from styleforge.ops.upfirdn2d import filter2d, setup_filter
from styleforge.registry import DISCRIMINATORS, GENERATORS

BOX = (1, 1)  # resampling filter of conv2d_resample that makes up=2 nearest and down=2 average pooling


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit mean square (eps 1e-8)."""
    return normalize_2nd_moment(x, dim=1, eps=1e-8)


def check_ws(ws: torch.Tensor, num_ws: int, w_dim: int) -> None:
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim):
        raise ValueError(f"ws must have shape [N, {num_ws}, {w_dim}], got {list(ws.shape)}")


def check_img(img: torch.Tensor, channels: int, resolution: int) -> None:
    if img.ndim != 4 or img.shape[1:] != (channels, resolution, resolution):
        raise ValueError(f"img must have shape [N, {channels}, {resolution}, {resolution}], got {list(img.shape)}")


def label_switch(x: torch.Tensor, c: torch.Tensor | None, c_dim: int) -> torch.Tensor:
    """[N, max(c_dim, 1)] outputs -> [N, 1]: the output of each sample's class (StyleGAN v1)."""
    return (x * c.to(x.dtype)).sum(dim=1, keepdim=True) if c_dim > 0 else x


class LatentNormalization(nn.Module):
    """ProGAN's "mapping": ws = PixelNorm(concat(z, c)) [N, 1, z_dim + c_dim]; nothing is learned.

    w_avg is fixed at 0, the mean of normalized Gaussian latents, so truncation shrinks the latent towards
    the origin; w_avg_beta is None, so training never updates it.
    """

    def __init__(self, z_dim: int, c_dim: int):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, z_dim + c_dim
        self.num_ws = 1
        self.w_avg_beta = None
        self.register_buffer("w_avg", torch.zeros([self.w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        del truncation_cutoff, update_emas  # one w for all layers; nothing tracked
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        x = torch.cat([z, c.to(z.dtype)], dim=1) if self.c_dim > 0 else z
        ws = pixel_norm(x).unsqueeze(1)  # [N, 1, w_dim]
        return self.w_avg.to(ws.dtype).lerp(ws, truncation_psi) if truncation_psi != 1 else ws


class ProGANSynthesisBlock(nn.Module):
    """One level: (dense from w at 4x4 | upsampling conv) -> conv, each + lrelu + PixelNorm; and its ToRGB."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int, w_dim: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        if in_channels == 0:
            self.dense = FullyConnectedLayer(w_dim, out_channels * 16, bias=False)
            self.dense_bias = nn.Parameter(torch.zeros([out_channels]))  # per channel, as the official code
        else:
            self.conv0 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", up=2, resample_filter=BOX)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")
        self.torgb = Conv2dLayer(out_channels, img_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, w_dim] or [N, I, r/2, r/2] -> [N, O, r, r]
        if self.in_channels == 0:
            x = self.dense(x).reshape(x.shape[0], self.out_channels, 4, 4)
            x = bias_act(x, self.dense_bias, act="lrelu")
        else:
            x = self.conv0(x)
        return pixel_norm(self.conv1(pixel_norm(x)))


class ProGANSynthesis(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 16384,
                 channel_max: int = 512):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = 1
        channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        self.block_resolutions = list(channels)
        self.num_levels = len(channels)
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            setattr(self, f"b{res}", ProGANSynthesisBlock(in_channels, channels[res], img_channels, w_dim))
        add_lod_buffer(self)

    @property
    def blocks(self) -> list[ProGANSynthesisBlock]:
        """Blocks, low to high resolution."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", update_emas: bool = False,
                return_all_scales: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """ws [N, 1, w_dim] -> img [N, C, R, R] at the current lod, or (return_all_scales) every level's
        image, low to high resolution, as MSG-GAN uses them."""
        del noise_mode, update_emas  # ProGAN has no noise inputs and no running statistics
        check_ws(ws, self.num_ws, self.w_dim)
        w = ws[:, 0]
        blocks = self.blocks
        return grow_output(float(self.lod), self.num_levels, lambda level, x: blocks[level](w if x is None else x),
                           lambda level, x: blocks[level].torgb(x), return_all_scales)


@GENERATORS.register("progan")
@persistent("generator/progan")
class ProGANGenerator(ComposedGenerator):
    """ProGAN generator: PixelNorm, equalized learning rate; grows by level of detail."""

    emits_all_scales = True

    def __init__(self, z_dim: int = 512, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3,
                 channel_base: int = 16384, channel_max: int = 512):
        super().__init__()
        mapping = LatentNormalization(z_dim, c_dim)
        synthesis = ProGANSynthesis(mapping.w_dim, img_resolution, img_channels, channel_base, channel_max)
        self.compose(mapping, synthesis, z_dim, c_dim)

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        return dict(z_dim=spec.z_dim, c_dim=spec.c_dim, img_resolution=spec.img_resolution,
                    img_channels=spec.img_channels, channel_base=spec.channel_base, channel_max=spec.channel_max)


class ProGANDiscriminatorBlock(nn.Module):
    """FromRGB (1x1, lrelu); conv 3x3 -> [blur] -> conv 3x3 + 2x2 average pooling, each + lrelu.

    `pool_after_activation`: pool the second conv's activated output instead of pooling before the bias
    and activation, as the official ProGAN D does with fused_scale=False (e.g. networks converted from its
    Theano original); the same parameters, another function."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int,
                 blur_filter: Sequence[float] | None = None, pool_after_activation: bool = False):
        super().__init__()
        self.pool_after_activation = pool_after_activation
        self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu",
                                 down=1 if pool_after_activation else 2, resample_filter=BOX)
        self.register_buffer("blur_filter", setup_filter(blur_filter) if blur_filter else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I, r, r] -> [N, O, r/2, r/2]
        x = self.conv0(x)
        if self.blur_filter is not None:
            x = filter2d(x, self.blur_filter)
        x = self.conv1(x)
        return F.avg_pool2d(x, 2) if self.pool_after_activation else x


class ProGANDiscriminatorHead(nn.Module):
    """The 4x4 level: [FromRGB]; minibatch stddev -> conv 3x3 -> dense -> dense out (-> label switch).

    `in_channels` (default `channels`) is what the head receives; MSG-GAN's D feeds it more channels."""

    def __init__(self, channels: int, img_channels: int, c_dim: int, mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, in_channels: int | None = None, with_fromrgb: bool = True):
        super().__init__()
        self.c_dim = c_dim
        if with_fromrgb:
            self.fromrgb = Conv2dLayer(img_channels, channels, 1, activation="lrelu")
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        in_channels = channels if in_channels is None else in_channels
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, channels, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(channels * 16, channels, activation="lrelu")
        self.out = FullyConnectedLayer(channels, max(c_dim, 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:  # [N, C, 4, 4] -> [N, 1]
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.fc(self.conv(x).flatten(1))
        return label_switch(self.out(x), c, self.c_dim)


@DISCRIMINATORS.register("progan")
@persistent("discriminator/progan")
class ProGANDiscriminator(nn.Module):
    """ProGAN discriminator: minibatch stddev in the 4x4 head; grows by level of detail."""

    def __init__(self, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3, channel_base: int = 16384,
                 channel_max: int = 512, mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 blur_filter: Sequence[float] | None = None, pool_after_activation: bool = False):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        self.block_resolutions = list(channels)  # low to high, as the levels
        self.num_levels = len(channels)
        self.b4 = ProGANDiscriminatorHead(channels[4], img_channels, c_dim, mbstd_group_size, mbstd_num_channels)
        for res in self.block_resolutions[1:]:
            setattr(self, f"b{res}", ProGANDiscriminatorBlock(channels[res], channels[res // 2], img_channels,
                                                             blur_filter, pool_after_activation))
        add_lod_buffer(self)

    @property
    def blocks(self) -> list[nn.Module]:
        """Levels, low to high resolution (the 4x4 head first)."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, update_emas: bool = False) -> torch.Tensor:
        del update_emas  # no running statistics in D
        check_img(img, self.img_channels, self.img_resolution)
        blocks = self.blocks
        return grow_input(img, float(self.lod), self.num_levels, lambda level, img: blocks[level].fromrgb(img),
                          lambda level, x: blocks[level](x) if level else self.b4(x, c))

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        return dict(c_dim=spec.c_dim, img_resolution=spec.img_resolution, img_channels=spec.img_channels,
                    channel_base=spec.channel_base, channel_max=spec.channel_max,
                    mbstd_group_size=spec.mbstd_group_size)
