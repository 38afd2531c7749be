"""TensorFlow-era network pickles (StyleGAN, StyleGAN2, ProGAN) as data, and the tools to map them.

Those pickles hold `dnnlib.tflib.network.Network` objects (ProGAN: `tfutil.Network`), usually as a tuple
(G, D, Gs). Each pickles its state through `__getstate__` (NVlabs/stylegan2 dnnlib/tflib/network.py):
    {version, name, static_kwargs, components, build_module_src, build_func_name, variables}
`variables` lists (name, numpy array) pairs of the network's own variables, named inside its scope
('4x4/Conv/weight'); `components` holds sub-networks (a StyleGAN generator's 'mapping' and 'synthesis');
`static_kwargs` the build function's arguments. The official loader `exec`s `build_module_src` and builds a
TF graph; `TFNetwork` keeps only the data and never looks at the source.

Layout changes (official TF layer code: get_weight, dense, conv2d, apply_bias, apply_bias_act): TF
weights are HWIO ([kh, kw, in, out]) and dense weights [in, out]; ours are OIHW and [out, in]. TF scales a
weight at run time by gain * lrmul / sqrt(fan_in) and ours by lrmul / sqrt(fan_in); where TF applies a
bare activation, ours multiplies the activation's output by its gain (sqrt 2 for lrelu). `rescale` turns
one into the other; families' modules (tf_stylegan2, tf_stylegan1, tf_progan) do the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from styleforge.errors import UserError

# Build arguments of the official networks that only choose run-time behaviour or the TF graph's form.
RUNTIME_ARGS = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                "style_mixing_prob", "structure", "randomize_noise", "fused_modconv", "is_template_graph",
                "force_clean_graph", "dlatent_broadcast", "is_training", "is_validation", "return_dlatents")
# (module, name) under which the pickles refer to the Network class.
TF_NETWORK_CLASSES = {("dnnlib.tflib.network", "Network"), ("tfutil", "Network")}
_STATE_KEYS = {"version", "name", "static_kwargs", "components", "build_module_src", "build_func_name", "variables"}


class TFNetwork:
    """A dnnlib.tflib Network rebuilt from its pickled state, without TensorFlow and without its source."""

    name: str
    version: int
    static_kwargs: dict[str, Any]
    components: dict[str, TFNetwork]
    build_func_name: str
    variables: dict[str, np.ndarray]

    def __init__(self, *args: Any, **kwargs: Any):
        raise UserError("the pickle calls Network(...); a TF network pickle holds its state only")

    def __new__(cls, *args: Any) -> TFNetwork:
        if args:
            raise UserError("the pickle creates a TF Network with arguments; it is pickled without")
        return object.__new__(cls)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UserError(f"a TF Network in the pickle has a {type(state).__name__} as its state, not a dict")
        if "version" not in state and "build_func_spec" in state:
            raise UserError("a Theano-era ProGAN network (no 'version' in its state) is not supported; "
                            "convert it with the official progressive_growing_of_gans code first")
        unknown = sorted(set(state) - _STATE_KEYS)
        if unknown:
            raise UserError(f"a TF Network in the pickle has unexpected state keys: {', '.join(unknown)}")
        self.version = _typed(state, "version", int)
        self.name = _typed(state, "name", str)
        self.build_func_name = _typed(state, "build_func_name", str)
        _typed(state, "build_module_src", str)  # kept out: it is code
        self.static_kwargs = dict(_typed(state, "static_kwargs", dict))
        self.components = dict(state.get("components") or {})
        for key, component in self.components.items():
            if not isinstance(component, TFNetwork):
                raise UserError(f"component '{key}' of TF network '{self.name}' is a {type(component).__name__}")
        self.variables = {}
        for item in _typed(state, "variables", list):
            # Session.run gives arrays, and numpy scalars for scalar variables (lod, noise strengths).
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], (np.ndarray, np.generic)) and item[1].dtype.kind in "fiub"):
                raise UserError(f"TF network '{self.name}' has a variable that is not a (name, numeric array) pair")
            self.variables[item[0]] = np.asarray(item[1])

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables and those of the components, under '<component>/' (as legacy.py collects them)."""
        found = dict(self.variables)
        for key, component in self.components.items():
            found.update({f"{key}/{name}": value for name, value in component.all_variables().items()})
        return found

    def all_static_kwargs(self) -> dict[str, Any]:
        """The network's build arguments, completed by its components' (a generator passes its own on)."""
        merged: dict[str, Any] = {}
        for component in self.components.values():
            merged.update(component.all_static_kwargs())
        merged.update(self.static_kwargs)
        return merged


def _typed(state: dict, key: str, kind: type) -> Any:
    value = state.get(key)
    if not isinstance(value, kind):
        raise UserError(f"a TF Network in the pickle has {key}={type(value).__name__}, expected {kind.__name__}")
    return value


class TFVariables:
    """A TF network's variables by full name, recording which ones were used (every one must land)."""

    def __init__(self, net: TFNetwork):
        self.network = net.name
        self.values = net.all_variables()
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise UserError(f"TF network '{self.network}' has no variable '{name}'")
        self.used.add(name)
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def check_all_used(self) -> None:
        unused = sorted(set(self.values) - self.used)
        if unused:
            raise UserError(f"TF network '{self.network}' has variables with no place in the converted network: "
                            f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}")


class StaticKwargs:
    """A TF network's static_kwargs, read as legacy.py's `kwarg()` does: every argument must be known."""

    def __init__(self, net: TFNetwork):
        self.network = net.name
        self.values = net.all_static_kwargs()
        self.known: set[str] = set()

    def get(self, name: str, default: Any = None, none: Any = None) -> Any:
        """The argument, `default` when absent, `none` when given as None (legacy.py's kwarg())."""
        self.known.add(name)
        value = self.values.get(name, default)
        return none if value is None else _plain(value)

    def require(self, name: str, *allowed: Any) -> None:
        """An argument our network has no counterpart for, accepted only at values that change nothing."""
        self.known.add(name)
        if name in self.values and _plain(self.values[name]) not in allowed:
            raise UserError(f"TF network '{self.network}': {name}={self.values[name]!r} is not supported "
                            f"(supported: {', '.join(map(repr, allowed))})")

    def ignore(self, *names: str) -> None:
        """Arguments that only choose run-time behaviour (noise, truncation, graph structure)."""
        self.known.update(names)

    def check_all_known(self) -> None:
        unknown = sorted(set(self.values) - self.known)
        if unknown:
            raise UserError(f"TF network '{self.network}': unknown build argument '{unknown[0]}'")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def hwio_to_oihw(w: np.ndarray, flip: bool = False) -> np.ndarray:
    """A TF conv weight [kh, kw, in, out] as ours [out, in, kh, kw], spatially flipped if asked."""
    w = w[::-1, ::-1] if flip else w
    return w.transpose(3, 2, 0, 1)


def rescale(w: np.ndarray, tf_gain: float, activation: str) -> np.ndarray:
    """A TF weight or bias for our layer of the same fan-in and activation: TF scales the weight by tf_gain
    and applies the bare activation; ours scales by 1 and multiplies (l)relu's output by sqrt(2). Since (l)relu is
    positively homogeneous, sqrt2 * lrelu(u / sqrt2) = lrelu(u): dividing by our gain gives TF's output."""
    ours = {"linear": 1.0, "lrelu": math.sqrt(2), "relu": math.sqrt(2)}[activation]
    return w * (tf_gain / ours)


Rule = tuple[str, Callable[..., np.ndarray | None] | None]


def populate(net: nn.Module, rules: Iterable[Rule], variables: TFVariables) -> None:
    """Sets every tensor of `net` from the first rule whose pattern matches its name: rule(*groups) gives the
    value (None keeps ours, e.g. fixed resampling filters); then checks that every TF variable was used."""
    rules = list(rules)
    state = {}
    for name, tensor in net.state_dict().items():
        match, fn = next(((m, fn) for m, fn in ((re.fullmatch(p, name), fn) for p, fn in rules) if m), (None, None))
        if match is None:
            raise UserError(f"no TF variable maps to '{name}' of the converted network")
        value = fn(*match.groups()) if fn is not None else None
        if value is None:
            state[name] = tensor
            continue
        value = np.asarray(value, dtype=np.float32)
        if value.shape != tuple(tensor.shape):
            raise UserError(f"TF network '{variables.network}': the value for '{name}' has shape "
                            f"{list(value.shape)}, the converted network needs {list(tensor.shape)}")
        state[name] = torch.from_numpy(value.copy())  # a copy: flipped views have negative strides
    net.load_state_dict(state)
    variables.check_all_used()


def check_generator(net: TFNetwork, func: str, mapping: tuple[str, ...], synthesis: tuple[str, ...]) -> None:
    """A generator built by `func` with components 'mapping' and 'synthesis' built by one of the given."""
    check_builds(net, func)
    for key, funcs in (("mapping", mapping), ("synthesis", synthesis)):
        if key not in net.components:
            raise UserError(f"TF network '{net.name}' has no '{key}' component")
        check_builds(net.components[key], *funcs)


def check_builds(net: TFNetwork, *build_funcs: str) -> None:
    if net.build_func_name not in build_funcs:
        raise UserError(f"TF network '{net.name}' is built by {net.build_func_name}, expected "
                        f"{' or '.join(build_funcs)}")


def progressive_variables_name(kind: str, resolution: int, img_resolution: int) -> str:
    """'ToRGB_lod{k}' / 'FromRGB_lod{k}': the official name of a level's RGB layer, by level of detail."""
    return f"{kind}_lod{int(math.log2(img_resolution // resolution))}"
