"""Inputs of the dataset tool: a folder of images, a ZIP of images, an LSUN-style LMDB, or a built-in set.

Each source lists its images by name, sorted, so that a data set built twice is identical, and
reads one image at a time. A problem with one image raises `BadImage`; the tool then skips that
image or stops, as the user chose.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import PIL.Image

from styleforge.data.layout import METADATA_NAME, Metadata, is_safe_member, list_image_names, parse_metadata
from styleforge.errors import UserError

BUILTIN_PREFIX = "builtin:"


class BadImage(Exception):
    """One input image cannot be used (the message says why, without naming the image)."""


def decode_image(data: bytes) -> PIL.Image.Image:
    """Decodes fully, so that truncated files fail here and not later."""
    try:
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise BadImage(f"cannot decode image ({e})") from None
    return img


class Source:
    """A sorted list of named input images plus the labels the source carries, if any."""

    kind = "source"
    allows_upscale = False  # only built-in sets, whose images are known to be tiny
    default_resolution: int | None = None

    def __init__(self, location: str):
        self.location = location
        self.names: list[str] = []
        self.metadata: Metadata | None = None
        self.metadata_where: str | None = None  # the file the metadata came from, for messages

    def describe(self, name: str) -> str:
        """How messages name one image of this source."""
        return f"{self.location}/{name}"

    def read(self, name: str) -> PIL.Image.Image:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FolderSource(Source):
    """All images below a folder (recursively); labels from its dataset.json, if present."""

    kind = "folder"

    def __init__(self, root: Path):
        super().__init__(str(root))
        self.root = root
        found = []
        for folder, _dirs, files in os.walk(root):
            rel = Path(folder).relative_to(root).as_posix()
            found += [f if rel == "." else f"{rel}/{f}" for f in files]
        self.names = list_image_names(found)
        meta_path = root / METADATA_NAME
        if meta_path.is_file():
            self.metadata_where = str(meta_path)
            self.metadata = parse_metadata(meta_path.read_bytes(), self.metadata_where)

    def read(self, name: str) -> PIL.Image.Image:
        try:
            data = (self.root / name).read_bytes()
        except OSError as e:
            raise BadImage(f"cannot read file ({e.strerror or e})") from None
        return decode_image(data)


class ZipSource(Source):
    """All images in a ZIP archive; labels from its top-level dataset.json, if present."""

    kind = "zip"

    def __init__(self, path: Path):
        super().__init__(str(path))
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise UserError(f"{path}: cannot open ZIP archive ({e})") from None
        self.names = list_image_names(self.zip.namelist())
        if METADATA_NAME in self.zip.namelist():
            self.metadata_where = f"{path}:{METADATA_NAME}"
            self.metadata = parse_metadata(self.zip.read(METADATA_NAME), self.metadata_where)

    def describe(self, name: str) -> str:
        return f"{self.location}:{name}"

    def read(self, name: str) -> PIL.Image.Image:
        if not is_safe_member(name):
            raise BadImage("archive member has an absolute path or '..' in it; refusing to use it")
        try:
            data = self.zip.read(name)
        except (OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
            raise BadImage(f"cannot read archive member ({e})") from None
        return decode_image(data)

    def close(self) -> None:
        self.zip.close()


class LmdbSource(Source):
    """An LSUN-style LMDB: one encoded image per value, in key order; no labels."""

    kind = "lmdb"

    def __init__(self, path: Path):
        super().__init__(str(path))
        try:
            import lmdb
        except ImportError:
            raise UserError(
                f"{path} is an LMDB database; reading it needs the lmdb package: "
                "pip install lmdb (or pip install 'styleforge[lmdb]')"
            ) from None
        try:
            self.env = lmdb.open(str(path), readonly=True, lock=False, readahead=False)
        except lmdb.Error as e:
            raise UserError(f"{path}: cannot open LMDB database ({e})") from None
        with self.env.begin() as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))  # key order: sorted bytes
        self.keys = {k.decode("utf-8", errors="backslashreplace"): k for k in keys}
        self.names = list(self.keys)

    def describe(self, name: str) -> str:
        return f"{self.location} key {name}"

    def read(self, name: str) -> PIL.Image.Image:
        with self.env.begin() as txn:
            data = txn.get(self.keys[name])
        return decode_image(bytes(data))

    def close(self) -> None:
        self.env.close()
