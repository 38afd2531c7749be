"""ProGAN TF networks (tkarras/progressive_growing_of_gans networks.py G_paper, D_paper) -> our 'progan'.

Variable names and layouts as that file builds them. Its layers scale weights by gain / sqrt(fan_in) (gain
sqrt 2, the 4x4 dense sqrt(2) / 4, ToRGB and the output 1) and apply a bare leaky ReLU; `rescale` moves the
gains to ours. Upsampling: with `fused_scale` (the default) a level's first convolution is a transposed
convolution whose variable is [kh, kw, out, in] ('Conv0_up'), which equals nearest upsampling + a
convolution with the kernel, what our upsampling layer computes, so only the layout changes; without it
('Conv0') it is nearest upsampling + a correlation, so the kernel is flipped for ours. D's fused
conv + downscale ('Conv1_down') is our downsampling layer; unfused, D pools after the activation ('Conv1',
lrelu, 2x2 pooling), which our D does with `pool_after_activation`.
The discriminator of StyleGAN v1 (D_basic) has the same variables and reuses `convert_progressive_d`.
"""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from styleforge.errors import UserError
from styleforge.official.tf import (
    RUNTIME_ARGS,
    StaticKwargs,
    TFNetwork,
    TFVariables,
    check_builds,
    hwio_to_oihw,
    populate,
    progressive_variables_name,
    rescale,
)
from styleforge.registry import DISCRIMINATORS, GENERATORS

SQRT2 = math.sqrt(2)


def channel_kwargs(args: StaticKwargs, fmap_base: int) -> dict:
    """Our channel_base/channel_max for TF's nf(stage) = min(fmap_base / 2^stage, fmap_max), stage = log2(res) - 1."""
    args.require("fmap_decay", 1, 1.0)
    args.require("dtype", "float32")
    args.require("use_wscale", True)
    args.ignore(*RUNTIME_ARGS)
    return dict(channel_base=args.get("fmap_base", fmap_base) * 2, channel_max=args.get("fmap_max", 512))


def conv_layer(v: TFVariables, scope: str, activation: str = "lrelu", tf_gain: float = SQRT2):
    """Our weight and bias of a TF conv (or dense) layer: {'weight': ..., 'bias': ...} as lazy values."""
    def weight():
        w = v[f"{scope}/weight"]
        return rescale(hwio_to_oihw(w) if w.ndim == 4 else w.T, tf_gain, activation)
    return {"weight": weight, "bias": lambda: rescale(v[f"{scope}/bias"], 1, activation)}


def convert_generator(net: TFNetwork) -> nn.Module:
    check_builds(net, "G_paper")
    args = StaticKwargs(net)
    for name, value in (("normalize_latents", True), ("use_pixelnorm", True), ("pixelnorm_epsilon", 1e-8),
                        ("use_leakyrelu", True)):
        args.require(name, value)
    channels = channel_kwargs(args, 8192)
    fused = args.get("fused_scale", True)
    kwargs = dict(z_dim=args.get("latent_size", min(args.get("fmap_base", 8192), channels["channel_max"])),
                  c_dim=args.get("label_size", 0), img_resolution=args.get("resolution", 32),
                  img_channels=args.get("num_channels", 1), **channels)
    args.check_all_known()
    v = TFVariables(net)
    G = GENERATORS.get("progan")(**kwargs)
    R = kwargs["img_resolution"]

    def up_weight(r: str) -> np.ndarray:
        if fused:  # [kh, kw, out, in], a transposed convolution: ours without a flip
            return v[f"{r}x{r}/Conv0_up/weight"].transpose(2, 3, 0, 1)
        return hwio_to_oihw(v[f"{r}x{r}/Conv0/weight"], flip=True)

    up = "Conv0_up" if fused else "Conv0"
    populate(G, [
        (r"mapping\.w_avg", None),  # fixed at 0: ProGAN has no mapping network
        (r"synthesis\.lod", lambda: v["lod"]),
        # The 4x4 dense layer's gain is sqrt(2) / 4 ("to match the original Theano implementation").
        (r"synthesis\.b4\.dense\.weight", lambda: rescale(v["4x4/Dense/weight"].T, SQRT2 / 4, "lrelu")),
        (r"synthesis\.b4\.dense_bias", lambda: rescale(v["4x4/Dense/bias"], 1, "lrelu")),
        (r"synthesis\.b4\.conv1\.(weight|bias)", lambda key: conv_layer(v, "4x4/Conv")[key]()),
        (r"synthesis\.b(\d+)\.conv0\.weight", lambda r: rescale(up_weight(r), SQRT2, "lrelu")),
        (r"synthesis\.b(\d+)\.conv0\.bias", lambda r: conv_layer(v, f"{r}x{r}/{up}")["bias"]()),
        (r"synthesis\.b(\d+)\.conv1\.(weight|bias)", lambda r, key: conv_layer(v, f"{r}x{r}/Conv1")[key]()),
        (r"synthesis\.b(\d+)\.torgb\.(weight|bias)", lambda r, key: conv_layer(
            v, progressive_variables_name("ToRGB", int(r), R), "linear", 1)[key]()),
        (r".*\.resample_filter", None),
    ], v)
    return G


def convert_progressive_d(net: TFNetwork, name: str, args: StaticKwargs, kwargs: dict, down: str) -> nn.Module:
    """Our ProGAN-style D (`name`: 'progan' or 'stylegan1') from a D_paper or D_basic network; `down` is the
    scope of the downsampling convolutions."""
    group_size = args.get("mbstd_group_size", 4)
    args.check_all_known()
    mbstd = dict(mbstd_group_size=group_size, mbstd_num_channels=1) if group_size > 1 else dict(mbstd_num_channels=0)
    v = TFVariables(net)
    D = DISCRIMINATORS.get(name)(**kwargs, **mbstd)
    R = kwargs["img_resolution"]
    populate(D, [
        (r"lod", lambda: v["lod"]),
        (r"b(\d+)\.fromrgb\.(weight|bias)",
         lambda r, key: conv_layer(v, progressive_variables_name("FromRGB", int(r), R))[key]()),
        (r"b(\d+)\.conv0\.(weight|bias)", lambda r, key: conv_layer(v, f"{r}x{r}/Conv0")[key]()),
        (r"b(\d+)\.conv1\.(weight|bias)", lambda r, key: conv_layer(v, f"{r}x{r}/{down}")[key]()),
        (r"b4\.conv\.(weight|bias)", lambda key: conv_layer(v, "4x4/Conv")[key]()),
        (r"b4\.fc\.(weight|bias)", lambda key: conv_layer(v, "4x4/Dense0")[key]()),
        (r"b4\.out\.(weight|bias)", lambda key: conv_layer(v, "4x4/Dense1", "linear", 1)[key]()),
        (r".*\.(resample_filter|blur_filter)", None),
    ], v)
    return D


def convert_discriminator(net: TFNetwork) -> nn.Module:
    check_builds(net, "D_paper")
    args = StaticKwargs(net)
    if args.get("label_size", 0):
        raise UserError("a conditional ProGAN D (an auxiliary classifier) has no StyleForge counterpart")
    kwargs = dict(img_resolution=args.get("resolution", 32), img_channels=args.get("num_channels", 1),
                  **channel_kwargs(args, 8192))
    fused = args.get("fused_scale", True)
    if not fused:  # 'Conv1' + lrelu, then 2x2 pooling: the activation comes before the pooling
        kwargs["pool_after_activation"] = True
    return convert_progressive_d(net, "progan", args, kwargs, "Conv1_down" if fused else "Conv1")


CONVERTERS = {"G_paper": convert_generator, "D_paper": convert_discriminator}
