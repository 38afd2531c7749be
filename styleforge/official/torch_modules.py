"""The torch.nn.Module trees of PyTorch-era official pickles, as plain data.

Two kinds of module occur in them:
- Persistent classes (`torch_utils.persistence` of stylegan2-ada-pytorch, stylegan3, EqGAN-SA): the pickle
  calls `torch_utils.persistence._reconstruct_persistent_obj(meta)`, `meta` holding the class's source
  module (which the official loader `exec`s), its name and its state (the module's `__dict__`). Each becomes
  an `OfficialModule` with the class name and state; the source is dropped.
- Plain torch.nn members, pickled by reference to their class: EqGAN-SA's SEL holds an `nn.InstanceNorm2d`,
  and `nn.Sequential`s, one with an `nn.LeakyReLU` (genforce/eqgan-sa training/networks.py). The pickle
  names the class, creates it with `cls.__new__(cls)` and hands it its `__dict__`. The unpickler resolves
  those names to `TorchModule` placeholders that take the state, check it against what the class holds
  (its constructor attributes with their types, its parameter and buffer names, no hooks) and keep it. No
  torch code that the pickle names is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from styleforge.errors import UserError


@dataclass
class OfficialModule:
    """What an official network pickles into, minus its source code: its class name and `__dict__`."""

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


def reconstruct_persistent_obj(meta: dict[str, Any]) -> OfficialModule:
    """Stands in for torch_utils.persistence._reconstruct_persistent_obj: keeps class_name and state only."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UserError("malformed persistent object in the pickle (expected a dict with type 'class' and a state)")
    return OfficialModule(class_name=str(meta.get("class_name")), state=meta["state"])


@dataclass(frozen=True)
class TorchClass:
    """What a pickled torch.nn class holds: its constructor attributes (name -> allowed types) and the names
    of its parameters and buffers (which may be None, e.g. InstanceNorm2d's weight without affine)."""

    name: str
    attributes: Mapping[str, tuple[type, ...]]
    tensors: frozenset[str] = frozenset()


_NUMBER = (int, float)
# The torch.nn classes that official pickles of the supported repositories hold (EqGAN-SA's SEL), by the
# (module, name) under which torch pickles them.
TORCH_CLASSES: dict[tuple[str, str], TorchClass] = {
    ("torch.nn.modules.instancenorm", "InstanceNorm2d"): TorchClass(
        "InstanceNorm2d",
        {"num_features": (int,), "eps": _NUMBER, "momentum": (*_NUMBER, type(None)), "affine": (bool,),
         "track_running_stats": (bool,)},
        frozenset({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})),
    ("torch.nn.modules.activation", "LeakyReLU"): TorchClass(
        "LeakyReLU", {"negative_slope": _NUMBER, "inplace": (bool,)}),
    ("torch.nn.modules.container", "Sequential"): TorchClass("Sequential", {}),
}
# nn.Module's own fields, besides its hook dicts, which must be empty (a pickled hook would be code to run).
_MODULE_FIELDS = {"training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_modules"}


class TorchModule(OfficialModule):
    """A torch.nn member rebuilt from its pickled state; `config` holds its checked constructor attributes."""

    torch_class: ClassVar[TorchClass]

    def __new__(cls, *args: Any) -> TorchModule:
        if args:
            raise UserError(f"the pickle creates {cls.torch_class.name} with arguments; torch pickles it without")
        module = object.__new__(cls)
        module.class_name, module.state = cls.torch_class.name, {}
        return module

    def __init__(self, *args: Any, **kwargs: Any):
        raise UserError(f"the pickle calls {self.torch_class.name}(...); torch pickles it by its state")

    def __setstate__(self, state: Any) -> None:
        spec = self.torch_class
        if not isinstance(state, dict):
            raise UserError(f"{spec.name} in the pickle has a {type(state).__name__} as its state, not a dict")
        for key, value in state.items():
            if key in spec.attributes:
                if type(value) not in spec.attributes[key]:  # exact types: bool is not taken for a number
                    raise UserError(f"{spec.name}.{key} in the pickle is a {type(value).__name__}")
            elif "_hook" in key:  # the hook dicts, their flags, _is_full_backward_hook
                if value:
                    raise UserError(f"{spec.name} in the pickle carries hooks ({key}); refusing to load it")
            elif key not in _MODULE_FIELDS:
                raise UserError(f"{spec.name} in the pickle has an unexpected field '{key}'")
        missing = sorted(set(spec.attributes) - set(state))
        if missing:
            raise UserError(f"{spec.name} in the pickle lacks {', '.join(missing)}")
        for field in ("_parameters", "_buffers"):
            unknown = sorted(set(state.get(field) or {}) - spec.tensors)
            if unknown:
                raise UserError(f"{spec.name} in the pickle holds unexpected tensors: {', '.join(unknown)}")
        if spec.name != "Sequential" and state.get("_modules"):
            raise UserError(f"{spec.name} in the pickle holds sub-modules, which it never has")
        self.state = state

    @property
    def config(self) -> dict[str, Any]:
        return {k: self.state[k] for k in self.torch_class.attributes}


def torch_placeholder(module: str, name: str) -> type[TorchModule] | None:
    """The placeholder class for a torch.nn class an official pickle may hold, or None."""
    spec = TORCH_CLASSES.get((module, name))
    return _PLACEHOLDERS[spec.name] if spec else None


_PLACEHOLDERS = {spec.name: type(spec.name, (TorchModule,), {"torch_class": spec}) for spec in TORCH_CLASSES.values()}
