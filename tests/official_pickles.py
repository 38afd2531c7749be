"""Official PyTorch-era network pickles for the import tests, written without the official code.

Networks are pickled as torch_utils.persistence does: reduced to
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with meta = {type, version, module_src,
class_name, state}, kwargs as `dnnlib.util.EasyDict`. Plain torch.nn members (EqGAN-SA's InstanceNorm2d,
Sequential, LeakyReLU) are pickled by torch itself, by reference to their class, as in the official pickles.
`module_src` is a payload that must never run.
"""

import collections
import pickle
import re
import sys
import types

import torch

OFFICIAL_CLASS_NAMES = {"StyleGAN2Generator": "Generator", "StyleGAN2Discriminator": "Discriminator"}


class EasyDict(dict):
    pass


def _never_called(meta):
    raise AssertionError("the official reconstruct function must never run")


def install_official_globals(monkeypatch):
    """Makes `torch_utils.persistence._reconstruct_persistent_obj` and `dnnlib.util.EasyDict` picklable by name;
    returns the reconstruct function for OfficialFormatPickler."""
    persistence = types.ModuleType("torch_utils.persistence")
    reconstruct = types.FunctionType(_never_called.__code__, {}, "_reconstruct_persistent_obj")
    reconstruct.__module__, reconstruct.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = reconstruct
    util = types.ModuleType("dnnlib.util")
    monkeypatch.setattr(EasyDict, "__module__", "dnnlib.util")
    util.EasyDict = EasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, module)
    return reconstruct


def easy_dict(value):
    return EasyDict({k: easy_dict(v) for k, v in value.items()}) if isinstance(value, dict) else value


def official_kwargs(net):
    """The constructor kwargs as the official code records them: sub-kwargs always EasyDicts, never None."""
    kwargs = getattr(net, "init_kwargs", {})
    return easy_dict({k: {} if k.endswith("_kwargs") and v is None else v for k, v in kwargs.items()})


class OfficialFormatPickler(pickle.Pickler):
    """Pickles nn.Modules the way torch_utils.persistence does; `module_src` is a payload that must never run."""

    def __init__(self, file, reconstruct, module_src: str, protocol: int = 3):
        super().__init__(file, protocol=protocol)
        self.reconstruct, self.module_src = reconstruct, module_src

    def reducer_override(self, obj):
        if not isinstance(obj, torch.nn.Module) or is_torch_nn(obj):
            return NotImplemented
        state = {
            "training": obj.training,
            "_parameters": collections.OrderedDict(obj._parameters),
            "_buffers": collections.OrderedDict(obj._buffers),
            "_non_persistent_buffers_set": set(obj._non_persistent_buffers_set),
            "_modules": collections.OrderedDict(obj._modules),
            "_forward_hooks": collections.OrderedDict(),
            "_init_args": (),
            "_init_kwargs": official_kwargs(obj),
        }
        class_name = getattr(obj, "official_class", None) or OFFICIAL_CLASS_NAMES.get(type(obj).__name__,
                                                                                     type(obj).__name__)
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=class_name, state=state)
        return self.reconstruct, (meta,)


def official_pickle(path, reconstruct, sentinel, protocol=3, **entries):
    payload = f"open({str(sentinel)!r}, 'w').close()\n"
    with open(path, "wb") as f:
        OfficialFormatPickler(f, reconstruct, payload, protocol).dump(entries)
    return path


class Payload:
    """Pickles as a call func(arg): what a malicious pickle does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)



def is_torch_nn(module: torch.nn.Module) -> bool:
    """torch.nn's own classes are pickled by torch, not as persistent objects."""
    return type(module).__module__.startswith("torch.nn.")


class OfficialStandIn(torch.nn.Module):
    """A module of an official network tree, pickled under its official class name."""

    def __init__(self, official_class: str):
        super().__init__()
        self.official_class = official_class


# Official class of a module, by its dotted path (stylegan2-ada-pytorch and genforce/eqgan-sa networks.py).
OFFICIAL_CLASSES = [
    (r"", "Generator"), (r"mapping", "MappingNetwork"), (r"synthesis", "SynthesisNetwork"),
    (r"synthesis\.b\d+", "SynthesisBlock"), (r".*\.conv[01]", "SynthesisLayer"), (r".*\.torgb", "ToRGBLayer"),
    (r".*\.sel", "SEL"), (r".*\.(fc\d+|embed|affine)", "FullyConnectedLayer"), (r".*", "Conv2dLayer"),
]
PARAMETERS = ("weight", "bias", "const", "noise_strength")


def _official_child(path: str) -> torch.nn.Module:
    if re.fullmatch(r".*\.sel\.shared", path):
        return torch.nn.Sequential()
    if re.fullmatch(r".*\.sel\.output", path):  # EqGAN-SA: Sequential(LeakyReLU(0.2), Conv2dLayer)
        return torch.nn.Sequential(torch.nn.LeakyReLU(2e-1))
    return OfficialStandIn(next(c for p, c in OFFICIAL_CLASSES if re.fullmatch(p, path)))


def official_module_tree(state: dict, init_kwargs: dict) -> torch.nn.Module:
    """The official module tree holding `state` (official names): stand-ins under the official class names,
    parameters as Parameters, and EqGAN-SA's torch.nn members in place (each SEL's InstanceNorm2d, its
    Sequentials and LeakyReLU)."""
    root = OfficialStandIn("Generator")
    root.init_kwargs = init_kwargs
    for name, value in state.items():
        *path, leaf = name.split(".")
        module = root
        for i, part in enumerate(path):
            if part not in module._modules:
                module.add_module(part, _official_child(".".join(path[: i + 1])))
            module = module._modules[part]
        if leaf in PARAMETERS:
            module.register_parameter(leaf, torch.nn.Parameter(value.clone(), requires_grad=False))
        else:
            module.register_buffer(leaf, value.clone())
    for module in root.modules():
        if getattr(module, "official_class", None) == "SEL":
            channels = module.output[1].weight.shape[0]
            module.inorm_fn = torch.nn.InstanceNorm2d(channels, affine=False)
    return root
