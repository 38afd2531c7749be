"""`ImageDataset`: the images of a data set ZIP or folder (ours, the official tool's, or any folder of
same-size square images) as uint8 arrays [C, H, W] with float32 one-hot labels."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from styleforge.data.layout import METADATA_NAME, Metadata, list_image_names, normalize_name, parse_metadata
from styleforge.data.sources import BadImage, decode_image
from styleforge.data.transforms import convert_channels, image_channels
from styleforge.errors import UserError


class ImageDataset(torch.utils.data.Dataset):
    """Items are `(image uint8 [C, H, W], label float32 [label_dim])`; label_dim is 0 without labels.

    xflip: doubles the set; index N + i is image i mirrored left-right (deterministic, not random).
    use_labels: False ignores dataset.json labels. max_size: keep a fixed random subset of this many
    images (seeded, in file order), applied before xflip.
    The ZIP is opened lazily by each process, so the data set pickles into DataLoader workers.
    """

    def __init__(self, path: str | Path, xflip: bool = False, use_labels: bool = True, max_size: int | None = None,
                 random_seed: int = 0):
        self.path = Path(path)
        self.xflip = xflip
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self._is_zip = False
            all_names = [(Path(folder) / f).relative_to(self.path).as_posix()
                         for folder, _dirs, files in os.walk(self.path) for f in files]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._is_zip = True
            all_names = self._zipfile().namelist()
        else:
            raise UserError(f"{self.path}: not a data set (expected a ZIP or a folder of images)")
        self._image_names = list_image_names(all_names)
        if not self._image_names:
            raise UserError(f"{self.path}: no images found")
        metadata = parse_metadata(self._read(METADATA_NAME), self._where(METADATA_NAME)) \
            if METADATA_NAME in all_names else Metadata()
        self._label_dim = 0
        self._labels = self._load_labels(metadata) if use_labels else np.zeros([len(self._image_names), 0], np.float32)
        self.class_names = metadata.class_names if self.has_labels else None

        self._raw_idx = np.arange(len(self._image_names))
        if max_size is not None and max_size < len(self._raw_idx):
            chosen = np.random.RandomState(random_seed).permutation(len(self._raw_idx))[:max_size]
            self._raw_idx = np.sort(chosen)
        first = self._load_raw(self._raw_idx[0], channels=None)
        self.image_shape = list(first.shape)  # [C, H, W]
        if self.image_shape[1] != self.image_shape[2]:
            raise UserError(f"{self._where(self._image_names[self._raw_idx[0]])}: images must be square, "
                            f"got {self.image_shape[2]}x{self.image_shape[1]}")

    # --- properties ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.stem if self._is_zip else self.path.name

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def resolution(self) -> int:
        return self.image_shape[1]

    @property
    def label_dim(self) -> int:
        return self._label_dim

    @property
    def has_labels(self) -> bool:
        return self._label_dim > 0

    # --- items --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._raw_idx) * (2 if self.xflip else 1)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        raw, flip = self._resolve(idx)
        image = self._load_raw(raw, channels=self.num_channels)  # [C, H, W]
        if list(image.shape) != self.image_shape:
            raise UserError(f"{self._where(self._image_names[raw])}: image is {image.shape[2]}x{image.shape[1]}, "
                            f"the data set's first image is {self.resolution}x{self.resolution}")
        if flip:
            image = image[:, :, ::-1]
        return np.ascontiguousarray(image), self._label(raw)

    def get_label(self, idx: int) -> np.ndarray:
        """The label of item `idx` without decoding its image (for sampling conditioning labels)."""
        return self._label(self._resolve(idx)[0])

    def _resolve(self, idx: int) -> tuple[int, bool]:
        """Item index -> (index into the image list, mirrored?)."""
        n = len(self._raw_idx)
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for a data set of {len(self)} items")
        return int(self._raw_idx[idx % n]), idx >= n

    def _label(self, raw: int) -> np.ndarray:
        label = self._labels[raw]
        if self._labels.dtype == np.int64:  # class index -> one-hot
            onehot = np.zeros([self._label_dim], np.float32)
            onehot[label] = 1
            return onehot
        return label.copy()

    # --- reading ------------------------------------------------------------------------------

    def _load_labels(self, metadata: Metadata) -> np.ndarray:
        """Class indices int64 [N], or label vectors float32 [N, D]; sets label_dim."""
        if not metadata.labels:
            return np.zeros([len(self._image_names), 0], np.float32)
        where = self._where(METADATA_NAME)
        try:
            rows = [metadata.labels[normalize_name(name)] for name in self._image_names]
        except KeyError as e:
            raise UserError(f"{where}: no label for image {e.args[0]}") from None
        if metadata.has_class_indices:
            labels = np.array(rows, np.int64)
            self._label_dim = len(metadata.class_names) if metadata.class_names else int(labels.max()) + 1
            if labels.max() >= self._label_dim:
                raise UserError(f"{where}: class index {labels.max()} but only {self._label_dim} class_names")
            return labels
        if len({len(r) for r in rows}) != 1:
            raise UserError(f"{where}: label vectors of different lengths")
        labels = np.array(rows, np.float32)
        self._label_dim = labels.shape[1]
        return labels

    def _load_raw(self, raw: int, channels: int | None) -> np.ndarray:
        """Decodes image `raw` to uint8 [C, H, W], converted to `channels` (None: as stored)."""
        name = self._image_names[raw]
        try:
            img = decode_image(self._read(name))
        except BadImage as e:
            raise UserError(f"{self._where(name)}: {e}") from None
        img = convert_channels(img, channels or image_channels(img))
        array = np.array(img)  # a writable copy (torch refuses read-only buffers)
        return array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)

    def _read(self, name: str) -> bytes:
        if self._is_zip:
            return self._zipfile().read(name)
        return (self.path / name).read_bytes()

    def _zipfile(self) -> zipfile.ZipFile:
        # A ZipFile shares one file position: each process (DataLoader worker) needs its own.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _where(self, name: str) -> str:
        return f"{self.path}:{name}" if self._is_zip else str(self.path / name)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._zip = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _zip_pid=None)


def check_compatible(dataset: ImageDataset, resolution: int, channels: int, c_dim: int) -> None:
    """Raises UserError, naming the data set and both values, when it does not fit a model config."""
    checks = [("resolution", dataset.resolution, resolution), ("channels", dataset.num_channels, channels),
              ("label dimension (c_dim)", dataset.label_dim, c_dim)]
    for what, have, want in checks:
        if have != want:
            raise UserError(f"data set {dataset.path} has {what} {have}, but the model config has {want}")
