"""The dataset tool as a library function: `build_dataset(source, dest, ...) -> DatasetSummary`.

Reads a source (folder, ZIP, LMDB, builtin:digits), crops/resizes every image to one square
power-of-two resolution with one channel count, and writes the official layout (see layout.py)
atomically. Bad images stop the run with a UserError naming the file, or are skipped and listed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
from tqdm import tqdm

from styleforge.data.builtin import BUILTIN_SOURCES
from styleforge.data.layout import IMAGE_EXTENSIONS, METADATA_NAME, archive_name, normalize_name
from styleforge.data.output import AtomicOutput
from styleforge.data.sources import BUILTIN_PREFIX, BadImage, FolderSource, LmdbSource, Source, ZipSource
from styleforge.data.transforms import (
    RESIZE_FILTERS,
    TRANSFORMS,
    apply_transform,
    convert_channels,
    image_channels,
)
from styleforge.errors import UserError

LABEL_MODES = ("none", "json", "folders")
ON_ERROR = ("skip", "fail")


@dataclass
class DatasetSummary:
    dest: Path
    num_images: int
    resolution: int
    channels: int
    label_dim: int  # number of classes; 0 without labels
    class_names: list[str] | None
    skipped: list[str] = field(default_factory=list)  # "<image>: <reason>", one per skipped image
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        labels = f"{self.label_dim} classes" if self.label_dim else "none"
        return (f"wrote {self.num_images} images to {self.dest} ({self.resolution}x{self.resolution}, "
                f"{self.channels} channel{'s' if self.channels > 1 else ''}, labels: {labels}), "
                f"skipped {len(self.skipped)}")


@dataclass
class _Labeling:
    """How each input image gets its class index."""

    mode: str
    classes: dict[str, int]  # json: image name -> class; folders: folder name -> class
    class_names: list[str] | None
    label_dim: int
    where: str = ""

    def label_of(self, name: str) -> int | None:
        if self.mode == "none":
            return None
        if self.mode == "folders":
            if "/" not in name:
                raise BadImage("is not inside a class folder (needed by --labels folders)")
            return self.classes[name.split("/")[0]]
        label = self.classes.get(normalize_name(name))
        if label is None:
            raise BadImage(f"has no label in {self.where}")
        return label


@dataclass
class _Shaper:
    """Brings every input image to the data set's one resolution and channel count.

    Unset (None) resolution or channels are taken from the first usable image; later images must agree.
    """

    requested_resolution: int | None
    requested_channels: int | None
    transform: str
    resize_filter: str
    wide_aspect: float
    allow_upscale: bool
    resolution: int | None = None
    channels: int | None = None
    first: str = ""  # the image that set the data set's shape, for messages

    def shape(self, img: PIL.Image.Image, description: str) -> PIL.Image.Image:
        channels = self.requested_channels or image_channels(img)
        if self.channels is not None and channels != self.channels:
            raise BadImage(f"has {channels} channel(s) but the data set has {self.channels} (like {self.first}); "
                           "pass --channels 1 or 3 to convert all images")
        img = convert_channels(img, channels)
        img = apply_transform(img, self.transform, self.requested_resolution, self.resize_filter,
                              self.allow_upscale, self.wide_aspect)
        side = img.size[0]
        if self.resolution is None and (side < 4 or side & (side - 1)):
            raise BadImage(f"is {side}x{side}; the resolution must be a power of two, pass --resolution")
        if self.resolution is not None and side != self.resolution:
            raise BadImage(f"is {side}x{side}, but the data set's images are {self.resolution}x{self.resolution} "
                           f"(like {self.first}); pass --resolution to resize all images")
        if not self.first:
            self.resolution, self.channels, self.first = side, channels, description
        return img



def open_source(spec: str | Path) -> Source:
    """Opens `builtin:NAME`, an LMDB folder (holding data.mdb), a folder of images or a ZIP."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_SOURCES:
            known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_SOURCES)
            raise UserError(f"unknown built-in data set {text!r}; known: {known}")
        return BUILTIN_SOURCES[name]()
    path = Path(spec)
    if path.is_dir():
        return LmdbSource(path) if (path / "data.mdb").is_file() else FolderSource(path)
    if path.is_file():
        if zipfile.is_zipfile(path):
            return ZipSource(path)
        raise UserError(f"{path}: not a ZIP archive; --source takes a folder, a ZIP, an LMDB folder or builtin:digits")
    raise UserError(f"{path}: no such file or folder")


def build_dataset(
    source: str | Path,
    dest: str | Path,
    *,
    resolution: int | None = None,
    transform: str = "none",
    resize_filter: str = "lanczos",
    channels: int | None = None,
    labels: str | None = None,
    max_images: int | None = None,
    on_error: str = "fail",
    wide_aspect: float = 4 / 3,
    compress_level: int = 0,
    progress: bool = False,
    overwrite: bool = False,
) -> DatasetSummary:
    """Converts `source` into a data set at `dest` (`.zip` or folder) and returns what was written.

    resolution: output side (power of two); None keeps the source size (builtin:digits: 32).
    channels: 1 or 3; None keeps the sources' own count, which must then agree.
    labels: "none", "json" (the source's dataset.json or built-in labels), "folders" (class per
        top-level sub-folder, sorted by name); None: json when the source has labels, else none.
    max_images: stop after writing this many. on_error: "fail" (UserError) or "skip" bad images.
    compress_level: PNG zlib level; 0 (the official tool's choice) makes the fastest-decoding files.
    overwrite: replace an existing ZIP or data set folder at `dest` (otherwise refused before any work).
    """
    _check_options(resolution, transform, resize_filter, channels, labels, max_images, on_error, compress_level)
    warnings: list[str] = []
    skipped: list[str] = []
    rows: list[list] = []
    output = AtomicOutput(dest, overwrite)  # checks the destination before any work
    with open_source(source) as src, output as out:
        if not src.names:
            raise UserError(f"{src.location}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
        labeling = _resolve_labels(src, labels, on_error, warnings)
        shaper = _Shaper(resolution or src.default_resolution, channels, transform, resize_filter, wide_aspect,
                         src.allows_upscale)
        with tqdm(total=len(src.names), disable=not progress, unit="img") as bar:
            for name in src.names:
                if max_images is not None and len(rows) >= max_images:
                    break
                bar.update()
                try:
                    img = src.read(name)
                    label = labeling.label_of(name)
                    img = shaper.shape(img, src.describe(name))
                except BadImage as e:
                    message = f"{src.describe(name)}: {e}"
                    if on_error == "fail":
                        raise UserError(f"{message} (--on-error skip skips bad images)") from None
                    skipped.append(message)
                    bar.set_postfix(skipped=len(skipped))
                    continue
                path = archive_name(len(rows))
                out.write(path, _encode_png(img, compress_level))
                rows.append([path, label])
            if not rows:
                raise UserError(f"{src.location}: no usable images, all {len(skipped)} skipped; first: {skipped[0]}")
            metadata = {
                "labels": rows if labeling.mode != "none" else None,
                "class_names": labeling.class_names,
                "source": src.location,
                "transform": transform,
                "resize_filter": resize_filter,
                "resolution": shaper.resolution,
                "channels": shaper.channels,
                "tool": "styleforge dataset",
            }
            out.write(METADATA_NAME, json.dumps(metadata).encode())
    return DatasetSummary(Path(dest), len(rows), shaper.resolution, shaper.channels, labeling.label_dim,
                          labeling.class_names, skipped, warnings)


def _check_options(resolution, transform, resize_filter, channels, labels, max_images, on_error, compress_level):
    if resolution is not None and (resolution < 4 or resolution & (resolution - 1)):
        raise UserError(f"--resolution {resolution}: must be a power of two >= 4")
    choices_by_option = {
        "--transform": (transform, TRANSFORMS),
        "--resize-filter": (resize_filter, tuple(RESIZE_FILTERS)),
        "--channels": (channels, (None, 1, 3)),
        "--labels": (labels, (None, *LABEL_MODES)),
        "--on-error": (on_error, ON_ERROR),
    }
    for option, (value, choices) in choices_by_option.items():
        if value not in choices:
            raise UserError(f"{option} {value}: must be one of {', '.join(str(c) for c in choices if c is not None)}")
    if max_images is not None and max_images < 1:
        raise UserError(f"--max-images {max_images}: must be at least 1")
    if not 0 <= compress_level <= 9:
        raise UserError(f"--compress-level {compress_level}: must be 0..9")


def _resolve_labels(src: Source, mode: str | None, on_error: str, warnings: list[str]) -> _Labeling:
    meta = src.metadata
    if mode is None:
        mode = "json" if meta is not None and meta.labels is not None else "none"
    if mode == "none":
        return _Labeling("none", {}, None, 0)
    if mode == "folders":
        if src.kind not in ("folder", "zip"):
            raise UserError(f"{src.location}: --labels folders needs a folder or ZIP source")
        class_names = sorted({name.split("/")[0] for name in src.names if "/" in name})
        if not class_names:
            raise UserError(f"{src.location}: --labels folders needs the images in sub-folders, one per class")
        return _Labeling("folders", {c: i for i, c in enumerate(class_names)}, class_names, len(class_names))

    if meta is None or meta.labels is None:
        raise UserError(f"{src.location}: --labels json needs a {METADATA_NAME} with labels in the source")
    where = src.metadata_where
    if not meta.has_class_indices:
        raise UserError(f"{where}: labels must be class indices (non-negative integers)")
    label_dim = len(meta.class_names) if meta.class_names else max(meta.labels.values()) + 1
    if max(meta.labels.values()) >= label_dim:
        raise UserError(f"{where}: class index {max(meta.labels.values())} but only {label_dim} class_names")
    missing = sorted(set(meta.labels) - {normalize_name(n) for n in src.names})
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        message = (f"{where} labels {len(missing)} image(s) that are not in {src.location}: "
                   f"{', '.join(missing[:5])}{more}")
        if on_error == "fail":
            raise UserError(message)
        warnings.append(message)
    return _Labeling("json", meta.labels, meta.class_names, label_dim, where)


def _encode_png(img: PIL.Image.Image, compress_level: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="png", compress_level=compress_level)
    return buffer.getvalue()
