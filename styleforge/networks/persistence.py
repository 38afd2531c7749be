"""Networks that remember how they were built, saved as safetensors with their config.

A file holds one or more networks, each under a key ("G", "D", "G_ema", or "" for a lone network):
their weights as tensors named `<key>.<param>` and, in the safetensors metadata, each network's
registry name and constructor arguments. Loading rebuilds the modules from (name, config) and loads
the weights: no pickle, no code in the file. Training checkpoints add optimizer and RNG tensors and
more metadata to the same kind of file.

Every file written here carries two SHA-256 checksums in its metadata: `sha256` over the tensors' names
and bytes, and `metadata_sha256` over every other metadata entry (`sha256` included, so it covers the
whole file). Loading verifies both, so a damaged or edited file is refused instead of drawing different
images. Files written before checksums existed (no `sha256`) load without a word: a checksum guards
against accidental damage, not forgery (whoever can edit a file can recompute it), and a warning on every
load of such a file would be noise its owner cannot act on. Checkpoints written before `metadata_sha256`
existed carry `sha256` alone and are verified by it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from styleforge.errors import UserError

FORMAT = "styleforge.v1"
# Which network `load_network` returns when the caller names none: the EMA generator is the one to use.
DEFAULT_PREFERENCE = ("G_ema", "G", "")
TENSORS_CHECKSUM = "sha256"  # over the tensors' names and bytes
METADATA_CHECKSUM = "metadata_sha256"  # over every other metadata entry, TENSORS_CHECKSUM included
# What a network stored under a bare name (no "generator/" prefix) is, by its key in the file.
KIND_OF_KEY = {"G": "generator", "G_ema": "generator", "D": "discriminator"}


def persistent(name: str):
    """Class decorator: records the constructor's (JSON-able) arguments in `self.init_kwargs`
    and the registry name in `self.registry_name`."""

    def decorator(cls):
        original_init = cls.__init__
        signature = inspect.signature(original_init)

        @functools.wraps(original_init)
        def __init__(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            recorded = {k: v for k, v in bound.arguments.items() if k != "self"}
            for p in signature.parameters.values():
                if p.kind == p.VAR_KEYWORD:
                    recorded.update(recorded.pop(p.name))
            original_init(self, *args, **kwargs)
            # Set after __init__ so that a subclass's record is not overwritten by its parent's.
            self.init_kwargs = json.loads(json.dumps(recorded))
            self.registry_name = name

        cls.__init__ = __init__
        return cls

    return decorator


def _tensor_name(key: str, param: str) -> str:
    return f"{key}.{param}" if key else param


def _hash_tensor(digest: Any, name: str, tensor: torch.Tensor) -> None:
    digest.update(name.encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        _hash_tensor(digest, name, tensors[name])
    return digest.hexdigest()


def file_content_hash(path: str | os.PathLike) -> str:
    """`content_hash` of a safetensors file's tensors, reading one tensor at a time."""
    digest = hashlib.sha256()
    with safe_open(str(path), framework="pt") as f:
        for name in sorted(f.keys()):
            _hash_tensor(digest, name, f.get_tensor(name))
    return digest.hexdigest()


def metadata_hash(metadata: dict[str, str]) -> str:
    """SHA-256 over every metadata entry except METADATA_CHECKSUM itself."""
    entries = {k: v for k, v in metadata.items() if k != METADATA_CHECKSUM}
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def verify_checksums(path: str | os.PathLike, metadata: dict[str, str],
                     tensors: dict[str, torch.Tensor] | None = None, required: bool = False) -> None:
    """UserError when the file's metadata or tensors (given, or read from `path`) do not match its checksums.
    A file without checksums passes unless they are `required`."""
    if METADATA_CHECKSUM in metadata and metadata_hash(metadata) != metadata[METADATA_CHECKSUM]:
        raise UserError(f"{path}: checksum mismatch in the metadata; the file is damaged or was edited")
    stored = metadata.get(TENSORS_CHECKSUM)
    if stored is None:
        if required:
            raise UserError(f"{path}: no checksum in the metadata; the file is damaged")
        return
    actual = content_hash(tensors) if tensors is not None else file_content_hash(path)
    if actual != stored:
        raise UserError(f"{path}: checksum mismatch; the file is corrupted")


def save_file_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Writes a safetensors file, with its checksums added to `metadata`, under a temporary name and renames
    it, so no reader ever sees half a file. On failure (e.g. a full disk) the temporary file is removed,
    an existing file at `path` stays as it was, and an OSError names the file and the reason."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    metadata = {**metadata, TENSORS_CHECKSUM: content_hash(tensors)}
    metadata[METADATA_CHECKSUM] = metadata_hash(metadata)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        os_error = re.search(r"os error (\d+)", str(e))  # safetensors reports I/O errors as text
        if isinstance(e, SafetensorError) and os_error:
            code = int(os_error[1])
            raise OSError(code, os.strerror(code), str(tmp)) from e
        raise


def pack_networks(networks: dict[str, torch.nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata describing `networks` ({key: module}), ready for a safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    described: dict[str, Any] = {}
    for key, net in networks.items():
        if not hasattr(net, "init_kwargs"):
            raise TypeError(f"{type(net).__name__} is not a persistent network (decorate it with @persistent)")
        described[key] = {"name": net.registry_name, "config": net.init_kwargs}
        for param, value in net.state_dict().items():
            # safetensors refuses shared or non-contiguous storage: store independent contiguous copies.
            tensors[_tensor_name(key, param)] = value.detach().cpu().contiguous().clone()
    return tensors, {"format": FORMAT, "networks": json.dumps(described)}


def save_network(net: torch.nn.Module, path: str | os.PathLike) -> None:
    tensors, metadata = pack_networks({"": net})
    save_file_atomic(tensors, path, metadata)


def build_network(name: str, config: dict[str, Any]) -> torch.nn.Module:
    import styleforge.networks as networks

    return networks.registered_network(name)(**config)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e}); it may be truncated or corrupted") from e
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a StyleForge file (metadata format={meta.get('format')!r})")
    return meta


def metadata_json(path: str | os.PathLike, metadata: dict[str, str], entry: str) -> Any:
    """A JSON metadata entry, parsed; a missing or unparsable one is a damaged file."""
    if entry not in metadata:
        raise UserError(f"{path}: no '{entry}' in the metadata; the file is damaged")
    try:
        return json.loads(metadata[entry])
    except ValueError as e:
        raise UserError(f"{path}: the metadata '{entry}' is not valid JSON ({e}); the file is damaged") from None


def described_networks(path: str | os.PathLike, metadata: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The file's {key: {"name": registry name, "config": constructor kwargs}}, checked for shape."""
    described = metadata_json(path, metadata, "networks")
    if not isinstance(described, dict) or not all(
            isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("config"), dict)
            for d in described.values()):
        raise UserError(f"{path}: the metadata 'networks' is not a {{key: {{name, config}}}} table; "
                        "the file is damaged")
    return described


def _build_described(path: Path, key: str, name: str, config: dict[str, Any]) -> torch.nn.Module:
    """Builds the network stored under `key`, with one-line errors naming the file and the network."""
    import styleforge.networks as networks

    label = key or "its network"
    try:
        networks.registered_network(name)
    except (UserError, KeyError):
        kind, _, short = name.rpartition("/")
        kind = kind or KIND_OF_KEY.get(key, "network")  # a bare name: say what the key holds
        raise UserError(f"{path}: {label} is an unknown {kind} '{short}' (written by a newer or other "
                        "version of StyleForge?)") from None
    try:
        return build_network(name, config)
    except (TypeError, ValueError, AssertionError) as e:  # kwargs the constructor does not take, values it refuses
        raise UserError(f"{path}: {label} ({name}) cannot be built from its stored config "
                        f"({type(e).__name__}: {e})") from None


def load_network(
    path: str | os.PathLike, key: str | None = None, device: str | torch.device = "cpu", verify: bool = True,
) -> torch.nn.Module:
    """Rebuilds one network from a network file or a training checkpoint.

    `key` picks the network ("G", "D", "G_ema"); by default G_ema, else G, else the file's lone network.
    `verify` checks the file's checksums first (reading every tensor once); False skips that for speed.
    """
    path = Path(path)
    meta = read_metadata(path)
    if verify:
        verify_checksums(path, meta, required=meta.get("kind") == "checkpoint")
    described = described_networks(path, meta)
    if key is None:
        key = next((k for k in DEFAULT_PREFERENCE if k in described), None)
        if key is None:
            raise UserError(f"{path}: holds networks {sorted(described)}; name one of them")
    if key not in described:
        raise UserError(f"{path}: has no network '{key}' (it holds {sorted(described)})")
    prefix = _tensor_name(key, "")
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        state = {name[len(prefix):]: f.get_tensor(name) for name in f.keys() if name.startswith(prefix)}
    net = _build_described(path, key, described[key]["name"], described[key]["config"])
    try:
        net.load_state_dict(state)
    except RuntimeError as e:  # missing, unexpected or misshapen tensors
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise UserError(f"{path}: the weights of {key or 'its network'} do not fit its config ({first}); "
                        "the file is damaged") from None
    return net.to(device).eval().requires_grad_(False)
