"""Built-in data sets that need no download: `builtin:digits` (scikit-learn's 8x8 handwritten digits)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import PIL.Image

from styleforge.data.layout import Metadata
from styleforge.data.sources import Source
from styleforge.errors import UserError


class DigitsSource(Source):
    """The 1797 8x8 grayscale digits of scikit-learn's `load_digits`, labelled 0-9.

    Pixel values 0..16 are scaled to 0..255. The images are tiny, so upscaling is allowed, and the
    resolution defaults to 32.
    """

    kind = "builtin"
    allows_upscale = True
    default_resolution = 32

    def __init__(self):
        super().__init__("builtin:digits")
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise UserError(
                "builtin:digits needs scikit-learn: pip install scikit-learn (or pip install 'styleforge[digits]')"
            ) from None
        digits = load_digits()
        self.images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # [1797, 8, 8]
        self.names = [f"{i:04d}" for i in range(len(self.images))]
        labels = {name: int(t) for name, t in zip(self.names, digits.target)}
        self.metadata = Metadata(labels=labels, class_names=[str(d) for d in range(10)])
        self.metadata_where = "the built-in digit labels"

    def describe(self, name: str) -> str:
        return f"{self.location} image {name}"

    def read(self, name: str) -> PIL.Image.Image:
        return PIL.Image.fromarray(self.images[int(name)], "L")


BUILTIN_SOURCES: dict[str, Callable[[], Source]] = {"digits": DigitsSource}
