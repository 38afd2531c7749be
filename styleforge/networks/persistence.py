"""Networks that remember how they were built, saved as safetensors with their config.

A network file holds the weights (state dict) and, in the safetensors metadata, the registry
name and the constructor arguments. Loading rebuilds the module from (name, config) and loads
the weights: no pickle, no code in the file.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "styleforge.network.v1"


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
            var_kw = [p.name for p in signature.parameters.values() if p.kind == p.VAR_KEYWORD]
            for key in var_kw:
                recorded.update(recorded.pop(key))
            original_init(self, *args, **kwargs)
            # Set after __init__ so nested persistent modules don't overwrite the outer record.
            self.init_kwargs = json.loads(json.dumps(recorded))
            self.registry_name = name

        cls.__init__ = __init__
        return cls

    return decorator


def network_metadata(net: torch.nn.Module) -> dict[str, str]:
    if not hasattr(net, "init_kwargs"):
        raise TypeError(f"{type(net).__name__} is not a persistent network (use @persistent)")
    return {"format": FORMAT, "name": net.registry_name, "config": json.dumps(net.init_kwargs)}


def state_dict_for_saving(net: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies.
    return {prefix + k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}


def save_network(net: torch.nn.Module, path: str | os.PathLike) -> None:
    """Writes the network atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state_dict_for_saving(net), str(tmp), metadata=network_metadata(net))
    os.replace(tmp, path)


def build_network(name: str, config: dict[str, Any]) -> torch.nn.Module:
    from styleforge.networks import registered_network

    return registered_network(name)(**config)


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    path = Path(path)
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a StyleForge network file (metadata format={meta.get('format')!r})")
        state = {k: f.get_tensor(k) for k in f.keys()}
    net = build_network(meta["name"], json.loads(meta["config"]))
    net.load_state_dict(state)
    return net.to(device)
