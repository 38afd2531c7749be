"""The on-disk data set layout shared with NVlabs' stylegan2-ada-pytorch.

A data set is an uncompressed ZIP (or a folder) of PNGs named `00000/img00000000.png`, plus
`dataset.json` holding `{"labels": [["00000/img00000000.png", class_index], ...]}` or
`{"labels": null}`. The official reader ignores other keys, so we add our own ("class_names",
"source", "resize_filter", ...) next to "labels".
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from styleforge.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
METADATA_NAME = "dataset.json"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def is_hidden(name: str) -> bool:
    """Dot-files and macOS archive debris (`._x.jpg`, `__MACOSX/`) are never data."""
    parts = name.replace("\\", "/").split("/")
    return any((part.startswith(".") and part not in (".", "..")) or part == "__MACOSX" for part in parts)


def is_safe_member(name: str) -> bool:
    """False for archive member names that could point outside the archive's tree."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    return ".." not in name.replace("\\", "/").split("/")


def normalize_name(name: str) -> str:
    """The key under which dataset.json labels an image: a posix path relative to the data set root."""
    return posixpath.normpath(name.replace("\\", "/"))


def archive_name(index: int) -> str:
    """The official naming, 1000 images per folder: index 1234 -> `00001/img00001234.png`."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def list_image_names(names: list[str]) -> list[str]:
    """The image members among `names` (posix paths relative to the data set root), sorted."""
    return sorted(n for n in names if is_image_name(n) and not is_hidden(n) and not n.endswith("/"))


@dataclass
class Metadata:
    """What a `dataset.json` says. `labels` maps image path -> class index (int) or label vector."""

    labels: dict[str, Any] | None = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_class_indices(self) -> bool:
        return bool(self.labels) and all(isinstance(v, int) for v in self.labels.values())


def parse_metadata(data: bytes, where: str) -> Metadata:
    """Parses a dataset.json; `where` names the file in error messages."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object with a 'labels' key")
    rows = obj.get("labels")
    labels = None
    if rows is not None:
        if not isinstance(rows, list):
            raise UserError(f"{where}: 'labels' must be a list of [path, label] pairs or null")
        labels = {}
        for row in rows:
            if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str) and _is_label(row[1])):
                raise UserError(f"{where}: bad entry {row!r} in 'labels'; expected [path, class index or list]")
            labels[normalize_name(row[0])] = row[1]
        kinds = {isinstance(v, int) for v in labels.values()}
        if len(kinds) > 1:
            raise UserError(f"{where}: 'labels' mixes class indices and label vectors")
    class_names = obj.get("class_names")
    if class_names is not None and not (isinstance(class_names, list) and all(isinstance(c, str) for c in class_names)):
        raise UserError(f"{where}: 'class_names' must be a list of strings")
    extra = {k: v for k, v in obj.items() if k not in ("labels", "class_names")}
    return Metadata(labels, class_names, extra)


def _is_label(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
