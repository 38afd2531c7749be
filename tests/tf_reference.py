"""The official TF graphs, built by hand from the pickled variables, op by op (float64, NCHW).

Each function follows the official build function line by line with the TF ops' own semantics:
get_weight's run-time scale gain * lrmul / sqrt(fan_in), tf.nn.conv2d (a correlation of HWIO kernels,
'SAME' padding), tf.nn.conv2d_transpose (its adjoint), bare activations, upfirdn_2d as its reference
implementation. Nothing here uses StyleForge's layers, so agreement with an imported network checks the
conversion. Networks run at lod 0 with their stored noise (randomize_noise=False) and no truncation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def weight(v, gain=1.0, lrmul=1.0, fan_in=None) -> torch.Tensor:
    w = t(v)
    fan_in = np.prod(w.shape[:-1]) if fan_in is None else fan_in
    return w * (gain * lrmul / math.sqrt(fan_in))


def conv2d(x, w_hwio, stride=1):
    """tf.nn.conv2d(x, w, padding='SAME', data_format='NCHW') for odd kernels (stride 1) or stride 2."""
    k = w_hwio.shape[0]
    if stride == 1:
        return F.conv2d(x, w_hwio.permute(3, 2, 0, 1), padding=k // 2)
    total = max((x.shape[2] // stride - 1) * stride + k - x.shape[2], 0)  # TF 'SAME': extra pixel at the end
    return F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), w_hwio.permute(3, 2, 0, 1), stride=stride)


def conv2d_transpose(x, w_hwoi, padding="SAME"):
    """tf.nn.conv2d_transpose with stride 2 and a filter [kh, kw, out, in]: the adjoint of conv2d."""
    k = w_hwoi.shape[0]
    if padding == "VALID":
        return F.conv_transpose2d(x, w_hwoi.permute(3, 2, 0, 1), stride=2)
    total = (x.shape[2] - 1) * 2 + k - 2 * x.shape[2]  # the forward conv's 'SAME' padding
    y = F.conv_transpose2d(x, w_hwoi.permute(3, 2, 0, 1), stride=2)
    return y[:, :, total // 2: y.shape[2] - (total - total // 2), total // 2: y.shape[3] - (total - total // 2)]


def lrelu(x):
    return torch.maximum(x, x * 0.2)


def pixel_norm(x, eps=1e-8):
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x, eps=1e-8):
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=[2, 3], keepdim=True) + eps)


def upscale2d(x, factor=2):
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def downscale2d(x, factor=2):
    return F.avg_pool2d(x, factor)


def add_bias(x, b):
    return x + (t(b).reshape(1, -1, 1, 1) if x.ndim == 4 else t(b))


def blur2d(x, f=(1, 2, 1)):
    f = np.outer(f, f).astype(np.float64)
    f = t(f / f.sum())[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, f.flip(2, 3), padding=1, groups=x.shape[1])


def fused_kernel(w_hwio):
    """The 4x4 kernel of the official fused up/down-scaling convolutions: the 3x3 kernel summed at 4 shifts."""
    w = F.pad(w_hwio.permute(2, 3, 0, 1), [1, 1, 1, 1]).permute(2, 3, 0, 1)
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def upfirdn_2d(x, k, up=1, down=1, pad0=0, pad1=0):
    """dnnlib.tflib.ops.upfirdn_2d._upfirdn_2d_ref, NCHW."""
    N, C, H, W = x.shape
    if up > 1:
        x = F.pad(x.reshape(N, C, H, 1, W, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(N, C, H * up, W * up)
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    x = F.conv2d(x.reshape(N * C, 1, *x.shape[2:]), t(k).flip(0, 1)[None, None])  # a true convolution with k
    return x.reshape(N, C, *x.shape[2:])[:, :, ::down, ::down]


def setup_kernel(k):
    k = np.asarray(k, dtype=np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    return k / k.sum()


def upsample_2d(x, k=(1, 3, 3, 1), factor=2):
    k = setup_kernel(k) * factor**2
    p = k.shape[0] - factor
    return upfirdn_2d(x, k, up=factor, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2)


def upsample_conv_2d(x, w_hwio, k=(1, 3, 3, 1), factor=2):
    """The official upsample_conv_2d: a transposed convolution with the flipped kernel, then the FIR filter."""
    kh = w_hwio.shape[0]
    k = setup_kernel(k) * factor**2
    p = (k.shape[0] - factor) - (kh - 1)
    w = w_hwio.flip(0, 1).permute(0, 1, 3, 2)  # [kh, kw, out, in]
    x = conv2d_transpose(x, w, padding="VALID")
    return upfirdn_2d(x, k, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2 + 1)


# ---------------------------------------------------------------- StyleGAN2 (G_main, G_synthesis_stylegan2)

def stylegan2_mapping(v, kw, z, c=None):
    x = pixel_norm(t(z))
    if c is not None:  # stylegan2-ada's G_mapping: embedded, normalized labels after the latents
        y = t(c) @ weight(v["mapping/LabelEmbed/weight"]) + t(v["mapping/LabelEmbed/bias"])
        x = torch.cat([x, pixel_norm(y)], dim=1)
    for i in range(kw["mapping_layers"]):
        w = weight(v[f"mapping/Dense{i}/weight"], lrmul=0.01)
        x = lrelu(x @ w + t(v[f"mapping/Dense{i}/bias"]) * 0.01) * SQRT2
    return x


def modulated_conv(v, scope, x, w_latent, up=False, demodulate=True):
    w = weight(v[f"{scope}/weight"])  # [k, k, I, O]
    s = w_latent @ weight(v[f"{scope}/mod_weight"]) + t(v[f"{scope}/mod_bias"]) + 1  # [N, I]
    ww = w[None] * s[:, None, None, :, None]
    x = x * s[:, :, None, None]
    x = upsample_conv_2d(x, w) if up else conv2d(x, w)
    if demodulate:
        d = torch.rsqrt(ww.square().sum(dim=[1, 2, 3]) + 1e-8)  # [N, O]
        x = x * d[:, :, None, None]
    return x


def stylegan2_generator(v, kw, z, c=None):
    R = kw["resolution"]
    log2 = int(math.log2(R))
    w = stylegan2_mapping(v, kw, z, c)

    def layer(x, idx, scope, up=False):
        x = modulated_conv(v, f"synthesis/{scope}", x, w, up=up)
        x = x + t(v[f"synthesis/noise{idx}"]) * t(v[f"synthesis/{scope}/noise_strength"])
        return lrelu(add_bias(x, v[f"synthesis/{scope}/bias"])) * SQRT2

    def torgb(x, scope):
        return add_bias(modulated_conv(v, f"synthesis/{scope}", x, w, demodulate=False), v[f"synthesis/{scope}/bias"])

    architecture = kw.get("architecture", "skip")
    x = t(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    x = layer(x, 0, "4x4/Conv")
    y = torgb(x, "4x4/ToRGB") if architecture == "skip" else None
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        skip = x
        x = layer(x, res * 2 - 5, f"{r}/Conv0_up", up=True)
        x = layer(x, res * 2 - 4, f"{r}/Conv1")
        if architecture == "resnet":
            x = (x + upsample_conv_2d(skip, weight(v[f"synthesis/{r}/Skip/weight"]))) / SQRT2
        if architecture == "skip":
            y = upsample_2d(y) + torgb(x, f"{r}/ToRGB")
    return y if architecture == "skip" else torgb(x, f"{2**log2}x{2**log2}/ToRGB")


# ---------------------------------------------------------------- StyleGAN v1 (G_style, G_synthesis, D_basic)

def stylegan1_generator(v, kw, z, fused_scale="auto"):
    log2 = int(math.log2(kw["resolution"]))
    x = pixel_norm(t(z))
    for i in range(kw["mapping_layers"]):
        x = lrelu(x @ weight(v[f"mapping/Dense{i}/weight"], SQRT2, 0.01) + t(v[f"mapping/Dense{i}/bias"]) * 0.01)
    w = x

    def epilogue(x, idx, scope):
        s = f"synthesis/{scope}"
        x = x + t(v[f"synthesis/noise{idx}"]) * t(v[f"{s}/Noise/weight"]).reshape(1, -1, 1, 1)
        x = instance_norm(lrelu(add_bias(x, v[f"{s}/bias"])))
        style = (w @ weight(v[f"{s}/StyleMod/weight"]) + t(v[f"{s}/StyleMod/bias"])).reshape(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    x = epilogue(t(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1), 0, "4x4/Const")
    x = epilogue(conv2d(x, weight(v["synthesis/4x4/Conv/weight"], SQRT2)), 1, "4x4/Conv")
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        w_up = weight(v[f"synthesis/{r}/Conv0_up/weight"], SQRT2)
        fused = 2**res >= 128 if fused_scale == "auto" else fused_scale
        if fused:  # networks_stylegan.py upscale2d_conv2d: transpose to [k, k, out, in], pad, sum, transpose-conv
            x = conv2d_transpose(x, fused_kernel(w_up.permute(0, 1, 3, 2)))
        else:
            x = conv2d(upscale2d(x), w_up)
        x = epilogue(blur2d(x), res * 2 - 4, f"{r}/Conv0_up")
        x = epilogue(conv2d(x, weight(v[f"synthesis/{r}/Conv1/weight"], SQRT2)), res * 2 - 3, f"{r}/Conv1")
    return add_bias(conv2d(x, weight(v["synthesis/ToRGB_lod0/weight"])), v["synthesis/ToRGB_lod0/bias"])


def minibatch_stddev(x, group_size=4):
    G = min(group_size, x.shape[0])
    y = x.reshape(G, -1, *x.shape[1:])
    y = (y - y.mean(dim=0, keepdim=True)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[1, 2, 3], keepdim=True)  # [M, 1, 1, 1]
    return torch.cat([x, y.repeat(G, 1, x.shape[2], x.shape[3])], dim=1)


def progressive_discriminator(v, kw, img, down="Conv1_down", blur=False, fused_scale=True):
    """D_basic (blur, fused_scale 'auto') and D_paper: fromrgb at the top level, blocks down to 4x4."""
    log2 = int(math.log2(kw["resolution"]))
    x = lrelu(add_bias(conv2d(t(img), weight(v["FromRGB_lod0/weight"], SQRT2)), v["FromRGB_lod0/bias"]))
    for res in range(log2, 2, -1):
        r = f"{2**res}x{2**res}"
        x = lrelu(add_bias(conv2d(x, weight(v[f"{r}/Conv0/weight"], SQRT2)), v[f"{r}/Conv0/bias"]))
        x = blur2d(x) if blur else x
        w, b = weight(v[f"{r}/{down}/weight"], SQRT2), v[f"{r}/{down}/bias"]
        fused = 2**res >= 128 if fused_scale == "auto" else fused_scale
        if fused:
            x = lrelu(add_bias(conv2d(x, fused_kernel(w) * 0.25, stride=2), b))
        elif down == "Conv1":  # D_paper unfused: conv, bias, activation, then the pooling
            x = downscale2d(lrelu(add_bias(conv2d(x, w), b)))
        else:  # D_basic unfused: conv2d_downscale2d's conv then pooling, then bias and activation
            x = lrelu(add_bias(downscale2d(conv2d(x, w)), b))
    x = minibatch_stddev(x)
    x = lrelu(add_bias(conv2d(x, weight(v["4x4/Conv/weight"], SQRT2)), v["4x4/Conv/bias"]))
    x = lrelu(x.flatten(1) @ weight(v["4x4/Dense0/weight"], SQRT2) + t(v["4x4/Dense0/bias"]))
    return x @ weight(v["4x4/Dense1/weight"]) + t(v["4x4/Dense1/bias"])


# ---------------------------------------------------------------- ProGAN (G_paper)

def progan_generator(v, kw, z, fused_scale=True):
    log2 = int(math.log2(kw["resolution"]))
    nf1 = v["4x4/Conv/bias"].shape[0]
    x = pixel_norm(t(z))
    x = (x @ weight(v["4x4/Dense/weight"], SQRT2 / 4)).reshape(-1, nf1, 4, 4)
    x = pixel_norm(lrelu(add_bias(x, v["4x4/Dense/bias"])))
    x = pixel_norm(lrelu(add_bias(conv2d(x, weight(v["4x4/Conv/weight"], SQRT2)), v["4x4/Conv/bias"])))
    for res in range(3, log2 + 1):
        r = f"{2**res}x{2**res}"
        if fused_scale:  # networks.py upscale2d_conv2d: the variable is [k, k, out, in]
            w = t(v[f"{r}/Conv0_up/weight"])
            w = fused_kernel(w * (SQRT2 / math.sqrt(9 * w.shape[3])))
            x = add_bias(conv2d_transpose(x, w), v[f"{r}/Conv0_up/bias"])
        else:
            x = add_bias(conv2d(upscale2d(x), weight(v[f"{r}/Conv0/weight"], SQRT2)), v[f"{r}/Conv0/bias"])
        x = pixel_norm(lrelu(x))
        x = pixel_norm(lrelu(add_bias(conv2d(x, weight(v[f"{r}/Conv1/weight"], SQRT2)), v[f"{r}/Conv1/bias"])))
    return add_bias(conv2d(x, weight(v["ToRGB_lod0/weight"])), v["ToRGB_lod0/bias"])
