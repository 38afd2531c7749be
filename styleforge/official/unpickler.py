"""Reading official network pickles without running the code they carry.

`SafeUnpickler` resolves only an explicit allowlist of globals (`ALLOWED_GLOBALS`) and gives each of them a
stand-in that takes data and returns data:
- PyTorch-era pickles (stylegan2-ada-pytorch, stylegan3, EqGAN-SA): persistent networks become
  `OfficialModule`s and plain torch.nn members `TorchModule`s (see torch_modules.py). Tensors are pickled as
  `torch._utils._rebuild_tensor_v2(storage, ...)` with storages as `torch.storage._load_from_bytes(bytes)`, a
  legacy `torch.save` of the storage, read here with `torch.load(..., weights_only=True)`.
- TensorFlow-era pickles (StyleGAN, StyleGAN2, ProGAN): `dnnlib.tflib.Network` (or ProGAN's `tfutil.Network`)
  objects become `TFNetwork`s (see tf.py) holding numpy arrays; their build source is never executed.
- numpy arrays and scalars of numeric types, sets, OrderedDicts and EasyDicts.
Any other global -- `os.system`, `builtins.exec`, a class to instantiate -- is refused with a UserError
naming it, before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from styleforge.errors import UserError
from styleforge.official.tf import TF_NETWORK_CLASSES, TFNetwork
from styleforge.official.torch_modules import reconstruct_persistent_obj, torch_placeholder


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


def _numeric_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """numpy.dtype for the numeric types only: an object dtype would let the pickle fill arrays with objects."""
    dtype = np.dtype(spec, align, copy)
    if dtype.hasobject:
        raise UserError("the pickle holds a numpy array of Python objects; network pickles hold numbers")
    return dtype


def _numpy_multiarray(name: str) -> Callable[..., Any]:
    # numpy's pickling helpers live in numpy.core (numpy 1) or numpy._core (numpy 2).
    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


def _reconstruct_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's array reconstructor for plain ndarrays only (not a subclass the pickle names)."""
    if subtype is not np.ndarray:
        raise UserError(f"the pickle rebuilds a numpy array as {subtype!r}, not a plain ndarray")
    return _numpy_multiarray("_reconstruct")(np.ndarray, shape, dtype)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UserError("the pickle holds a numpy scalar that is not a number")
    return _numpy_multiarray("scalar")(dtype, data)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise UserError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r}) in the pickle")
    return text.encode("latin1")


_NUMPY_CORES = ("numpy.core.multiarray", "numpy._core.multiarray")
# (module, name) -> what the pickle gets instead. Everything else is refused.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_bytes,  # protocol-2 pickles spell bytes this way
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
    **{(core, "_reconstruct"): _reconstruct_array for core in _NUMPY_CORES},
    **{(core, "scalar"): _numpy_scalar for core in _NUMPY_CORES},
    **{key: TFNetwork for key in TF_NETWORK_CLASSES},
}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ALLOWED_GLOBALS and torch_modules.TORCH_CLASSES, and knows no
    persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles spell some globals by their Python 2 names (__builtin__.set).
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED_GLOBALS.get((module, name)) or torch_placeholder(module, name)
        if found is None:
            raise UserError(f"the pickle refers to {module}.{name}, which an official network pickle does not "
                            "need; refusing to load it (it may run code)")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UserError("the pickle uses persistent ids (a torch.save file of the old format?); it is not an "
                        "official network pickle")


def read_pickle(path: str | os.PathLike) -> Any:
    """The object an official pickle holds, with networks as OfficialModule or TFNetwork placeholders."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            # latin1: Python 2 pickles (ProGAN's era) store numpy's raw bytes as str.
            return SafeUnpickler(f, encoding="latin1").load()
    except UserError as e:
        raise UserError(f"{path}: {e}") from e
    except (EOFError, pickle.UnpicklingError) as e:
        if isinstance(e, EOFError) or "truncated" in str(e):
            raise UserError(f"{path}: the pickle ends too early (truncated file?)") from e
        raise UserError(f"{path}: not a readable network pickle ({type(e).__name__}: {e})") from e
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, RuntimeError,
            MemoryError, OverflowError) as e:
        raise UserError(f"{path}: not a readable network pickle ({type(e).__name__}: {e})") from e
