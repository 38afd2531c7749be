"""Official PyTorch StyleGAN2(-ADA) networks -> ours: parameter names, constructor kwargs and state dicts.

Our modules mirror the official module tree (NVlabs/stylegan2-ada-pytorch `training/networks.py`,
also the `networks_stylegan2.py` of NVlabs/stylegan3), so every official parameter and buffer has
a counterpart of the same name and shape. Buffers are all kept:
- `mapping.w_avg`: the tracked mean w, needed for truncation;
- `noise_const`: the fixed noise of `noise_mode='const'`, part of what an imported model generates;
- `resample_filter`: the FIR filter, used as given (so a model trained with another filter works).
Converting checks that every key is one the official networks have, so a state dict of some other
network fails loudly here instead of half-loading later.

EqGAN-SA's generator (genforce/eqgan-sa, a fork of the same code) maps too: its heatmap encoders
`synthesis.hm_conv{0,1}_b{8,16,32}` and spatial encoding layers `*.sel.{shared.0,sigma,mu,output.1}`
are renamed to ours, and its `use_sel` argument goes into `synthesis_kwargs`. Its SELs hold plain torch.nn
members (InstanceNorm2d, Sequential, LeakyReLU); `check_supported` checks that they compute what ours do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from styleforge.errors import UserError
from styleforge.official.torch_modules import OfficialModule, TorchModule

_LAYER = r"(weight|bias)"
_MAPPING = rf"mapping\.(fc\d+|embed)\.{_LAYER}|mapping\.w_avg"
# Official key patterns; ours are the same names.
OFFICIAL_KEYS: dict[str, list[str]] = {
    "G": [
        _MAPPING,
        r"synthesis\.b\d+\.(const|resample_filter)",
        rf"synthesis\.b\d+\.conv[01]\.({_LAYER}|noise_strength|noise_const|resample_filter|affine\.{_LAYER})",
        rf"synthesis\.b\d+\.torgb\.({_LAYER}|affine\.{_LAYER})",
        r"synthesis\.b\d+\.skip\.(weight|resample_filter)",
    ],
    "D": [
        _MAPPING,
        r"b\d+\.resample_filter",
        rf"b\d+\.(fromrgb|conv0|conv1|skip|conv)\.({_LAYER}|resample_filter)",
        rf"b4\.(fc|out)\.{_LAYER}",
    ],
}
# EqGAN-SA's additions to G, and their names in our modules (official pattern -> our replacement).
_SEL_LAYER = r"synthesis\.b\d+\.(conv[01]|torgb)\.sel"
EQGAN_KEYS = [
    rf"synthesis\.hm_conv[01]_b(8|16|32)\.({_LAYER}|resample_filter)",
    rf"{_SEL_LAYER}\.(shared\.0|sigma|mu|output\.1)\.({_LAYER}|resample_filter)",
]
OFFICIAL_KEYS["G"] += EQGAN_KEYS
EQGAN_RENAMES = [
    (r"synthesis\.hm_conv([01])_b8\.", r"synthesis.heatmap_encoder.levels.0.conv\1."),
    (r"synthesis\.hm_conv([01])_b16\.", r"synthesis.heatmap_encoder.levels.1.conv\1."),
    (r"synthesis\.hm_conv([01])_b32\.", r"synthesis.heatmap_encoder.levels.2.conv\1."),
    (r"\.sel\.shared\.0\.", ".sel.shared."),
    (r"\.sel\.sigma\.", ".sel.gamma."),
    (r"\.sel\.mu\.", ".sel.beta."),
    (r"\.sel\.output\.1\.", ".sel.out."),
]
# Official constructor arguments that only choose a memory layout; ours picks it at run time.
_LAYOUT_ONLY = ("fp16_channels_last", "channels_last")
_SIGNATURES = {
    "G": {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs",
          "use_sel", "config_kwargs"},  # the last two: EqGAN-SA
    "D": {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
          "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"},
}


def _net_kind(net_kind: str) -> str:
    kind = {"g": "G", "generator": "G", "d": "D", "discriminator": "D"}.get(net_kind.lower())
    if kind is None:
        raise ValueError(f"net_kind must be 'G' or 'D', got '{net_kind}'")
    return kind


# The torch.nn members an official network may hold, where it holds them, with the settings our modules
# compute (EqGAN-SA's SEL: InstanceNorm2d(C, affine=False), default eps; LeakyReLU(0.2)).
TORCH_MEMBERS: list[tuple[str, str, dict[str, Any]]] = [
    (r".*\.sel\.inorm_fn", "InstanceNorm2d", {"eps": 1e-5, "affine": False, "track_running_stats": False}),
    (r".*\.sel\.(shared|output)", "Sequential", {}),
    (r".*\.sel\.output\.0", "LeakyReLU", {"negative_slope": 0.2}),
]


def check_supported(net: OfficialModule, key: str, net_kind: str) -> None:
    """UserError for networks of the family that are not StyleGAN2 (yet), and for torch.nn members that
    our modules do not compute; `key` names the network in messages."""
    modules = net.modules()
    if "synthesis.input" in modules or net.class_name == "SynthesisInput":
        raise UserError(f"'{key}' is a StyleGAN3 (alias-free) network; only StyleGAN2 networks can be imported")
    expected = "Generator" if _net_kind(net_kind) == "G" else "Discriminator"
    if net.class_name != expected:
        raise UserError(f"'{key}' is a {net.class_name}, expected an official StyleGAN2 {expected}")
    for name, module in modules.items():
        if isinstance(module, TorchModule):
            check_torch_member(f"{key}.{name}", module)


def check_torch_member(name: str, module: TorchModule) -> None:
    for pattern, class_name, settings in TORCH_MEMBERS:
        if re.fullmatch(pattern, name) and module.class_name == class_name:
            for setting, value in settings.items():
                if module.config[setting] != value:
                    raise UserError(f"'{name}' is a {class_name} with {setting}={module.config[setting]}; "
                                    f"StyleForge's layer computes {setting}={value}")
            return
    raise UserError(f"'{name}' is a torch.nn {module.class_name}; the official network has none there")


def official_name_to_ours(name: str, net_kind: str) -> str:
    """Our parameter/buffer name for an official one (the same name; checked against the official layout)."""
    kind = _net_kind(net_kind)
    if not any(re.fullmatch(p, name) for p in OFFICIAL_KEYS[kind]):
        raise UserError(f"'{name}' is not a parameter or buffer of the official StyleGAN2 {kind}")
    for pattern, replacement in EQGAN_RENAMES if kind == "G" else []:
        name = re.sub(pattern, replacement, name)
    return name


def convert_official_state_dict(state_dict: Mapping[str, torch.Tensor], net_kind: str) -> dict[str, torch.Tensor]:
    """An official Generator ('G') or Discriminator ('D') state dict -> ours, floating tensors as float32."""
    converted = {}
    for name, value in state_dict.items():
        value = torch.as_tensor(value).detach()
        converted[official_name_to_ours(name, net_kind)] = value.float() if value.is_floating_point() else value
    return converted


def _to_json(value: Any) -> Any:
    """EasyDicts, tuples and numpy scalars -> plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def official_kwargs_to_ours(kwargs: Mapping[str, Any], net_kind: str) -> dict[str, Any]:
    """Constructor arguments of an official network -> those of ours (registered as 'stylegan2')."""
    kind = _net_kind(net_kind)
    ours = _to_json(kwargs)
    unknown = sorted(set(ours) - _SIGNATURES[kind])
    if unknown:
        raise UserError(f"official {kind} arguments not supported: {', '.join(unknown)}")
    for sub in ("synthesis_kwargs", "block_kwargs"):
        if sub in ours:  # the official code allows None for an empty dict
            ours[sub] = {k: v for k, v in (ours[sub] or {}).items() if k not in _LAYOUT_ONLY}
    if ours.pop("config_kwargs", None):
        raise UserError("official EqGAN-SA G argument config_kwargs is not supported (expected it empty)")
    if ours.pop("use_sel", False):
        ours["synthesis_kwargs"] = {**(ours.get("synthesis_kwargs") or {}), "use_sel": True}
    return ours


def network_from_official(
    kwargs: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], net_kind: str
) -> nn.Module:
    """Builds our network with the official network's arguments and loads its weights."""
    from styleforge.registry import DISCRIMINATORS, GENERATORS

    kind = _net_kind(net_kind)
    registry = GENERATORS if kind == "G" else DISCRIMINATORS
    net = registry.get("stylegan2")(**official_kwargs_to_ours(kwargs, kind))
    converted = convert_official_state_dict(state_dict, kind)
    if kind == "G" and net.synthesis.heatmap_encoder is None:
        # EqGAN-SA builds heatmap encoders even without spatial encoding layers; they are unused then.
        converted = {k: v for k, v in converted.items() if not k.startswith("synthesis.heatmap_encoder.")}
    try:
        net.load_state_dict(converted)
    except RuntimeError as e:
        raise UserError(f"official {kind} weights do not fit its arguments: {e}") from e
    return net
