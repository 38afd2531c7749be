"""Crop, resize and channel conversion of one input image for the dataset tool (Pillow).

The choices follow NVlabs' dataset tool: `center-crop` takes the largest centred square,
`center-crop-wide` a centred wide (default 4:3) region placed on a black square canvas (LSUN cars),
and the resize filter is `lanczos` or `box` (box reproduces the published FFHQ-256 FIDs).
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from styleforge.data.sources import BadImage

TRANSFORMS = ("none", "center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": PIL.Image.Resampling.BOX, "lanczos": PIL.Image.Resampling.LANCZOS}
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")


def image_channels(img: PIL.Image.Image) -> int:
    """1 for grayscale images (alpha ignored), 3 for everything else (RGB, RGBA, palette, CMYK...)."""
    return 1 if img.mode.split(";")[0] in _GRAY_MODES else 3


def convert_channels(img: PIL.Image.Image, channels: int) -> PIL.Image.Image:
    """To 8-bit 'L' (channels 1) or 'RGB' (channels 3); alpha is dropped."""
    if img.mode.startswith("I"):
        # 16-bit grayscale: Pillow's convert() clips to 255 instead of scaling.
        array = np.asarray(img, dtype=np.float64) / 257
        img = PIL.Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), "L")
    mode = "L" if channels == 1 else "RGB"
    return img if img.mode == mode else img.convert(mode)


def apply_transform(
    img: PIL.Image.Image,
    transform: str,
    resolution: int | None,
    resize_filter: str = "lanczos",
    allow_upscale: bool = False,
    wide_aspect: float = 4 / 3,
) -> PIL.Image.Image:
    """Crops and resizes to a square `resolution` x `resolution` image (None: keep the cropped size).

    Raises BadImage when the image is not square (transform none) or too small (unless upscaling is allowed).
    """
    w, h = img.size
    if transform == "center-crop":
        side = min(w, h)
        _check_size(w, h, side, resolution, allow_upscale)
        img = img.crop(_centered_box(w, h, side, side))
        return _resize(img, resolution, resolution, resize_filter)
    if transform == "center-crop-wide":
        crop_w = min(w, round(h * wide_aspect))
        crop_h = min(h, round(crop_w / wide_aspect))
        _check_size(w, h, crop_w, resolution, allow_upscale)
        img = img.crop(_centered_box(w, h, crop_w, crop_h))
        side = resolution or crop_w
        img = _resize(img, side, round(side / wide_aspect), resize_filter)
        canvas = PIL.Image.new(img.mode, (side, side))  # black
        canvas.paste(img, (0, (side - img.size[1]) // 2))
        return canvas
    if transform != "none":
        raise ValueError(f"unknown transform {transform!r}")
    if w != h:
        raise BadImage(f"is {w}x{h}, not square; use --transform center-crop or center-crop-wide")
    _check_size(w, h, w, resolution, allow_upscale)
    return _resize(img, resolution, resolution, resize_filter)


def _check_size(w: int, h: int, usable_width: int, resolution: int | None, allow_upscale: bool) -> None:
    if resolution is not None and usable_width < resolution and not allow_upscale:
        raise BadImage(f"is {w}x{h}, too small for resolution {resolution}; refusing to upscale")


def _centered_box(w: int, h: int, crop_w: int, crop_h: int) -> tuple[int, int, int, int]:
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def _resize(img: PIL.Image.Image, width: int | None, height: int | None, resize_filter: str) -> PIL.Image.Image:
    if width is None or img.size == (width, height):
        return img
    return img.resize((width, height), RESIZE_FILTERS[resize_filter])
