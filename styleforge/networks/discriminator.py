"""The StyleGAN2 discriminator D(img, c) -> logits [N, 1], architectures 'orig', 'skip', 'resnet'.

Module and parameter names follow the official code (`b{res}.fromrgb/conv0/conv1/skip`, epilogue
`b4.mbstd/conv/fc/out`, label mapping `mapping`), so its weights map one to one. `D.blocks` gives
the blocks by input resolution (for hooks on intermediate features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from styleforge.networks.fsm import FeatureMixing, conv_with_mixing
from styleforge.networks.mapping import MappingNetwork
from styleforge.networks.persistence import persistent
from styleforge.networks.precision import Precision
from styleforge.networks.spec import NetworkSpec
from styleforge.ops.layers import DEFAULT_FILTER, Conv2dLayer, FullyConnectedLayer
from styleforge.ops.upfirdn2d import downsample2d, setup_filter
from styleforge.registry import DISCRIMINATORS

ARCHITECTURES = ("orig", "skip", "resnet")


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got '{architecture}'")


class DiscriminatorBlock(nn.Module):
    """One resolution: [fromrgb] -> conv0 (3x3) -> conv1 (3x3, down 2) [+ skip (1x1, down 2)]."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        freeze_layers: int = 0,
    ):
        _check_architecture(architecture)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))

        self.num_layers = 0

        def trainable() -> bool:  # Freeze-D: the first `freeze_layers` layers of D are not trained
            self.num_layers += 1
            return first_layer_idx + self.num_layers - 1 >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        precision: Precision | None = None,
        fsm: FeatureMixing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [N, in_channels, res, res] (None for the first block), img: [N, C, res, res] ->
        (x [N, out_channels, res/2, res/2], img downsampled for 'skip' else None).

        `fsm`: feature statistics mixing after each 3x3 convolution and the residual merge (FSMR)."""
        precision = precision or Precision.choose((x if x is not None else img).device)
        if x is not None:
            x = precision.apply(x, self.use_fp16)
        if self.in_channels == 0 or self.architecture == "skip":
            img = precision.apply(img, self.use_fp16)
            # A single-channel image is NCHW and channels_last at once, and fromrgb's output inherits NCHW.
            y = precision.apply(self.fromrgb(img), self.use_fp16)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = conv_with_mixing(self.conv0, x, fsm)
            x = conv_with_mixing(self.conv1, x, fsm, gain=math.sqrt(0.5))
            x = y + x
            if fsm is not None:
                x = fsm(x)
        else:
            x = conv_with_mixing(self.conv0, x, fsm)
            x = conv_with_mixing(self.conv1, x, fsm)
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the mean standard deviation over groups of `group_size` samples as extra channels.

    Groups are strided as in the official code: sample i belongs to group i mod (N / group_size).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C + F, H, W]
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size is not None else N
        if N % G:
            raise ValueError(f"minibatch std: batch size {N} is not divisible by the group size {G}")
        F = self.num_channels
        c = C // F
        y = x.reshape(G, -1, F, c, H, W)  # [G, n, F, c, H, W]: n groups of G samples, F channel groups
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W] std over each group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, F, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(G, 1, H, W)  # [N, F, H, W]
        return torch.cat([x, y.to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: [fromrgb] -> minibatch std -> conv 3x3 -> fc -> out [-> projection on cmap]."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        _check_architecture(architecture)
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self,
        x: torch.Tensor,
        img: torch.Tensor | None,
        cmap: torch.Tensor | None,
        precision: Precision | None = None,
        fsm: FeatureMixing | None = None,
    ) -> torch.Tensor:  # [N, C, 4, 4] -> [N, 1]
        dtype = precision.float_dtype if precision is not None else self.fc.weight.dtype
        x = x.to(dtype=dtype, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=dtype, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = conv_with_mixing(self.conv, x, fsm)
        x = self.fc(x.flatten(1))
        x = self.out(x)  # [N, 1] or [N, cmap_dim]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


@DISCRIMINATORS.register("stylegan2")
@persistent("discriminator/stylegan2")
class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 discriminator, official architecture and parameter names.

    block_kwargs go to every `DiscriminatorBlock` (activation, freeze_layers, ...), mapping_kwargs
    to the label `MappingNetwork` (conditional only), epilogue_kwargs to `DiscriminatorEpilogue`
    (mbstd_group_size, mbstd_num_channels).
    """

    supports_feature_mixing = True  # FSMR: forward(..., fsm=FeatureMixing)
    has_blocks = True  # `blocks` by feature size (EqGAN-SA's alignment hooks them)

    @classmethod
    def kwargs_from_spec(cls, spec: NetworkSpec) -> dict[str, Any]:
        return dict(c_dim=spec.c_dim, img_resolution=spec.img_resolution, img_channels=spec.img_channels,
                    architecture=spec.d_architecture, channel_base=spec.channel_base, channel_max=spec.channel_max,
                    num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp,
                    epilogue_kwargs=dict(mbstd_group_size=spec.mbstd_group_size))

    def __init__(
        self,
        c_dim: int = 0,
        img_resolution: int = 256,
        img_channels: int = 3,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res],
                                       channels[res // 2], resolution=res, first_layer_idx=layer_idx,
                                       use_fp16=res >= fp16_resolution, **(block_kwargs or {}), **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        **common)
        # Run-time settings (not part of the saved config); see `Precision`.
        self.reduced_dtype = torch.float16
        self.reduced_on_cpu = False
        self.channels_last: bool | None = None

    @property
    def blocks(self) -> dict[int, nn.Module]:
        """Blocks by input resolution, high to low, ending with the 4x4 epilogue."""
        return {res: getattr(self, f"b{res}") for res in self.block_resolutions + [4]}

    def precision(self, device: torch.device, force_fp32: bool = False) -> Precision:
        return Precision.choose(device, self.b4.fc.weight.dtype, self.reduced_dtype, force_fp32=force_fp32,
                                reduced_on_cpu=self.reduced_on_cpu, channels_last=self.channels_last)

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        update_emas: bool = False,
        force_fp32: bool = False,
        fsm: FeatureMixing | None = None,
    ) -> torch.Tensor:  # [N, C, H, W], [N, c_dim] -> [N, 1]
        """`fsm`: mixes feature statistics between samples in every 3x3 conv and residual merge (FSMR)."""
        del update_emas  # no running statistics in D
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            res = self.img_resolution
            raise ValueError(f"img must have shape [N, {self.img_channels}, {res}, {res}], got {list(img.shape)}")
        precision = self.precision(img.device, force_fp32)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, precision=precision, fsm=fsm)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap, precision=precision, fsm=fsm)
