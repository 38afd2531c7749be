"""ADA: the adaptive discriminator augmentation pipeline of StyleGAN2-ADA (Karras et al. 2020).

Every op fires independently per sample with probability `p * multiplier`; the draws come from
torch's global RNG on the images' device, in the order of NVlabs' training/augment.py. Geometric ops
compose into one 3x3 matrix applied by a single resampling (reflect pad, 2x upsample with the sym6
wavelet, bilinear grid_sample, 2x downsample); colour ops compose into one 4x4 matrix. All of it is
differentiable w.r.t. the images, twice (R1 through the augmentation).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from styleforge.augment import matrices as M
from styleforge.augment.adaptive import AdaptiveP
from styleforge.augment.base import Augmentation
from styleforge.augment.resample import SYM2, SYM6, downsample2x, grid_sample, upsample2x
from styleforge.errors import UserError
from styleforge.registry import AUGMENTATIONS


@dataclasses.dataclass(frozen=True)
class AdaOptions:
    """Per-op probability multipliers (0 = off, 1 = fires with probability p) and distribution settings."""

    # Pixel blitting.
    xflip: float = 0  # x-flip (fires, then flips with probability 1/2)
    rotate90: float = 0  # rotation by k * 90 degrees, k uniform in {0, 1, 2, 3}
    xint: float = 0  # integer translation
    xint_max: float = 0.125  # translation range, fraction of the image size (uniform in +-xint_max)
    # General geometric transforms.
    scale: float = 0  # isotropic scaling
    rotate: float = 0  # arbitrary rotation, before and after aniso, each with p_rot = 1 - sqrt(1 - p)
    aniso: float = 0  # anisotropic scaling (x by s, y by 1/s)
    xfrac: float = 0  # fractional translation
    scale_std: float = 0.2  # log2 std of isotropic scaling
    rotate_max: float = 1  # rotation range, 1 = full circle (uniform in +-pi*rotate_max)
    aniso_std: float = 0.2  # log2 std of anisotropic scaling
    xfrac_std: float = 0.125  # std of fractional translation, fraction of the image size
    # Colour transforms.
    brightness: float = 0  # additive brightness
    contrast: float = 0  # contrast scaling
    lumaflip: float = 0  # Householder reflection of the luma axis (fires, then flips with probability 1/2)
    hue: float = 0  # hue rotation about the luma axis
    saturation: float = 0  # saturation scaling
    brightness_std: float = 0.2  # std of the brightness offset
    contrast_std: float = 0.5  # log2 std of contrast
    hue_max: float = 1  # hue rotation range, 1 = full circle
    saturation_std: float = 1  # log2 std of saturation
    # Image-space filtering.
    imgfilter: float = 0  # per-band amplification of 4 frequency bands
    imgfilter_bands: tuple[float, ...] = (1, 1, 1, 1)  # multipliers per band, lowest first
    imgfilter_std: float = 1  # log2 std of each band's gain
    # Image-space corruptions.
    noise: float = 0  # additive Gaussian RGB noise
    cutout: float = 0  # a rectangle set to 0
    noise_std: float = 0.1  # the noise's std is |N(0, noise_std^2)|
    cutout_size: float = 0.5  # cutout side, fraction of the image size


GEOMETRY_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = (*GEOMETRY_OPS, *COLOR_OPS, "imgfilter", "noise", "cutout")  # the probability multipliers

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict.fromkeys(COLOR_OPS, 1)
_FILTER, _NOISE, _CUTOUT = dict(imgfilter=1), dict(noise=1), dict(cutout=1)
PRESETS: dict[str, dict[str, float]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": _FILTER,
    "noise": _NOISE,
    "cutout": _CUTOUT,
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}

_LUMA_AXIS = (1 / math.sqrt(3),) * 3  # colour-space direction of grey; hue rotates about it


def _filter_bank() -> np.ndarray:
    """[4, 43] symmetric FIR filters splitting an image into 4 octave bands (sym2 wavelet), lowest band first."""
    lo = np.asarray(SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2  # |H(z)|^2 / 2: zero-phase low-pass
    hi2 = np.convolve(hi, hi[::-1]) / 2  # |H(-z)|^2 / 2: zero-phase high-pass
    bank = np.eye(4, 1)
    for band in range(1, 4):
        # Move all lower bands down one octave (upsample by 2, low-pass), then add the new band's high-pass.
        stretched = np.zeros([4, bank.shape[1] * 2 - 1])
        stretched[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in stretched])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank


@dataclasses.dataclass
class AdaDraw:
    """One batch's random augmentation parameters; None where a group is off."""

    geometry: Tensor | None = None  # [N, 3, 3] output pixel -> input pixel, centred pixel coordinates
    color: Tensor | None = None  # [N, 4, 4] input RGB(1) -> output RGB(1)
    filter_gains: Tensor | None = None  # [N, 4] amplification of each frequency band
    noise: Tensor | None = None  # [N, C, H, W] additive noise, already scaled per sample
    cutout_size: Tensor | None = None  # [N, 2] (x, y) side as a fraction of the image, 0 when not fired
    cutout_center: Tensor | None = None  # [N, 2] (x, y) centre as a fraction of the image


@AUGMENTATIONS.register("ada")
class AdaptiveAugment(Augmentation):
    """ADA augmentation pipeline. `aug(images) -> images`, images [N, C, H, W] in [-1, 1], C in {1, 3} for colour ops.

    Args:
        preset: which ops are on: blit, geom, color, filter, noise, cutout, bg, bgc (default, the paper's
            choice), bgcf, bgcfn, bgcfnc; or None for none (then enable ops through overrides).
        p: augmentation probability; settable at any time (`aug.p = 0.3`), e.g. by `AdaptiveP`.
        **overrides: any `AdaOptions` field, e.g. `xflip=0` to disable x-flips or `scale_std=0.3`.
    """

    def __init__(self, preset: str | None = "bgc", p: float = 0.0, controller: AdaptiveP | None = None,
                 **overrides: float):
        """controller: adapts p during training (`observe`, `end_step`); None keeps p fixed."""
        super().__init__()
        self.controller = controller
        self._observed: list[Tensor] = []  # D's logits on reals in the current step
        if preset is not None and preset not in PRESETS:
            raise UserError(f"unknown ADA preset '{preset}'; choose one of: {', '.join(PRESETS)}")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(AdaOptions)})
        if unknown:
            raise UserError(f"unknown ADA option(s) {', '.join(unknown)}; see styleforge.augment.ada.AdaOptions")
        self.options = AdaOptions(**{**PRESETS.get(preset or "", {}), **overrides})
        if len(self.options.imgfilter_bands) != 4:
            raise UserError(f"ADA imgfilter_bands needs 4 values, got {self.options.imgfilter_bands}")
        self.p = p
        # Constants as non-persistent buffers: they follow .to(device) (no host-to-device copy per call)
        # and stay out of state_dict.
        f = torch.tensor(SYM6, dtype=torch.float32)
        self.register_buffer("geom_filter", f / f.sum(), persistent=False)
        self.register_buffer("band_filters", torch.as_tensor(_filter_bank(), dtype=torch.float32), persistent=False)
        self.register_buffer("band_power", torch.tensor([10.0, 1, 1, 1]) / 13, persistent=False)  # expected (1/f)
        self.register_buffer("luma_axis", torch.tensor([*_LUMA_AXIS, 0.0]), persistent=False)

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not value >= 0:  # also rejects NaN
            raise UserError(f"ADA augmentation probability p must be >= 0, got {value}")
        self._p = value

    def extra_repr(self) -> str:
        return f"p={self.p:g}, ops={[op for op in OPS if getattr(self.options, op)]}"

    # ------------------------------------------------------------------------------------------
    # Training: p adapts to how much D overfits (unless --aug-p fixes it).

    @classmethod
    def from_config(cls, cfg) -> AdaptiveAugment:
        controller = AdaptiveP(cfg.ada_target, cfg.ada_kimg, cfg.ada_interval) if cfg.aug_p is None else None
        return cls(**{"p": cfg.aug_p or 0.0, **cfg.aug_kwargs}, controller=controller)

    def observe(self, real_logits: Tensor) -> None:
        if self.controller is not None:
            self._observed.append(real_logits.detach())

    def end_step(self, batch: int, all_reduce_sum) -> None:
        """Once per step (one D step, whatever the chunking); every `interval` steps p moves."""
        if self.controller is None or not self._observed:
            return
        self.controller.accumulate(torch.cat(self._observed))
        self._observed.clear()
        if self.controller.ready:
            all_reduce_sum(self.controller.stats)
            self.p = self.controller.update(self.p, batch)

    def progress(self) -> dict[str, float]:
        values = {"Progress/augment": self.p}
        if self.controller is not None and self.controller.last_rt is not None:
            values["Progress/ada_rt"] = self.controller.last_rt
        return values

    def training_state(self) -> dict:
        return {"p": self.p, "controller": self.controller.state_dict() if self.controller is not None else None}

    def load_training_state(self, state: dict) -> None:
        self.p = state["p"]
        if self.controller is not None and state.get("controller") is not None:
            self.controller.load_state_dict(state["controller"])

    # ------------------------------------------------------------------------------------------
    # Drawing the parameters.

    def _fire(self, values: Tensor, prob: float, identity: float) -> Tensor:
        """Keeps each sample's value with probability `prob`, else the op's identity value."""
        fired = torch.rand(values.shape[:1], device=values.device) < prob
        return torch.where(fired.reshape(-1, *[1] * (values.ndim - 1)), values, torch.full_like(values, identity))

    def sample_geometry(self, batch_size: int, height: int, width: int, device: torch.device) -> Tensor | None:
        """[N, 3, 3] inverse transforms (output pixel -> input pixel, pixel units, origin at the image centre)."""
        o, p, N = self.options, self.p, batch_size
        if not any(getattr(o, op) for op in GEOMETRY_OPS):
            return None
        rand = lambda *shape: torch.rand([N, *shape], device=device)
        randn = lambda *shape: torch.randn([N, *shape], device=device)
        G = torch.eye(3, device=device).repeat(N, 1, 1)
        # Each op right-multiplies its inverse, so the ops apply to the image in the order listed.
        if o.xflip > 0:
            flip = self._fire(torch.floor(rand() * 2), o.xflip * p, 0)
            G = G @ M.scale2d(1 - 2 * flip, 1)
        if o.rotate90 > 0:
            k = self._fire(torch.floor(rand() * 4), o.rotate90 * p, 0)
            G = G @ M.rotate2d(math.pi / 2 * k)
        if o.xint > 0:
            t = self._fire((rand(2) * 2 - 1) * o.xint_max, o.xint * p, 0)  # [N, 2]
            G = G @ M.translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if o.scale > 0:
            s = self._fire(torch.exp2(randn() * o.scale_std), o.scale * p, 1)
            G = G @ M.scale2d(1 / s, 1 / s)
        # Rotation fires before and after the anisotropic scaling, so P(pre or post) = rotate * p.
        p_rot = 1 - math.sqrt(min(max(1 - o.rotate * p, 0), 1))
        if o.rotate > 0:
            theta = self._fire((rand() * 2 - 1) * math.pi * o.rotate_max, p_rot, 0)
            G = G @ M.rotate2d(theta)
        if o.aniso > 0:
            s = self._fire(torch.exp2(randn() * o.aniso_std), o.aniso * p, 1)
            G = G @ M.scale2d(1 / s, s)
        if o.rotate > 0:
            theta = self._fire((rand() * 2 - 1) * math.pi * o.rotate_max, p_rot, 0)
            G = G @ M.rotate2d(theta)
        if o.xfrac > 0:
            t = self._fire(randn(2) * o.xfrac_std, o.xfrac * p, 0)  # [N, 2]
            G = G @ M.translate2d(-t[:, 0] * width, -t[:, 1] * height)
        return G

    def sample_color(self, batch_size: int, num_channels: int, device: torch.device) -> Tensor | None:
        """[N, 4, 4] colour transforms acting on homogeneous RGB columns (r, g, b, 1)."""
        o, p, N = self.options, self.p, batch_size
        if not any(getattr(o, op) for op in COLOR_OPS):
            return None
        rand = lambda: torch.rand([N], device=device)
        randn = lambda: torch.randn([N], device=device)
        I = torch.eye(4, device=device)
        v = self.luma_axis.to(device)
        vv = torch.outer(v, v)  # projection onto the luma axis
        C = I.repeat(N, 1, 1)
        # Each op left-multiplies, so the ops apply to the colours in the order listed.
        if o.brightness > 0:
            b = self._fire(randn() * o.brightness_std, o.brightness * p, 0)
            C = M.translate3d(b, b, b) @ C
        if o.contrast > 0:
            c = self._fire(torch.exp2(randn() * o.contrast_std), o.contrast * p, 1)
            C = M.scale3d(c, c, c) @ C
        if o.lumaflip > 0:
            flip = self._fire(torch.floor(rand() * 2), o.lumaflip * p, 0)
            C = (I - 2 * vv * flip[:, None, None]) @ C  # Householder reflection
        if o.hue > 0 and num_channels > 1:
            theta = self._fire((rand() * 2 - 1) * math.pi * o.hue_max, o.hue * p, 0)
            C = M.rotate3d(_LUMA_AXIS, theta) @ C
        if o.saturation > 0 and num_channels > 1:
            s = self._fire(torch.exp2(randn() * o.saturation_std), o.saturation * p, 1)
            C = (vv + (I - vv) * s[:, None, None]) @ C
        return C

    def sample_filter_gains(self, batch_size: int, device: torch.device) -> Tensor | None:
        """[N, 4] per-band amplitudes, each band's boost renormalized to keep the expected (1/f) power."""
        o = self.options
        if o.imgfilter <= 0:
            return None
        expected_power = self.band_power.to(device)
        gains = torch.ones([batch_size, 4], device=device)
        for band, band_strength in enumerate(o.imgfilter_bands):
            g = torch.exp2(torch.randn([batch_size], device=device) * o.imgfilter_std)
            g = self._fire(g, o.imgfilter * self.p * band_strength, 1)
            t = torch.ones([batch_size, 4], device=device)
            t[:, band] = g
            gains = gains * t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt()
        return gains

    def sample(self, shape: Sequence[int], device: torch.device | str) -> AdaDraw:
        """Draws every parameter for a batch of images of `shape` [N, C, H, W] (in the official order)."""
        N, C, H, W = shape
        o, p, device = self.options, self.p, torch.device(device)
        draw = AdaDraw(
            geometry=self.sample_geometry(N, H, W, device),
            color=self.sample_color(N, C, device),
            filter_gains=self.sample_filter_gains(N, device),
        )
        if o.noise > 0:
            sigma = self._fire(torch.randn([N], device=device).abs() * o.noise_std, o.noise * p, 0)
            draw.noise = torch.randn([N, C, H, W], device=device) * sigma[:, None, None, None]
        if o.cutout > 0:
            draw.cutout_size = self._fire(torch.full([N, 2], o.cutout_size, device=device), o.cutout * p, 0)
            draw.cutout_center = torch.rand([N, 2], device=device)
        return draw

    # ------------------------------------------------------------------------------------------
    # Applying them.

    def apply_geometry(self, images: Tensor, G: Tensor) -> Tensor:
        """Resamples images [N, C, H, W] at input pixel = G @ output pixel (G [N, 3, 3], centred pixel coords)."""
        N, C, H, W = images.shape
        G = G.to(images.dtype)
        one = torch.ones([], device=G.device, dtype=G.dtype)  # reference for constant matrices
        filter_pad = self.geom_filter.numel() // 4  # support of the resampling filters at 1x, per side

        # Reflect-pad just enough to cover every sampled position plus the filters' support.
        cx, cy = (W - 1) / 2, (H - 1) / 2
        corners = M.matrix([-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1], like=one)  # [xy1, 4]
        reach = (G @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4] where the corners come from
        x0, y0, x1, y1 = torch.cat([-reach, reach]).amax(dim=1).tolist()  # extents from the centre; one sync
        pad = lambda extent, c, size: min(max(math.ceil(extent - c + filter_pad * 2), 0), size - 1)  # noqa: E731
        mx0, mx1, my0, my1 = pad(x0, cx, W), pad(x1, cx, W), pad(y0, cy, H), pad(y1, cy, H)  # reflect: pad < size
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        G = M.translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, like=one) @ G  # the centre moved

        # Upsample 2x; in the upsampled frame pixel centres sit at 2x + 0.5 (the filter's half-pixel shift).
        geom_filter = self.geom_filter.to(images.device)
        images = upsample2x(images, geom_filter)
        G = M.scale2d(2, 2, like=one) @ G @ M.scale2d(0.5, 0.5, like=one)
        G = M.translate2d(-0.5, -0.5, like=one) @ G @ M.translate2d(0.5, 0.5, like=one)

        # Sample an output of (size + filter support) at 2x, in the [-1, 1] coordinates of grid_sample.
        out_h, out_w = (H + filter_pad * 2) * 2, (W + filter_pad * 2) * 2
        to_unit = M.scale2d(2 / images.shape[3], 2 / images.shape[2], like=one)
        from_unit = M.scale2d(out_w / 2, out_h / 2, like=one)
        grid = F.affine_grid((to_unit @ G @ from_unit)[:, :2, :], [N, C, out_h, out_w], align_corners=False)
        images = grid_sample(images, grid)

        # Downsample 2x, cropping the support back off.
        return downsample2x(images, geom_filter, crop=filter_pad * 2 - (geom_filter.numel() - 2) // 2)

    def apply_color(self, images: Tensor, C: Tensor) -> Tensor:
        """Applies colour matrices C [N, 4, 4] to RGB images; for 1-channel images, the mean of their RGB rows."""
        N, num_channels, H, W = images.shape
        C = C.to(images.dtype)
        x = images.reshape(N, num_channels, H * W)
        if num_channels == 3:
            x = C[:, :3, :3] @ x + C[:, :3, 3:]
        else:  # grey: an input (l, l, l) maps to the mean of the output's RGB
            C = C[:, :3, :].mean(dim=1, keepdim=True)  # [N, 1, 4]
            x = x * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
        return x.reshape(N, num_channels, H, W)

    def apply_filter(self, images: Tensor, gains: Tensor) -> Tensor:
        """Per-sample separable filtering with the band filters weighted by gains [N, 4]."""
        N, C, H, W = images.shape
        taps = gains.to(images.dtype) @ self.band_filters.to(images.device, images.dtype)  # [N, 43]
        taps = taps.repeat_interleave(C, dim=0)  # [N * C, 43]: one filter per image and channel
        pad = taps.shape[1] // 2
        if min(H, W) <= pad:
            raise UserError(f"ADA's filter augmentation needs images larger than {pad} px, got {H}x{W}")
        x = F.pad(images.reshape(1, N * C, H, W), [pad] * 4, mode="reflect")
        x = F.conv2d(x, taps[:, None, None, :], groups=N * C)
        x = F.conv2d(x, taps[:, None, :, None], groups=N * C)
        return x.reshape(N, C, H, W)

    @staticmethod
    def apply_cutout(images: Tensor, size: Tensor, center: Tensor) -> Tensor:
        """Zeroes, per sample, the pixels whose centres lie within size/2 of center (both [N, 2], image fractions)."""
        N, C, H, W = images.shape
        x = (torch.arange(W, device=images.device) + 0.5) / W  # [W]
        y = (torch.arange(H, device=images.device) + 0.5) / H  # [H]
        outside_x = (x[None, :] - center[:, 0:1]).abs() >= size[:, 0:1] / 2  # [N, W]
        outside_y = (y[None, :] - center[:, 1:2]).abs() >= size[:, 1:2] / 2  # [N, H]
        keep = outside_x[:, None, None, :] | outside_y[:, None, :, None]  # [N, 1, H, W]
        return images * keep.to(images.dtype)

    def apply(self, images: Tensor, draw: AdaDraw) -> Tensor:
        """Applies drawn parameters to images [N, C, H, W]."""
        if draw.geometry is not None:
            images = self.apply_geometry(images, draw.geometry)
        if draw.color is not None:
            images = self.apply_color(images, draw.color)
        if draw.filter_gains is not None:
            images = self.apply_filter(images, draw.filter_gains)
        if draw.noise is not None:
            images = images + draw.noise.to(images.dtype)
        if draw.cutout_size is not None:
            images = self.apply_cutout(images, draw.cutout_size, draw.cutout_center)
        return images

    def forward(self, images: Tensor) -> Tensor:
        if self.p == 0:
            return images  # exact identity, no resampling
        if images.ndim != 4:
            raise ValueError(f"ADA expects images [N, C, H, W], got shape {list(images.shape)}")
        if images.shape[1] not in (1, 3) and any(getattr(self.options, op) for op in COLOR_OPS):
            raise UserError(f"ADA's colour augmentations need 1 or 3 channels, got {images.shape[1]}")
        # Resample in at least float32: half precision would visibly blur and quantize the images.
        x = images.to(torch.promote_types(images.dtype, torch.float32))
        return self.apply(x, self.sample(x.shape, x.device)).to(images.dtype)
