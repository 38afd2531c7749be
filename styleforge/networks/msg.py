"""MSG-GAN / MSG-StyleGAN (Karnewar & Wang 2020; akanimax/msg-stylegan-tf): multi-scale gradients.

G emits an image at every resolution (a linear 1x1 ToRGB with bias after every block), D reads all of them:
the top-resolution image through a FromRGB, each lower one joined with D's activations at that scale by a
combine function. So D's gradient reaches every block of G directly, without progressive growing.

- `msg-stylegan2`: StyleGAN2 synthesis blocks ('orig' or 'resnet') with the per-scale ToRGBs (ours; the
  paper's MSG-StyleGAN is StyleGAN v1 based, registered as `msg-stylegan1` in stylegan1.py).
- `msg` discriminator: [combine] -> minibatch stddev -> conv 3x3 -> conv 3x3 down 2 per block, the ProGAN
  head at 4x4. Combine functions and the channels they give the block (C = the block's channels):
  `simple` concat(x, img): C + img_channels; `lin_cat` concat(fromrgb(img), x), FromRGB 1x1 lrelu to C // 2:
  C + C // 2; `cat_lin` (default, official) linear 1x1 conv of concat(x, img): C.

G returns the full-resolution image as any generator does; `G.synthesis(ws, return_all_scales=True)` gives
the list low -> high, which the `msg` losses (losses/msg.py) pass to D. D also accepts a single image and
builds the scales itself by 2x2 average pooling, as for the reals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from styleforge.networks.composed import MappedGenerator, channels_per_resolution
from styleforge.networks.discriminator import MinibatchStdLayer
from styleforge.networks.persistence import persistent
from styleforge.networks.progan import ProGANDiscriminatorHead, check_img
from styleforge.networks.spec import NetworkSpec
from styleforge.networks.synthesis import SynthesisNetwork
from styleforge.ops.layers import DEFAULT_FILTER, Conv2dLayer
from styleforge.registry import DISCRIMINATORS, GENERATORS

COMBINES = ("simple", "lin_cat", "cat_lin")


def image_pyramid(img: torch.Tensor, num_scales: int) -> list[torch.Tensor]:
    """[img downsampled 2^(num_scales-1) times, ..., img]: repeated 2x2 average pooling, low -> high."""
    images = [img]
    for _ in range(num_scales - 1):
        images.insert(0, F.avg_pool2d(images[0], 2))
    return images


class MSGSynthesisNetwork(SynthesisNetwork):
    """StyleGAN2 synthesis blocks with a linear 1x1 ToRGB (`torgb{res}`) after every block."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, architecture: str = "orig",
                 **synthesis_kwargs: Any):
        if architecture not in ("orig", "resnet"):
            raise ValueError(f"MSG synthesis architecture must be 'orig' or 'resnet', got '{architecture}'")
        super().__init__(w_dim, img_resolution, img_channels, architecture=architecture, **synthesis_kwargs)
        # The top block's modulated ToRGB ('orig' gives the last block one) gives way to the per-scale ones.
        top = self.blocks[img_resolution]
        del top.torgb
        top.is_last, top.num_torgb = False, 0
        self.num_ws -= 1
        for res, block in self.blocks.items():
            setattr(self, f"torgb{res}", Conv2dLayer(block.out_channels, img_channels, 1))

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", update_emas: bool = False,
                force_fp32: bool = False, fused_modconv: bool | None = None, return_all_scales: bool = False,
                **layer_kwargs: Any) -> torch.Tensor | list[torch.Tensor]:
        """ws [N, num_ws, w_dim] -> img [N, C, R, R], or (return_all_scales) the images at 4, 8, .., R."""
        del update_emas  # no running statistics
        precision = self.precision(ws.device, force_fp32)
        ws = ws.to(precision.float_dtype)
        x, images = None, []
        for (res, block), block_ws in zip(self.blocks.items(), self.split_ws(ws)):
            x, _ = block(x, None, block_ws, precision=precision, fused_modconv=fused_modconv, noise_mode=noise_mode,
                         **layer_kwargs)
            if return_all_scales or res == self.img_resolution:
                img = getattr(self, f"torgb{res}")(x)
                images.append(img.to(dtype=precision.float_dtype, memory_format=torch.contiguous_format))
        return images if return_all_scales else images[-1]


@GENERATORS.register("msg-stylegan2")
@persistent("generator/msg-stylegan2")
class MSGStyleGAN2Generator(MappedGenerator):
    """synthesis_kwargs go to `MSGSynthesisNetwork` (architecture, channel_base, channel_max, num_fp16_res,
    conv_clamp, ...)."""

    synthesis_class = MSGSynthesisNetwork
    emits_all_scales = True

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        kwargs = super().kwargs_from_spec(spec)
        # The per-scale ToRGBs replace StyleGAN2's 'skip' outputs: the config's default 'skip' means 'orig' here.
        kwargs["synthesis_kwargs"].update(num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp,
                                          architecture="resnet" if spec.g_architecture == "resnet" else "orig")
        return kwargs


class Combine(nn.Module):
    """Joins D's activations x [N, C, r, r] with the image at that scale [N, img_channels, r, r]."""

    def __init__(self, mode: str, channels: int, img_channels: int):
        if mode not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got '{mode}'")
        super().__init__()
        self.mode = mode
        if mode == "lin_cat":
            self.fromrgb = Conv2dLayer(img_channels, channels // 2, 1, activation="lrelu")
        if mode == "cat_lin":
            self.conv = Conv2dLayer(channels + img_channels, channels, 1, bias=False)
        self.out_channels = {"simple": channels + img_channels, "lin_cat": channels + channels // 2,
                             "cat_lin": channels}[mode]

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:  # -> [N, out_channels, r, r]
        img = img.to(x.dtype)
        if self.mode == "simple":
            return torch.cat([x, img], dim=1)
        if self.mode == "lin_cat":
            return torch.cat([self.fromrgb(img), x], dim=1)
        return self.conv(torch.cat([x, img], dim=1))


class MSGDiscriminatorBlock(nn.Module):
    """[combine with the image at this scale] -> minibatch stddev -> conv 3x3 -> conv 3x3 down 2, lrelu."""

    def __init__(self, channels: int, out_channels: int, img_channels: int, combine: str | None,
                 mbstd_group_size: int | None, mbstd_num_channels: int, resample_filter: Sequence[float]):
        super().__init__()
        self.combine = Combine(combine, channels, img_channels) if combine else None
        in_channels = self.combine.out_channels if combine else channels
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv0 = Conv2dLayer(in_channels + mbstd_num_channels, channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(channels, out_channels, 3, activation="lrelu", down=2,
                                 resample_filter=resample_filter)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None) -> torch.Tensor:  # [N, C, r, r] -> [N, O, r/2, r/2]
        if self.combine is not None:
            x = self.combine(x, img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.conv1(self.conv0(x))


@DISCRIMINATORS.register("msg")
@persistent("discriminator/msg")
class MSGDiscriminator(nn.Module):
    reads_all_scales = True

    def __init__(self, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3, channel_base: int = 16384,
                 channel_max: int = 512, combine: str = "cat_lin", mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, resample_filter: Sequence[float] = DEFAULT_FILTER):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        channels = channels_per_resolution(img_resolution, channel_base, channel_max)
        self.block_resolutions = list(channels)  # low to high: scale i of D's input has resolution 4 * 2^i
        self.num_scales = len(channels)
        mbstd = dict(mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels)
        self.fromrgb = Conv2dLayer(img_channels, channels[img_resolution], 1, activation="lrelu")
        for res in self.block_resolutions[1:]:
            setattr(self, f"b{res}", MSGDiscriminatorBlock(channels[res], channels[res // 2], img_channels,
                                                           combine if res < img_resolution else None,
                                                           resample_filter=resample_filter, **mbstd))
        self.combine4 = Combine(combine, channels[4], img_channels)
        self.b4 = ProGANDiscriminatorHead(channels[4], img_channels, c_dim, in_channels=self.combine4.out_channels,
                                          with_fromrgb=False, **mbstd)

    def forward(self, img: torch.Tensor | Sequence[torch.Tensor], c: torch.Tensor | None = None,
                update_emas: bool = False) -> torch.Tensor:
        """img: the images at 4, 8, .., R (low -> high), or the top one alone -> logits [N, 1]."""
        del update_emas  # no running statistics in D
        images = list(img) if isinstance(img, (list, tuple)) else image_pyramid(img, self.num_scales)
        if len(images) != self.num_scales:
            raise ValueError(f"D expects {self.num_scales} scales (4 .. {self.img_resolution}), got {len(images)}")
        for res, image in zip(self.block_resolutions, images):
            check_img(image, self.img_channels, res)
        x = self.fromrgb(images[-1])
        for level in range(self.num_scales - 1, 0, -1):
            block = getattr(self, f"b{self.block_resolutions[level]}")
            x = block(x, images[level] if block.combine is not None else None)
        return self.b4(self.combine4(x, images[0]), c)

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        return dict(c_dim=spec.c_dim, img_resolution=spec.img_resolution, img_channels=spec.img_channels,
                    channel_base=spec.channel_base, channel_max=spec.channel_max,
                    mbstd_group_size=spec.mbstd_group_size)
