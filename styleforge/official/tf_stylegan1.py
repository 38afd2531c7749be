"""StyleGAN v1 TF networks (NVlabs/stylegan training/networks_stylegan.py G_style, D_basic) -> our 'stylegan1'.

Variable names and layouts as that file builds them. Every synthesis layer ends in layer_epilogue: noise
('Noise/weight', one per channel, on the map 'noise{layer}'), bias, bare leaky ReLU, instance norm, style
('StyleMod', a dense layer from w to (scale, shift)). Convolutions and the mapping's dense layers have gain
sqrt 2, which `rescale` moves into our activation's gain: the weights stay, biases, noise weights and the
4x4 constant are divided by sqrt 2, so that our pre-activations are TF's / sqrt 2 and our outputs equal
TF's. Upsampling convolutions are nearest upsampling + a correlation ('fused_scale' False, and 'auto' below
128 px), or from 128 px on a transposed convolution ('auto' or True), which equals nearest upsampling + a
convolution with the same kernel: our upsampling layer computes the latter, so the kernel is flipped where
TF did not fuse. D_basic is ProGAN's D with a blur (tf_progan.convert_progressive_d).
"""

from __future__ import annotations

import math

from torch import nn

from styleforge.errors import UserError
from styleforge.official import tf
from styleforge.official.tf_progan import SQRT2, channel_kwargs, conv_layer, convert_progressive_d
from styleforge.registry import GENERATORS


def _fused(fused_scale: bool | str, resolution: int) -> bool:
    """Whether TF built the upsampling convolution of this level as a transposed convolution."""
    return resolution >= 128 if fused_scale == "auto" else bool(fused_scale)


def convert_generator(net: tf.TFNetwork) -> nn.Module:
    tf.check_generator(net, "G_style", ("G_mapping",), ("G_synthesis",))
    args = tf.StaticKwargs(net)
    for name, value in (("use_styles", True), ("const_input_layer", True), ("use_pixel_norm", False),
                        ("use_instance_norm", True), ("normalize_latents", True), ("nonlinearity", "lrelu")):
        args.require(name, value)
    args.ignore(*tf.RUNTIME_ARGS)
    if args.get("label_size", 0):
        raise UserError("a conditional StyleGAN v1 G (labels concatenated to z) has no StyleForge counterpart")
    fused_scale = args.get("fused_scale", "auto")
    mapping_act = args.get("mapping_nonlinearity", "lrelu")
    kwargs = dict(
        z_dim=args.get("latent_size", 512), w_dim=args.get("dlatent_size", 512),
        img_resolution=args.get("resolution", 1024), img_channels=args.get("num_channels", 3),
        mapping_kwargs=dict(num_layers=args.get("mapping_layers", 8), layer_features=args.get("mapping_fmaps", 512),
                            activation=mapping_act, lr_multiplier=args.get("mapping_lrmul", 0.01),
                            w_avg_beta=args.get("dlatent_avg_beta", 0.995, none=1)),
        synthesis_kwargs=dict(blur_filter=args.get("blur_filter", [1, 2, 1]), use_noise=args.get("use_noise", True),
                              **channel_kwargs(args, 8192)),
    )
    args.check_all_known()
    v = tf.TFVariables(net)
    G = GENERATORS.get("stylegan1")(**kwargs)
    R = kwargs["img_resolution"]
    # G_style assigns its own lod to the synthesis network's before every run: one value.
    if float(v["synthesis/lod"]) != float(v["lod"]):
        raise UserError(f"TF network '{net.name}': its lod and its synthesis network's lod differ")

    def scope(r: str, i: str) -> str:
        names = ("Const", "Conv") if r == "4" else ("Conv0_up", "Conv1")
        return f"synthesis/{r}x{r}/{names[int(i)]}"

    def conv_weight(r: str, i: str):
        flip = i == "0" and not _fused(fused_scale, int(r))  # our upsampling layer convolves; TF correlated
        return tf.rescale(tf.hwio_to_oihw(v[f"{scope(r, i)}/weight"], flip=flip), SQRT2, "lrelu")

    def noise_map(r: str, i: str):
        return v[f"synthesis/noise{2 * int(math.log2(int(r))) - 4 + int(i)}"][0, 0]

    layer = r"synthesis\.b(\d+)\.conv(\d)\."
    tf.populate(G, [
        (r"mapping\.w_avg", lambda: v["dlatent_avg"]),
        (r"mapping\.fc(\d+)\.(weight|bias)", lambda i, key: conv_layer(v, f"mapping/Dense{i}", mapping_act)[key]()),
        (r"synthesis\.lod", lambda: v["lod"]),
        (r"synthesis\.b4\.const", lambda: tf.rescale(v["synthesis/4x4/Const/const"][0], 1, "lrelu")),
        (layer + "conv\\.weight", conv_weight),
        (layer + "noise_const", noise_map),
        (layer + "noise_strength", lambda r, i: tf.rescale(v[f"{scope(r, i)}/Noise/weight"], 1, "lrelu")),
        (layer + "bias", lambda r, i: tf.rescale(v[f"{scope(r, i)}/bias"], 1, "lrelu")),
        (layer + r"adain\.style\.(weight|bias)",
         lambda r, i, key: conv_layer(v, f"{scope(r, i)}/StyleMod", "linear", 1)[key]()),
        (r"synthesis\.b(\d+)\.torgb\.(weight|bias)", lambda r, key: conv_layer(
            v, "synthesis/" + tf.progressive_variables_name("ToRGB", int(r), R), "linear", 1)[key]()),
        (r".*\.(resample_filter|blur_filter)", None),
    ], v)
    return G


def convert_discriminator(net: tf.TFNetwork) -> nn.Module:
    tf.check_builds(net, "D_basic")
    args = tf.StaticKwargs(net)
    args.require("nonlinearity", "lrelu")
    args.ignore("fused_scale")  # the fused and unfused conv + downscale are the same map, named alike
    kwargs = dict(c_dim=args.get("label_size", 0), img_resolution=args.get("resolution", 32),
                  img_channels=args.get("num_channels", 1), blur_filter=args.get("blur_filter", [1, 2, 1]),
                  **channel_kwargs(args, 8192))
    return convert_progressive_d(net, "stylegan1", args, kwargs, "Conv1_down")


CONVERTERS = {"G_style": convert_generator, "D_basic": convert_discriminator}
