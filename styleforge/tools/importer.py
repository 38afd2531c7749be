"""Import of official NVlabs StyleGAN2 pickles into a StyleForge network file.

Reads the pickle safely (`official_pickle`: no code from the file ever runs), recognizes which networks
it holds, rebuilds G, D and G_ema as our `stylegan2` networks from the official constructor arguments and
weights (`networks.official`: our module tree mirrors the official one), and writes them into one
safetensors file that `styleforge.load` reads (G_ema by default).

Supported: stylegan2-ada-pytorch snapshots (`network-snapshot-*.pkl` and the published models) and the
StyleGAN2 networks of the stylegan3 repository (same pickle format), and EqGAN-SA's (StyleGAN2-ADA plus
heatmap encoders and spatial-encoding layers, e.g. its LSUN Cat model). StyleGAN3's alias-free networks
are recognized and refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from styleforge.errors import UserError
from styleforge.networks.persistence import pack_networks, save_file_atomic
from styleforge.tools.official_pickle import OfficialModule, read_official_pickle

# Pickle key -> kind of network in networks.official ("G" or "D").
NETWORK_KEYS = {"G": "G", "D": "D", "G_ema": "G"}


def check_supported(net: OfficialModule, key: str) -> None:
    """UserError for networks of the family that are not StyleGAN2 (yet)."""
    modules = net.modules()
    if "synthesis.input" in modules or net.class_name == "SynthesisInput":
        raise UserError(f"'{key}' is a StyleGAN3 (alias-free) network; only StyleGAN2 networks can be imported")
    expected = "Generator" if NETWORK_KEYS[key] == "G" else "Discriminator"
    if net.class_name != expected:
        raise UserError(f"'{key}' is a {net.class_name}, expected an official StyleGAN2 {expected}")


def convert_network(net: OfficialModule, key: str) -> nn.Module:
    """Our network with the official network's arguments and every one of its tensors."""
    from styleforge.networks.official import network_from_official

    check_supported(net, key)
    return network_from_official(net.init_kwargs, net.state_dict(), NETWORK_KEYS[key])


@dataclass
class ImportResult:
    path: Path
    networks: dict[str, int]  # key -> number of tensors imported
    skipped: list[str]  # pickle entries not imported (e.g. augment_pipe)


def import_official_pickle(pkl_path: str | os.PathLike, out_path: str | os.PathLike) -> ImportResult:
    """Converts an official pickle into a StyleForge network file holding its G, D and G_ema."""
    data = read_official_pickle(pkl_path)
    present = {key: data[key] for key in NETWORK_KEYS if data.get(key) is not None}
    if not present:
        raise UserError(f"{pkl_path}: holds no networks (keys: {sorted(map(str, data))}); expected G, D or G_ema")
    networks = {}
    for key, net in present.items():
        if not isinstance(net, OfficialModule):
            raise UserError(f"{pkl_path}: '{key}' is a {type(net).__name__}, not an official persistent network")
        try:
            networks[key] = convert_network(net, key)
        except UserError as e:
            raise UserError(f"{pkl_path}: {e}") from e
    tensors, metadata = pack_networks(networks)
    metadata["imported_from"] = Path(pkl_path).name
    if isinstance(data.get("training_set_kwargs"), dict):
        metadata["training_set_kwargs"] = json.dumps(data["training_set_kwargs"], default=_plain)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file_atomic(tensors, out_path, metadata)
    counts = {key: len(net.state_dict()) for key, net in networks.items()}
    skipped = sorted(str(k) for k, v in data.items()
                     if k not in networks and k != "training_set_kwargs" and v is not None)
    return ImportResult(path=out_path, networks=counts, skipped=skipped)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
