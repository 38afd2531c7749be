"""Feature networks ("detectors") as used by the metrics: built-in, NVIDIA's TorchScript, or the user's own.

The contract of a detector: called on images [N, C, H, W] with values in [0, 255] -- uint8 for
FID/KID/precision-recall/IS, float32 for PPL (which needs sub-integer differences) -- on the detector's
device, it returns features [N, D] (for IS: class probabilities, rows summing to 1; for PPL: an
embedding whose squared distance is the perceptual distance).

A custom detector (`--detector my.pt`) is either
- a TorchScript archive: called as `net(images)` with the data set's channels (1 or 3); a network with
  NVIDIA's keyword arguments (`return_features`, `no_output_bias`, `return_lpips`, `resize_images`)
  is recognised from its signature and called like NVIDIA's detectors, with RGB input; or
- a state dict of the built-in architecture of that metric (Inception-v3 for FID/KID/IS, VGG16 for
  precision/recall, VGG16+LPIPS for PPL), e.g. fine-tuned weights.

`builtin:digits` instead of a file is the classifier of the built-in digits (digits_classifier.py): its
penultimate features serve FID/KID/precision-recall, its probabilities IS, its logits the class metrics.
The class metrics (role `classes`) need such a classifier: `builtin:digits` or a TorchScript network that
returns one score per class [N, K].
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import styleforge.metrics.digits_classifier as digits_classifier
import styleforge.metrics.network_files as network_files
from styleforge.errors import UserError
from styleforge.metrics.inception import InceptionV3FID
from styleforge.metrics.vgg16 import VGG16, lpips_state_from_file
from styleforge.metrics.weights import file_sha256, find_weight_files, verify_known_file


@dataclass(frozen=True)
class Role:
    """What a metric asks of its detector: which built-in network, and how NVIDIA-style networks are called."""

    network: str | None  # None: no standard network, the user names one
    call_kwargs: dict = field(default_factory=dict)


ROLES: dict[str, Role] = {
    "fid": Role("inception", {"return_features": True}),  # FID and KID: 2048-d pool features
    "is": Role("inception", {"no_output_bias": True}),  # Inception Score: probabilities, no output bias
    "pr": Role("vgg16", {"return_features": True}),  # precision/recall: fc2 features
    "ppl": Role("lpips", {"resize_images": False, "return_lpips": True}),  # PPL: LPIPS embedding
    "classes": Role(None),  # class_acc, class_coverage: scores [N, K] of the data set's classes
}

# Feature networks named instead of a file (`--detector builtin:digits`): their weight files.
BUILTIN_DETECTORS: dict[str, Path] = {"builtin:digits": digits_classifier.WEIGHTS_FILE}


class Detector:
    """A feature network with the calling convention and identity (for cache keys) it needs."""

    def __init__(self, net: Callable[..., torch.Tensor], identity: str, call_kwargs: dict | None = None,
                 rgb: bool = False):
        self.net = net
        self.identity = identity
        self.call_kwargs = dict(call_kwargs or {})
        self.rgb = rgb  # built-in and NVIDIA networks want 3 channels; custom ones get the data's own

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.rgb and images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        with torch.no_grad():
            out = self.net(images, **self.call_kwargs)
        if out.shape[0] != images.shape[0]:
            raise UserError(f"detector {self.identity} returned shape {list(out.shape)} for {images.shape[0]} images")
        return out.reshape(out.shape[0], -1).to(torch.float32)  # [N, D]


def _nvidia_style(net: Callable, role: str) -> bool:
    """Whether `net` takes NVIDIA's keyword arguments: our built-in networks, and TorchScript networks
    whose forward declares them (read from the compiled signature)."""
    if not ROLES[role].call_kwargs:
        return False
    if isinstance(net, InceptionV3FID | VGG16):
        return True
    try:
        names = {a.name for a in net.forward.schema.arguments}
    except AttributeError:
        return False
    return set(ROLES[role].call_kwargs) <= names


def _detector(net: Callable, role: str, identity: str) -> Detector:
    if isinstance(net, digits_classifier.DigitsClassifier):
        return Detector(net, identity, call_kwargs={"output": digits_classifier.output_for_role(role)})
    nvidia_style = _nvidia_style(net, role)
    return Detector(net, identity, call_kwargs=ROLES[role].call_kwargs if nvidia_style else None, rgb=nvidia_style)


def _state_identity(module: nn.Module) -> str:
    digest = hashlib.sha256(type(module).__name__.encode())
    for name, t in module.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def build_builtin(network: str, states: list[dict[str, torch.Tensor]], source: str) -> nn.Module:
    """Our architecture for `network` (`inception`, `vgg16`, `lpips`) loaded from one or more state dicts."""
    merged: dict[str, torch.Tensor] = {}
    for state in states:
        merged.update(state)
    if network == "inception":
        module = InceptionV3FID()
    elif network == "vgg16":
        module = VGG16(with_classifier=True)
    else:
        module = VGG16(with_classifier=False, with_lpips=True)
        merged = {k: v for k, v in lpips_state_from_file(merged).items() if not k.startswith("classifier.")}
    return network_files.load_into(module, merged, source)


def wrap_module(net: nn.Module, role: str, identity: str | None = None) -> Detector:
    """A detector from a module in memory (see the module docstring for how it is called)."""
    net.eval().requires_grad_(False)
    return _detector(net, role, identity or f"{type(net).__name__}:{_state_identity(net)}")


def _load_network(network: str | None, paths: tuple[Path, ...], kind: str, device: torch.device) -> nn.Module:
    if kind == "torchscript":
        if len(paths) != 1:
            raise UserError(f"a TorchScript detector is one file, got {[str(p) for p in paths]}")
        return network_files.load_torchscript(paths[0], device)
    if kind != "state-dict":
        raise UserError(f"unknown detector kind '{kind}'; choose one of {network_files.FILE_KINDS}")
    if network is None:
        raise UserError(f"{paths[0]} is a state dict, but the class metrics have no built-in architecture to load "
                        f"it into; give a TorchScript classifier or builtin:digits")
    source = " + ".join(str(p) for p in paths)
    net = build_builtin(network, [network_files.load_state_dict(p) for p in paths], source)
    return net.to(device).eval().requires_grad_(False)


# Networks loaded in this process, keyed by files (and their digests), kind and device: periodic evaluation
# during training loads each once, and FID and IS share one Inception.
_loaded: dict[tuple, nn.Module] = {}


def load_detector(role: str, path: str | os.PathLike | None = None, kind: str = "auto",
                  device: torch.device | str = "cpu", cache_dir: str | os.PathLike | None = None) -> Detector:
    """The detector a metric of `role` (`fid`, `is`, `pr`, `ppl`, `classes`) uses: the file at `path` if given
    (or a name of `BUILTIN_DETECTORS`), else the standard network found (or downloaded) as
    `weights.find_weight_files` describes."""
    if role not in ROLES:
        raise KeyError(f"unknown detector role '{role}'; choose one of {sorted(ROLES)}")
    spec = ROLES[role]
    if path is not None and str(path).startswith("builtin:"):
        return _builtin_detector(str(path), role, torch.device(device))
    if path is None and spec.network is None:
        raise UserError("the class metrics need a classifier of the data set's classes: --detector builtin:digits "
                        "(the built-in digits) or a TorchScript network returning one score per class [N, K]")
    if path is not None:
        paths = (Path(path).expanduser(),)
        if not paths[0].is_file():
            raise UserError(f"detector file {paths[0]} does not exist")
        verify_known_file(paths[0])
    else:
        paths = find_weight_files(spec.network, cache_dir)
    device = torch.device(device)
    if kind == "auto":
        kind = network_files.detect_kind(paths[0])
    digests = tuple(file_sha256(p) for p in paths)
    key = (spec.network if kind == "state-dict" else "", tuple(str(p.resolve()) for p in paths), digests, kind,
           str(device))
    if key not in _loaded:
        _loaded[key] = _load_network(spec.network, paths, kind, device)
    return _detector(_loaded[key], role, "+".join(f"{p.name}:{d[:16]}" for p, d in zip(paths, digests)))


def _builtin_detector(name: str, role: str, device: torch.device) -> Detector:
    if name not in BUILTIN_DETECTORS:
        raise UserError(f"unknown built-in detector '{name}'; choose one of: {', '.join(BUILTIN_DETECTORS)}")
    path = BUILTIN_DETECTORS[name]
    digest = file_sha256(path)
    key = (name, str(path), digest, str(device))
    if key not in _loaded:
        _loaded[key] = digits_classifier.load_digits_classifier(path, device)
    return _detector(_loaded[key], role, f"{name}:{digest[:16]}")
