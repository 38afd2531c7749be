"""Damaging safetensors files the ways users' files get damaged (a bad disk, a hex editor, an older writer)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def read_header(path: Path) -> tuple[int, dict]:
    """(where the tensor data starts, the parsed JSON header)."""
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return 8 + length, json.loads(data[8:8 + length])


def overwrite_tensor_bytes(path: Path, prefix: str, count: int = 16) -> str:
    """Inverts `count` bytes in the middle of the first tensor (by name) that starts with `prefix` and holds that
    many bytes; returns its name. The header stays valid, so only a checksum can tell."""
    start, header = read_header(path)
    name = next(n for n in sorted(header) if n != "__metadata__" and n.startswith(prefix)
                and header[n]["data_offsets"][1] - header[n]["data_offsets"][0] >= count)
    begin, end = header[name]["data_offsets"]
    at = start + (begin + end - count) // 2
    with open(path, "r+b") as f:
        f.seek(at)
        original = f.read(count)
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in original))
    return name


def replace_in_header(path: Path, old: str, new: str) -> None:
    """Edits the header in place as a hex editor would: `old` (found once) becomes `new` of the same length."""
    assert len(old) == len(new)
    data = Path(path).read_bytes()
    start, _ = read_header(path)
    assert data[:start].count(old.encode()) == 1, f"{old!r} is not in the header once"
    Path(path).write_bytes(data[:start].replace(old.encode(), new.encode()) + data[start:])


def rewrite(path: Path, edit) -> None:
    """Writes the file again with `edit(metadata)` as its metadata, adding no checksum of its own (as a writer from
    before checksums, or a careless tool, would)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    save_file(tensors, str(path), metadata=edit(metadata))


def without(*keys: str):
    """An edit for `rewrite` that drops metadata entries."""
    return lambda metadata: {k: v for k, v in metadata.items() if k not in keys}
