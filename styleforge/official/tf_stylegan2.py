"""StyleGAN2 TF networks (NVlabs/stylegan2 config E/F, NVlabs/stylegan2-ada) -> our 'stylegan2' G and D.

Follows stylegan2-ada-pytorch's legacy.py (convert_tf_generator, convert_tf_discriminator): the same
build-argument names, the same variable for each parameter. TF and our StyleGAN2 layers scale weights the
same way (apply_bias_act has the activation gain, as ours), so weights only change layout: dense [in, out] ->
[out, in]; conv HWIO -> OIHW, flipped for the upsampling convolutions (TF's upsample_conv_2d flips the kernel
itself); the modulation bias gets TF's run-time `+ 1`; the 4x4 constant and the noise maps lose their leading
unit axes. Where an argument is absent, the default is that of the official build function rather than
legacy.py's (which equal them for the published models): D_stylegan2's minibatch-stddev group size is 4
(legacy.py: the whole minibatch, D_main's default), stylegan2-ada's label embedding has latent_size features
and D_main's label mapping nf(0) (legacy.py: w_dim and nf(1)), NVlabs/stylegan2's mapping layers have 512
features (legacy.py: w_dim).
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
    check_generator,
    hwio_to_oihw,
    populate,
)
from styleforge.registry import DISCRIMINATORS, GENERATORS

_MBSTD_DEFAULT = {"D_stylegan2": 4, "D_main": None}  # group size when the pickle does not name it


def _common(args: StaticKwargs) -> None:
    """Arguments of the official code that ours has at one value only."""
    args.require("fmap_decay", 1, 1.0)
    args.require("fmap_min", 1)
    args.require("dtype", "float32")
    args.ignore(*RUNTIME_ARGS, "augment_strength")


def generator_kwargs(args: StaticKwargs, ada: bool) -> dict:
    """Our G's constructor arguments from the TF G's build arguments (legacy.py's names); `ada`: built by
    stylegan2-ada's code rather than NVlabs/stylegan2's, whose G_mapping defaults to 512 hidden features."""
    _common(args)
    args.require("normalize_latents", True)
    args.require("mapping_func", "G_mapping")
    args.require("synthesis_func", "G_synthesis_stylegan2", "G_synthesis")
    args.require("fmap_const", None)
    latent_size = args.get("latent_size", 512)
    # None disables the tracking of w_avg: a beta of 1 keeps it fixed (legacy.py).
    w_avg_beta = args.get("w_avg_beta", args.get("dlatent_avg_beta", 0.995, none=1), none=1)
    return dict(
        z_dim=latent_size,
        c_dim=args.get("label_size", 0),
        w_dim=args.get("dlatent_size", 512),
        img_resolution=args.get("resolution", 1024),
        img_channels=args.get("num_channels", 3),
        mapping_kwargs=dict(
            num_layers=args.get("mapping_layers", 8),
            embed_features=args.get("label_fmaps", latent_size),  # stylegan2-ada's G_mapping default
            layer_features=args.get("mapping_fmaps", None if ada else 512),
            activation=args.get("mapping_nonlinearity", "lrelu"),
            lr_multiplier=args.get("mapping_lrmul", 0.01),
            w_avg_beta=w_avg_beta,
        ),
        synthesis_kwargs=dict(
            channel_base=args.get("fmap_base", 16384) * 2,
            channel_max=args.get("fmap_max", 512),
            num_fp16_res=args.get("num_fp16_res", 0),
            conv_clamp=args.get("conv_clamp"),
            architecture=args.get("architecture", "skip"),
            resample_filter=args.get("resample_kernel", [1, 3, 3, 1]),
            use_noise=args.get("use_noise", True),
            activation=args.get("nonlinearity", "lrelu"),
        ),
    )


def convert_generator(net: TFNetwork) -> nn.Module:
    check_generator(net, "G_main", ("G_mapping",), ("G_synthesis_stylegan2", "G_synthesis"))
    args = StaticKwargs(net)
    kwargs = generator_kwargs(args, ada=net.components["synthesis"].build_func_name == "G_synthesis")
    args.check_all_known()
    v = TFVariables(net)
    if "mapping/LabelConcat/weight" in v:
        raise UserError("a conditional NVlabs/stylegan2 G (labels concatenated to z, LabelConcat) has no "
                        "StyleForge counterpart; stylegan2-ada's label embedding (LabelEmbed) is supported")
    if "lod" in v and float(v["lod"]) != 0:  # G_main's lod matters to progressive synthesis networks only
        raise UserError(f"TF network '{net.name}' is still growing (lod={float(v['lod'])})")
    G = GENERATORS.get("stylegan2")(**kwargs)

    def noise(index: int) -> np.ndarray:
        return v[f"synthesis/noise{index}"][0, 0]

    def modulated(prefix: str, key: str):  # a modulated layer's TF variables for our parameter `key`
        return {
            "weight": lambda: hwio_to_oihw(v[f"{prefix}/weight"], flip=prefix.endswith("Conv0_up")),
            "bias": lambda: v[f"{prefix}/bias"],
            "noise_strength": lambda: v[f"{prefix}/noise_strength"],
            "affine.weight": lambda: v[f"{prefix}/mod_weight"].T,
            "affine.bias": lambda: v[f"{prefix}/mod_bias"] + 1,
        }[key]()

    layer = r"(weight|bias|noise_strength|affine\.weight|affine\.bias)"
    log2 = lambda r: int(math.log2(int(r)))
    populate(G, [
        (r"mapping\.w_avg", lambda: v["dlatent_avg"]),
        (r"mapping\.embed\.weight", lambda: v["mapping/LabelEmbed/weight"].T),
        (r"mapping\.embed\.bias", lambda: v["mapping/LabelEmbed/bias"]),
        (r"mapping\.fc(\d+)\.weight", lambda i: v[f"mapping/Dense{i}/weight"].T),
        (r"mapping\.fc(\d+)\.bias", lambda i: v[f"mapping/Dense{i}/bias"]),
        (r"synthesis\.b4\.const", lambda: v["synthesis/4x4/Const/const"][0]),
        (r"synthesis\.b4\.conv1\.noise_const", lambda: noise(0)),
        (rf"synthesis\.b4\.conv1\.{layer}", lambda key: modulated("synthesis/4x4/Conv", key)),
        (r"synthesis\.b(\d+)\.conv0\.noise_const", lambda r: noise(log2(r) * 2 - 5)),
        (r"synthesis\.b(\d+)\.conv1\.noise_const", lambda r: noise(log2(r) * 2 - 4)),
        (rf"synthesis\.b(\d+)\.conv0\.{layer}", lambda r, key: modulated(f"synthesis/{r}x{r}/Conv0_up", key)),
        (rf"synthesis\.b(\d+)\.conv1\.{layer}", lambda r, key: modulated(f"synthesis/{r}x{r}/Conv1", key)),
        (rf"synthesis\.b(\d+)\.torgb\.{layer}", lambda r, key: modulated(f"synthesis/{r}x{r}/ToRGB", key)),
        (r"synthesis\.b(\d+)\.skip\.weight",
         lambda r: hwio_to_oihw(v[f"synthesis/{r}x{r}/Skip/weight"], flip=True)),
        (r".*\.resample_filter", None),
    ], v)
    return G


def discriminator_kwargs(args: StaticKwargs, build_func: str) -> dict:
    _common(args)
    # stylegan2-ada's comparison methods, at the values that leave them out.
    for name, value in (("use_pagan", False), ("score_size", 1), ("score_max", 1), ("use_spectral_norm", False),
                        ("adaptive_dropout", 0)):
        args.require(name, value)
    args.ignore("pagan_num", "pagan_fade")
    activation = args.get("nonlinearity", "lrelu")
    group_size = args.get("mbstd_group_size", _MBSTD_DEFAULT[build_func])
    num_features = args.get("mbstd_num_features", 1)
    if build_func == "D_stylegan2" and group_size is not None and group_size <= 1:  # it skips the layer then
        num_features = 0
    nf0 = min(args.get("fmap_base", 16384), args.get("fmap_max", 512))
    return dict(
        c_dim=args.get("label_size", 0),
        img_resolution=args.get("resolution", 1024),
        img_channels=args.get("num_channels", 3),
        architecture=args.get("architecture", "resnet"),
        channel_base=args.get("fmap_base", 16384) * 2,
        channel_max=args.get("fmap_max", 512),
        num_fp16_res=args.get("num_fp16_res", 0),
        conv_clamp=args.get("conv_clamp"),
        cmap_dim=args.get("mapping_fmaps", nf0),  # D_main's default, nf(0)
        block_kwargs=dict(activation=activation, resample_filter=args.get("resample_kernel", [1, 3, 3, 1]),
                          freeze_layers=args.get("freeze_layers", 0)),
        mapping_kwargs=dict(num_layers=args.get("mapping_layers", 0), embed_features=args.get("mapping_fmaps", nf0),
                            layer_features=args.get("mapping_fmaps", nf0), activation=activation,
                            lr_multiplier=args.get("mapping_lrmul", 0.1)),
        epilogue_kwargs=dict(mbstd_group_size=group_size, mbstd_num_channels=num_features, activation=activation),
    )


def convert_discriminator(net: TFNetwork) -> nn.Module:
    check_builds(net, *_MBSTD_DEFAULT)
    args = StaticKwargs(net)
    kwargs = discriminator_kwargs(args, net.build_func_name)
    args.check_all_known()
    v = TFVariables(net)
    D = DISCRIMINATORS.get("stylegan2")(**kwargs)
    conv_name = {"0": "Conv0", "1": "Conv1_down"}
    populate(D, [
        (r"b(\d+)\.fromrgb\.weight", lambda r: hwio_to_oihw(v[f"{r}x{r}/FromRGB/weight"])),
        (r"b(\d+)\.fromrgb\.bias", lambda r: v[f"{r}x{r}/FromRGB/bias"]),
        (r"b(\d+)\.conv(\d)\.weight", lambda r, i: hwio_to_oihw(v[f"{r}x{r}/{conv_name[i]}/weight"])),
        (r"b(\d+)\.conv(\d)\.bias", lambda r, i: v[f"{r}x{r}/{conv_name[i]}/bias"]),
        (r"b(\d+)\.skip\.weight", lambda r: hwio_to_oihw(v[f"{r}x{r}/Skip/weight"])),
        (r"mapping\.embed\.weight", lambda: v["LabelEmbed/weight"].T),
        (r"mapping\.embed\.bias", lambda: v["LabelEmbed/bias"]),
        (r"mapping\.fc(\d+)\.weight", lambda i: v[f"Mapping{i}/weight"].T),
        (r"mapping\.fc(\d+)\.bias", lambda i: v[f"Mapping{i}/bias"]),
        (r"b4\.conv\.weight", lambda: hwio_to_oihw(v["4x4/Conv/weight"])),
        (r"b4\.conv\.bias", lambda: v["4x4/Conv/bias"]),
        (r"b4\.fc\.weight", lambda: v["4x4/Dense0/weight"].T),
        (r"b4\.fc\.bias", lambda: v["4x4/Dense0/bias"]),
        (r"b4\.out\.weight", lambda: v["Output/weight"].T),
        (r"b4\.out\.bias", lambda: v["Output/bias"]),
        (r".*\.resample_filter", None),
    ], v)
    return D


CONVERTERS = {"G_main": convert_generator, "D_stylegan2": convert_discriminator, "D_main": convert_discriminator}
