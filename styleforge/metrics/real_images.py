"""Reading the real images of a data set for the metrics: a ZIP or folder of images plus an optional
`dataset.json` (`{"labels": [[relative name, class index or label vector], ...]}`), the layout of
stylegan2-ada-pytorch's dataset tool.

Everything the metrics need from a data set goes through the three functions below, so that the reader
can be swapped for `styleforge.data.dataset.ImageDataset` without touching the metrics.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from styleforge.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class _ImageSource:
    """The sorted image names of a ZIP or folder and a way to read each."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            self.zip = None
            self.names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        elif zipfile.is_zipfile(self.path):
            self.zip = zipfile.ZipFile(self.path)
            self.names = sorted(n for n in self.zip.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        else:
            raise UserError(f"data set {self.path} is neither a folder nor a ZIP of images")
        if not self.names:
            raise UserError(f"data set {self.path} contains no images ({', '.join(IMAGE_EXTENSIONS)})")

    def read_bytes(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        return (self.path / name).read_bytes()

    def read_image(self, name: str) -> np.ndarray:
        """uint8 [C, H, W]: 1 channel for grayscale, else 3."""
        with Image.open(io.BytesIO(self.read_bytes(name))) as img:
            img = img.convert("L") if img.mode in ("L", "I;16", "I", "1") else img.convert("RGB")
            array = np.asarray(img)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def labels(self) -> np.ndarray | None:
        meta = "dataset.json"
        if self.zip is not None:
            if meta not in self.zip.namelist():
                return None
            text = self.zip.read(meta)
        elif (self.path / meta).is_file():
            text = (self.path / meta).read_bytes()
        else:
            return None
        entries = json.loads(text).get("labels")
        if entries is None:
            return None
        by_name = dict(entries)
        try:
            values = [by_name[name] for name in self.names]
        except KeyError as e:
            raise UserError(f"{self.path}: dataset.json has no label for image {e}") from None
        values = np.asarray(values)
        if values.ndim == 1:  # class indices -> one-hot
            onehot = np.zeros([len(values), int(values.max()) + 1], dtype=np.float32)
            onehot[np.arange(len(values)), values.astype(np.int64)] = 1
            return onehot
        return values.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _source(path: str, fingerprint: str) -> _ImageSource:
    return _ImageSource(path)


def _open(path: str | os.PathLike) -> _ImageSource:
    return _source(str(Path(path).resolve()), dataset_fingerprint(path))


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """Changes when the data set changes: path, size and modification time of the ZIP, or of every file
    of the folder. Used to key cached statistics of real images."""
    path = Path(path).resolve()
    if not path.exists():
        raise UserError(f"data set {path} does not exist")
    digest = hashlib.sha256(str(path).encode())
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        st = p.stat()
        digest.update(f"{p.relative_to(path.parent)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def count_real_images(path: str | os.PathLike) -> int:
    return len(_open(path).names)


def real_labels(path: str | os.PathLike) -> np.ndarray | None:
    """Float labels [N, c_dim] (one-hot for class indices) in image order, or None without dataset.json labels."""
    return _open(path).labels()


def iterate_real_images(path: str | os.PathLike, batch_size: int, max_items: int | None = None,
                        rank: int = 0, world_size: int = 1) -> Iterator[np.ndarray]:
    """Batches of uint8 images [B, C, H, W] of the first `max_items` images in sorted order. Rank r of
    `world_size` takes items i * world_size + r (wrapping around so that every rank reads the same count;
    gathering the ranks' batches interleaved restores the order)."""
    source = _open(path)
    num_items = len(source.names) if max_items is None else min(max_items, len(source.names))
    per_rank = -(-num_items // world_size)
    indices = [(i * world_size + rank) % num_items for i in range(per_rank)]
    for start in range(0, per_rank, batch_size):
        images = [source.read_image(source.names[i]) for i in indices[start:start + batch_size]]
        shapes = {img.shape for img in images}
        if len(shapes) > 1:
            raise UserError(f"data set {source.path}: images differ in shape ({sorted(shapes)})")
        yield np.stack(images)
