"""The real images of a data set for the metrics, read through `styleforge.data.dataset.ImageDataset`
(a ZIP or folder in the layout of stylegan2-ada-pytorch's dataset tool), plus a fingerprint that keys the
cache of their statistics."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from styleforge.data.dataset import ImageDataset
from styleforge.errors import UserError


@functools.lru_cache(maxsize=8)
def _dataset(path: str, fingerprint: str) -> ImageDataset:
    return ImageDataset(path, xflip=False, use_labels=True)


def _open(path: str | os.PathLike) -> ImageDataset:
    return _dataset(str(Path(path).resolve()), dataset_fingerprint(path))


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
    return len(_open(path))


def real_labels(path: str | os.PathLike) -> np.ndarray | None:
    """Float labels [N, c_dim] (one-hot for class indices) in image order, or None without dataset.json labels."""
    dataset = _open(path)
    if not dataset.has_labels:
        return None
    return np.stack([dataset.get_label(i) for i in range(len(dataset))]).astype(np.float32)


def iterate_real_images(path: str | os.PathLike, batch_size: int, max_items: int | None = None,
                        rank: int = 0, world_size: int = 1) -> Iterator[np.ndarray]:
    """Batches of uint8 images [B, C, H, W] of the first `max_items` images in sorted order. Rank r of
    `world_size` takes items i * world_size + r (wrapping around so that every rank reads the same count;
    gathering the ranks' batches interleaved restores the order)."""
    dataset = _open(path)
    num_items = len(dataset) if max_items is None else min(max_items, len(dataset))
    per_rank = -(-num_items // world_size)
    indices = [(i * world_size + rank) % num_items for i in range(per_rank)]
    for start in range(0, per_rank, batch_size):
        yield np.stack([dataset[i][0] for i in indices[start:start + batch_size]])
