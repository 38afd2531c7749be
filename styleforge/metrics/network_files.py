"""Reading feature-network files without running arbitrary pickled code.

Two kinds of file are accepted:
- a state dict: `torch.save`d (zip or legacy format, read with `weights_only=True`) or safetensors;
- a TorchScript archive (`torch.jit.save`, e.g. NVIDIA's `inception-2015-12-05.pt`), read with
  `torch.jit.load`, which runs only TorchScript, never Python.
A Python pickle of modules (such as a `.pkl` that needs `dnnlib`/`torch_utils` to load) is refused.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from styleforge.errors import UserError

FILE_KINDS = ("auto", "torchscript", "state-dict")


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """A TorchScript archive is a zip holding compiled code (`code/`) and `constants.pkl`;
    a zip written by `torch.save` holds only `data.pkl` and tensor data."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def detect_kind(path: str | os.PathLike) -> str:
    return "torchscript" if is_torchscript_archive(path) else "state-dict"


def load_torchscript(path: str | os.PathLike, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    if not is_torchscript_archive(path):
        raise UserError(f"{path} is not a TorchScript archive (a zip written by torch.jit.save)")
    try:
        with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; NVIDIA's detectors are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as e:
        raise UserError(f"{path}: cannot load this TorchScript archive: {e}") from None


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a state-dict file on the CPU. A dict nesting the weights under `state_dict` is unwrapped."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except SafetensorError as e:
            raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if is_torchscript_archive(path):
        raise UserError(f"{path} is a TorchScript archive, not a state dict; use it as --detector-kind torchscript")
    try:
        # weights_only: the unpickler accepts tensors and containers, never arbitrary classes or calls.
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise UserError(
            f"{path} is neither a state dict nor a TorchScript archive (a Python pickle of modules, such as "
            f"NVIDIA's .pkl detectors, would run code on loading and is refused; use the .pt TorchScript "
            f"instead): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> torch.nn.Module:
    """Loads `state` strictly, except for BatchNorm's `num_batches_tracked` counters, which old files lack."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise UserError(f"{source} does not fit the {type(module).__name__} architecture: {e}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"{source} does not fit the {type(module).__name__} architecture: "
                        f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                        f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    return module
