"""Networks that remember how they were built, saved as safetensors with their config.

A file holds one or more networks, each under a key ("G", "D", "G_ema", or "" for a lone network):
their weights as tensors named `<key>.<param>` and, in the safetensors metadata, each network's
registry name and constructor arguments. Loading rebuilds the modules from (name, config) and loads
the weights: no pickle, no code in the file. Training checkpoints add optimizer and RNG tensors and
more metadata to the same kind of file.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from styleforge.errors import UserError

FORMAT = "styleforge.v1"
# Which network `load_network` returns when the caller names none: the EMA generator is the one to use.
DEFAULT_PREFERENCE = ("G_ema", "G", "")


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


def save_file_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Writes a safetensors file under a temporary name and renames it, so no reader ever sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


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


def load_network(
    path: str | os.PathLike, key: str | None = None, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """Rebuilds one network from a network file or a training checkpoint.

    `key` picks the network ("G", "D", "G_ema"); by default G_ema, else G, else the file's lone network.
    """
    meta = read_metadata(path)
    described = json.loads(meta["networks"])
    if key is None:
        key = next((k for k in DEFAULT_PREFERENCE if k in described), None)
        if key is None:
            raise UserError(f"{path}: holds networks {sorted(described)}; name one of them")
    if key not in described:
        raise UserError(f"{path}: has no network '{key}' (it holds {sorted(described)})")
    prefix = _tensor_name(key, "")
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        state = {name[len(prefix):]: f.get_tensor(name) for name in f.keys() if name.startswith(prefix)}
    net = build_network(described[key]["name"], described[key]["config"])
    net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)
