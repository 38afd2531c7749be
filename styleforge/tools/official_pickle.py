"""Reading NVlabs network pickles without running the code they carry.

The official pickles (stylegan2-ada-pytorch, stylegan3) store each network through
`torch_utils.persistence`: the pickle calls `torch_utils.persistence._reconstruct_persistent_obj(meta)`,
where `meta` holds the class's whole source module (`module_src`), which the official loader `exec`s,
the `class_name`, and the `state` (the module's `__dict__`: `_parameters`, `_buffers`, `_modules`,
`_init_kwargs`, ...). Tensors are pickled by torch as `torch._utils._rebuild_tensor_v2(storage, ...)` with
storages as `torch.storage._load_from_bytes(bytes)`, i.e. a legacy `torch.save` of the storage.

`SafeUnpickler` resolves only an explicit allowlist of globals and never executes `module_src`: each
persistent object becomes an `OfficialModule` placeholder that keeps the class name and state; storages
are read with `torch.load(..., weights_only=True)`. Any other global -- `os.system`, `builtins.exec`, a
class to instantiate -- is refused with a UserError naming it, before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from styleforge.errors import UserError


@dataclass
class OfficialModule:
    """What an official persistent network pickles into, minus its source code."""

    class_name: str
    state: dict[str, Any]

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def children(self) -> dict[str, OfficialModule]:
        return {k: v for k, v in (self.state.get("_modules") or {}).items() if v is not None}

    def modules(self) -> dict[str, OfficialModule]:
        """Every module of the tree by dotted name ('' = this one), like nn.Module.named_modules."""
        found = {"": self}
        for name, child in self.children.items():
            if not isinstance(child, OfficialModule):
                raise UserError(f"unexpected sub-module '{name}' of type {type(child).__name__} in {self.class_name}")
            found.update({f"{name}.{k}" if k else name: v for k, v in child.modules().items()})
        return found

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers by their official dotted names, as nn.Module.state_dict gives them."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self.modules().items():
            skip = set(module.state.get("_non_persistent_buffers_set") or ())
            entries = [*(module.state.get("_parameters") or {}).items(),
                       *((k, v) for k, v in (module.state.get("_buffers") or {}).items() if k not in skip)]
            for name, value in entries:
                if value is not None:
                    tensors[f"{prefix}.{name}" if prefix else name] = value
        return tensors


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> OfficialModule:
    """Stands in for torch_utils.persistence._reconstruct_persistent_obj: keeps class_name and state only."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UserError("malformed persistent object in the pickle (expected a dict with type 'class' and a state)")
    return OfficialModule(class_name=str(meta.get("class_name")), state=meta["state"])


def _load_storage(data: bytes) -> torch.storage.TypedStorage:
    """Stands in for torch.storage._load_from_bytes, which would run torch.load with weights_only=False."""
    storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UserError(f"a tensor storage in the pickle holds a {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2 without hooks, requires_grad or metadata (nothing but numbers)."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UserError(f"a tensor in the pickle is built from a {type(storage).__name__}, not a storage")
    return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> torch.Tensor:
    """A Parameter comes back as its plain tensor: only the values matter here."""
    if not torch.is_tensor(data):
        raise UserError(f"a parameter in the pickle wraps a {type(data).__name__}, not a tensor")
    return data


class _EasyDict(dict):
    """Stands in for dnnlib.util.EasyDict (a dict with attribute access, which is not needed here). A subclass,
    so that it has a __dict__ for pickle's BUILD step, as the original has."""


def _numpy(name: str) -> Callable[..., Any]:
    # numpy's pickling helpers live in numpy.core (numpy 1) or numpy._core (numpy 2).
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


# (module, name) -> what the pickle gets instead. Everything else is refused.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): lambda: _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): lambda: _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda: _rebuild_parameter,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): lambda: _EasyDict,
    ("dnnlib", "EasyDict"): lambda: _EasyDict,
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("_codecs", "encode"): lambda: _latin1_bytes,  # protocol-2 pickles spell bytes this way
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    **{(core, name): (lambda name=name: _numpy(name))
       for core in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")},
}


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise UserError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r}) in the pickle")
    return text.encode("latin1")


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ALLOWED_GLOBALS and knows no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles spell some globals by their Python 2 names (__builtin__.set).
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        factory = ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise UserError(f"the pickle refers to {module}.{name}, which an official network pickle does not "
                            "need; refusing to load it (it may run code)")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise UserError("the pickle uses persistent ids; it is not an official network pickle")


def read_official_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """The top-level dict of an official pickle ({'G': ..., 'D': ..., 'G_ema': ..., ...}), networks as
    OfficialModule placeholders."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            data = SafeUnpickler(f).load()
    except UserError as e:
        raise UserError(f"{path}: {e}") from e
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError) as e:
        raise UserError(f"{path}: not a readable network pickle ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a {type(data).__name__}, not the dict of networks of an official pickle")
    return data
