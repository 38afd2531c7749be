"""Import of official network pickles into a StyleForge network file, and a listing of what they hold.

Formats (the pickle is read by `unpickler`, so no code from the file ever runs):
- PyTorch: stylegan2-ada-pytorch snapshots (`network-snapshot-*.pkl`, the published models), the
  StyleGAN2 networks of stylegan3 pickles (same format), and EqGAN-SA's (StyleGAN2-ADA plus heatmap
  encoders and spatial encoding layers, e.g. its LSUN Cat model): a dict {G, D, G_ema, augment_pipe,
  training_set_kwargs}. Our 'stylegan2' modules mirror theirs (`names`). StyleGAN3's alias-free networks are
  recognized and refused.
- TensorFlow: a tuple (G, D, Gs) of dnnlib.tflib Networks from NVlabs/stylegan2 and stylegan2-ada
  (StyleGAN2 config E/F, `tf_stylegan2`), NVlabs/stylegan (StyleGAN v1, `tf_stylegan1`) and
  tkarras/progressive_growing_of_gans (ProGAN, `tf_progan`); Gs becomes our G_ema.
G, D and G_ema go into one safetensors file that `styleforge.load` reads (G_ema by default).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styleforge.errors import UserError
from styleforge.networks.persistence import pack_networks, save_file_atomic
from styleforge.official import tf_progan, tf_stylegan1, tf_stylegan2
from styleforge.official.names import check_supported, network_from_official
from styleforge.official.tf import TFNetwork
from styleforge.official.torch_modules import OfficialModule
from styleforge.official.unpickler import read_pickle

# Pickle key -> kind of network ("G" or "D"); a TF pickle's (G, D, Gs) get these keys in this order.
NETWORK_KEYS = {"G": "G", "D": "D", "G_ema": "G"}
TF_CONVERTERS = {**tf_stylegan2.CONVERTERS, **tf_stylegan1.CONVERTERS, **tf_progan.CONVERTERS}
TF_FAMILIES = {"G_main": "StyleGAN2", "G_style": "StyleGAN v1", "G_paper": "ProGAN"}


@dataclass
class PickleContents:
    """An official pickle read without converting anything."""

    format: str  # "PyTorch" or "TensorFlow"
    keys: list[str]  # the top-level keys (TF: the tuple's positions as G, D, G_ema)
    entries: dict[str, Any]

    @property
    def networks(self) -> dict[str, OfficialModule | TFNetwork]:
        return {k: v for k, v in self.entries.items() if k in NETWORK_KEYS and v is not None}

    @property
    def family(self) -> str:
        nets = list(self.networks.values())
        if self.format == "TensorFlow":
            generators = [n.build_func_name for n in nets if n.build_func_name in TF_FAMILIES]
            return TF_FAMILIES[generators[0]] if generators else "unknown TF networks"
        if any("synthesis.hm_conv0_b8" in n.modules() for n in nets if isinstance(n, OfficialModule)):
            return "EqGAN-SA"
        return "StyleGAN2-ADA"


def read_contents(path: str | os.PathLike) -> PickleContents:
    """The networks and other entries of an official pickle, PyTorch or TensorFlow."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        raise UserError(f"{path}: is a zip archive (torch.save's format: a state dict or another framework's "
                        "checkpoint), not an official network pickle")
    data = read_pickle(path)
    if isinstance(data, int) and data == torch.serialization.MAGIC_NUMBER:
        raise UserError(f"{path}: is a torch.save file of the old format (a state dict or another framework's "
                        "checkpoint), not an official network pickle")
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        return PickleContents("TensorFlow", list(NETWORK_KEYS), dict(zip(NETWORK_KEYS, data)))
    if isinstance(data, TFNetwork):
        raise UserError(f"{path}: holds one TF network ('{data.name}'); expected the tuple (G, D, Gs)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a {type(data).__name__}, not an official pickle's dict of networks or "
                        "TF tuple (G, D, Gs)")
    contents = PickleContents("PyTorch", [str(k) for k in data], {str(k): v for k, v in data.items()})
    if not contents.networks:
        keys = ", ".join(contents.keys[:4]) + (f", ... ({len(contents.keys)} keys)" if len(contents.keys) > 4 else "")
        raise UserError(f"{path}: holds no networks (keys: {keys or 'none'}); expected G, D or G_ema (a plain "
                        "state dict or another framework's checkpoint is not an official pickle)")
    for key, net in contents.networks.items():
        if not isinstance(net, OfficialModule):
            raise UserError(f"{path}: '{key}' is a {type(net).__name__}, not an official persistent network")
    return contents


def convert_network(net: OfficialModule | TFNetwork, key: str) -> nn.Module:
    """Our network with the official network's arguments and every one of its tensors."""
    if isinstance(net, TFNetwork):
        convert = TF_CONVERTERS.get(net.build_func_name)
        if convert is None:
            raise UserError(f"'{key}' is a TF network built by {net.build_func_name}, which StyleForge cannot "
                            f"convert (known: {', '.join(sorted(TF_CONVERTERS))})")
        return convert(net)
    check_supported(net, key, NETWORK_KEYS[key])
    return network_from_official(net.init_kwargs, net.state_dict(), NETWORK_KEYS[key])


@dataclass
class ImportResult:
    path: Path
    format: str  # e.g. "StyleGAN2 (TensorFlow)"
    networks: dict[str, int]  # key -> number of tensors imported
    skipped: list[str]  # pickle entries not imported (e.g. augment_pipe)


def import_official_pickle(pkl_path: str | os.PathLike, out_path: str | os.PathLike) -> ImportResult:
    """Converts an official pickle into a StyleForge network file holding its G, D and G_ema."""
    contents = read_contents(pkl_path)
    networks = {}
    for key, net in contents.networks.items():
        try:
            networks[key] = convert_network(net, key)
        except UserError as e:
            raise UserError(f"{pkl_path}: {e}") from e
    tensors, metadata = pack_networks(networks)
    metadata["imported_from"] = Path(pkl_path).name
    if isinstance(contents.entries.get("training_set_kwargs"), dict):
        metadata["training_set_kwargs"] = json.dumps(contents.entries["training_set_kwargs"], default=_plain)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file_atomic(tensors, out_path, metadata)
    counts = {key: len(net.state_dict()) for key, net in networks.items()}
    skipped = sorted(k for k, v in contents.entries.items()
                     if k not in networks and k != "training_set_kwargs" and v is not None)
    return ImportResult(out_path, f"{contents.family} ({contents.format})", counts, skipped)


def describe(pkl_path: str | os.PathLike) -> list[str]:
    """Lines saying what an official pickle holds: format, every top-level entry, each network's class,
    resolution and z/w/c dims. Reads the pickle only; nothing is converted."""
    contents = read_contents(pkl_path)
    lines = [f"{pkl_path}: {contents.family} ({contents.format})", f"keys: {', '.join(contents.keys)}"]
    width = max(map(len, contents.keys))
    for key in contents.keys:
        lines.append(f"  {key:<{width}}  {_describe_entry(contents.entries[key], key in NETWORK_KEYS)}")
    return lines


def _describe_entry(value: Any, is_network: bool) -> str:
    if isinstance(value, TFNetwork):
        args = value.all_static_kwargs()
        dims = {"z": args.get("latent_size"), "w": args.get("dlatent_size"), "c": args.get("label_size", 0)}
        return f"TF {value.build_func_name}{_dims(args.get('resolution'), dims)}"
    if isinstance(value, OfficialModule):
        args = value.init_kwargs
        dims = {"z": args.get("z_dim"), "w": args.get("w_dim"), "c": args.get("c_dim")}
        note = "" if is_network else " (not imported)"
        return f"{value.class_name}{_dims(args.get('img_resolution'), dims)}{note}"
    if isinstance(value, dict):
        return f"dict with {len(value)} entries"
    return "None" if value is None else type(value).__name__


def _dims(resolution: Any, dims: dict[str, Any]) -> str:
    parts = [f"{resolution}x{resolution}"] if resolution else []
    parts += [f"{k}_dim {v}" for k, v in dims.items() if v is not None]
    return f": {', '.join(parts)}" if parts else ""


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
