"""The StyleGAN2 synthesis network: ws [N, num_ws, w_dim] -> image [N, C, H, W].

Module and parameter names follow the official code (`b{res}.conv0`, `.conv1`, `.torgb`, `.skip`,
`.const`, `noise_const`, `noise_strength`, `affine`), so its weights map one to one.

With `use_sel=True` it is EqGAN-SA's generator: every layer and ToRGB gets a Spatial Encoding Layer
fed by encoded heatmaps (`sel.py`), random ones unless `forward` is given `heatmap` or `centres`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from styleforge.networks.heatmaps import HeatmapSpec, sample_heatmap_spec
from styleforge.networks.precision import Precision
from styleforge.networks.sel import HeatmapEncoder, SpatialEncodingLayer, features_for_block, heatmap_feature_channels
from styleforge.ops.bias_act import activate_, activation_gain, gain_before_activation
from styleforge.ops.layers import DEFAULT_FILTER, Conv2dLayer, FullyConnectedLayer
from styleforge.ops.modulated_conv import modulated_conv2d
from styleforge.ops.upfirdn2d import setup_filter, upsample2d

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def default_fused_modconv(x: torch.Tensor, training: bool) -> bool:
    """The official choice (fused in inference only) except on CPUs, where the unfused path is ~3x faster
    for batches > 1 (one big convolution instead of `batch` small grouped ones).

    Never fused in training: the fused weights depend on the styles, so the path-length gradient needs
    their weight gradients, which the losses skip (`ops.conv.no_weight_gradients`)."""
    if training:
        return False
    N = x.shape[0]
    if x.device.type == "cpu":
        return N == 1
    return x.dtype == torch.float32 or N == 1


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling by 2) -> noise -> bias -> lrelu * gain -> clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 use_sel: bool = False):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.use_noise, self.activation, self.conv_clamp = use_noise, activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.sel = SpatialEncodingLayer(in_channels, heatmap_feature_channels(resolution)) if use_sel else None

    def make_noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor | None:
        """Scaled noise [N, 1, H, W] or [H, W] to add to the conv output, or None."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got '{noise_mode}'")
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        shape = [x.shape[0], 1, self.resolution, self.resolution]
        return torch.randn(shape, device=x.device, dtype=self.noise_strength.dtype) * self.noise_strength

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
        gain: float = 1,
        hm_features: torch.Tensor | None = None,
    ) -> torch.Tensor:  # [N, I, res/up, res/up], [N, w_dim] -> [N, O, res, res]
        if self.sel is not None:
            x = self.sel(x, hm_features)
        styles = self.affine(w)  # [N, I]
        noise = self.make_noise(x, noise_mode)
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(x, self.training)
        before, after = gain_before_activation(self.activation, self.act_gain * gain)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, bias=self.bias, gain=before, up=self.up,
                             padding=self.padding, resample_filter=self.resample_filter, fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return activate_(x, self.activation, gain_after=after, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation -> bias (linear) -> clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, use_sel: bool = False, resolution: int | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.sel = SpatialEncodingLayer(in_channels, heatmap_feature_channels(resolution)) if use_sel else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool | None = None,
                hm_features: torch.Tensor | None = None) -> torch.Tensor:
        if self.sel is not None:
            x = self.sel(x, hm_features)
        styles = self.affine(w) * self.weight_gain
        if fused_modconv is None:
            fused_modconv = default_fused_modconv(x, self.training)
        x = modulated_conv2d(x, self.weight, styles, bias=self.bias, demodulate=False, fused_modconv=fused_modconv)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisBlock(nn.Module):
    """One resolution: [const | conv0 (up)] -> conv1 -> [torgb], per architecture 'orig', 'skip', 'resnet'."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        use_sel: bool = False,
        **layer_kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got '{architecture}'")
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim, self.resolution = in_channels, out_channels, w_dim, resolution
        self.img_channels, self.is_last, self.use_fp16 = img_channels, is_last, use_fp16
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, use_sel=use_sel, **layer_kwargs)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter,
                                        **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, use_sel=use_sel,
                                    resolution=resolution)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        precision: Precision | None = None,
        fused_modconv: bool | None = None,
        hm_features: torch.Tensor | None = None,
        **layer_kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [N, in_channels, res/2, res/2] (None for the first block), img: [N, C, res/2, res/2] or None,
        ws: [N, num_conv + num_torgb, w_dim] -> (x [N, out_channels, res, res], img [N, C, res, res]).
        hm_features: the encoded heatmaps this block's spatial encoding layers see (EqGAN-SA)."""
        precision = precision or Precision.choose(ws.device, ws.dtype)
        w_iter = iter(ws.unbind(dim=1))
        if hm_features is not None:
            layer_kwargs["hm_features"] = hm_features
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = precision.apply(x, self.use_fp16)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv, hm_features=hm_features)
            y = y.to(dtype=precision.float_dtype, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        use_sel: bool = False,
        **block_kwargs,
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim,
                                   resolution=res, img_channels=img_channels, is_last=is_last,
                                   use_fp16=res >= fp16_resolution, use_sel=use_sel, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)
        self.heatmap_encoder = HeatmapEncoder() if use_sel else None
        # Run-time settings (not part of the saved config); see `Precision`.
        self.reduced_dtype = torch.float16
        self.reduced_on_cpu = False
        self.channels_last: bool | None = None

    @property
    def blocks(self) -> dict[int, SynthesisBlock]:
        """Blocks by output resolution, low to high."""
        return {res: getattr(self, f"b{res}") for res in self.block_resolutions}

    def split_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Per-block views of ws; a block's ToRGB shares its w with the next block's first conv."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        block_ws, w_idx = [], 0
        for block in self.blocks.values():
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        return block_ws

    def precision(self, device: torch.device, force_fp32: bool = False) -> Precision:
        return Precision.choose(device, self.b4.const.dtype, self.reduced_dtype, force_fp32=force_fp32,
                                reduced_on_cpu=self.reduced_on_cpu, channels_last=self.channels_last)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        update_emas: bool = False,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        heatmap: list[torch.Tensor] | None = None,
        centres: HeatmapSpec | torch.Tensor | None = None,
        **layer_kwargs,
    ) -> torch.Tensor:  # [N, num_ws, w_dim] -> [N, img_channels, res, res]
        """EqGAN-SA generators (use_sel) take `heatmap` (the three levels, [N, 1|2|4, R, R]) or `centres`
        (a `HeatmapSpec`, or level-1 centres [N, 2] in (y, x) with random parts); random ones by default."""
        del update_emas  # no running statistics in the synthesis network
        precision = self.precision(ws.device, force_fp32)
        ws = ws.to(precision.float_dtype)
        hm_features = self.encode_heatmaps(ws.shape[0], ws.device, heatmap, centres, precision.float_dtype)
        x = img = None
        for block, block_ws in zip(self.blocks.values(), self.split_ws(ws)):
            block_hm = features_for_block(hm_features, block.resolution) if hm_features is not None else None
            x, img = block(x, img, block_ws, precision=precision, fused_modconv=fused_modconv,
                           noise_mode=noise_mode, hm_features=block_hm, **layer_kwargs)
        return img

    def encode_heatmaps(
        self,
        batch_size: int,
        device: torch.device,
        heatmap: list[torch.Tensor] | None = None,
        centres: HeatmapSpec | torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> dict[int, torch.Tensor] | None:
        """Heatmap features by block resolution (None without spatial encoding layers)."""
        if self.heatmap_encoder is None:
            if heatmap is not None or centres is not None:
                raise ValueError("heatmap/centres need a generator with spatial encoding layers (use_sel=True)")
            return None
        if heatmap is None:
            spec = centres if isinstance(centres, HeatmapSpec) else sample_heatmap_spec(batch_size, device, centres)
            heatmap = spec.render(self.img_resolution)
        return self.heatmap_encoder([h.to(device=device, dtype=dtype) for h in heatmap])
