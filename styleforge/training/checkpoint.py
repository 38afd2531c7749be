"""Training checkpoints: everything needed to resume exactly, in one safetensors file.

Tensors: the networks (`G.*`, `D.*`, `G_ema.*`), optimizer state (`opt_G.state.<i>.<name>`), RNG states
(`rng.*`) and any extra state (`extra.*`: loss and augmentation). Metadata (JSON strings): the networks'
names and configs, optimizer param groups, progress (cur_nimg, tick, ...), the training config and
SHA-256 checksums over the tensors and over the metadata (see `networks.persistence`), so a truncated,
corrupted or edited file is refused instead of resuming from garbage. Checkpoints written before the
metadata checksum existed are verified by their tensor checksum alone and still resume.
Nothing in the file is code: loading never unpickles.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from styleforge.errors import UserError
from styleforge.networks.persistence import (
    content_hash,  # noqa: F401  (part of this module's API)
    described_networks,
    metadata_json,
    pack_networks,
    read_metadata,
    save_file_atomic,
    verify_checksums,
)

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^ckpt-(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    path: Path
    networks: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # key -> state dict
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> optimizer state dict
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def _pack_optimizer(key: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = opt.state_dict()
    plain: dict[str, dict[str, Any]] = {}
    for idx, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{key}.state.{idx}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(idx), {})[name] = value
    return {"param_groups": state["param_groups"], "plain_state": plain}


def _unpack_optimizer(key: str, described: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"{key}.state."
    for name, value in tensors.items():
        if name.startswith(prefix):
            idx, entry = name[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[entry] = value
    for idx, entries in described["plain_state"].items():
        state.setdefault(int(idx), {}).update(entries)
    return {"state": state, "param_groups": described["param_groups"]}


def rng_state() -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def restore_rng(states: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(states["torch"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | os.PathLike,
    networks: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    extra: dict[str, torch.Tensor],
    progress: dict[str, Any],
    config: dict[str, Any],
) -> None:
    """Writes the checkpoint atomically (temp file + rename). Refuses non-finite weights, so a diverged
    run never replaces a good checkpoint."""
    for key, net in networks.items():
        for name, value in net.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(f"not saving {path}: {key}.{name} holds non-finite values")
    tensors, metadata = pack_networks(networks)
    optimizer_meta = {key: _pack_optimizer(key, opt, tensors) for key, opt in optimizers.items()}
    tensors.update({f"rng.{k}": v for k, v in rng_state().items()})
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous().clone() for k, v in extra.items()})
    metadata.update(
        kind="checkpoint",
        optimizers=json.dumps(optimizer_meta),
        progress=json.dumps(progress),
        config=json.dumps(config),
    )
    save_file_atomic(tensors, path, metadata)  # adds the checksums


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("kind") != "checkpoint":
        raise UserError(f"{path}: a network file, not a training checkpoint (nothing to resume)")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # safetensors raises several types for damaged data
        raise UserError(f"{path}: cannot read the tensors ({e}); the file is truncated or corrupted") from e
    verify_checksums(path, meta, tensors, required=True)
    ckpt = Checkpoint(path=path, progress=metadata_json(path, meta, "progress"),
                      config=metadata_json(path, meta, "config"))
    for key in described_networks(path, meta):
        prefix = f"{key}."
        ckpt.networks[key] = {n[len(prefix):]: t.to(device) for n, t in tensors.items() if n.startswith(prefix)}
    try:
        for key, described in metadata_json(path, meta, "optimizers").items():
            ckpt.optimizers[key] = _unpack_optimizer(key, described, tensors)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: the metadata 'optimizers' does not describe optimizer states ({e!r}); "
                        "the file is damaged") from None
    for group, target in (("rng.", ckpt.rng), ("extra.", ckpt.extra)):
        target.update({n[len(group):]: t for n, t in tensors.items() if n.startswith(group)})
    return ckpt


def checkpoint_path(run_dir: Path, cur_nimg: int) -> Path:
    return run_dir / CHECKPOINT_DIR / f"ckpt-{cur_nimg:010d}.safetensors"  # named by images shown


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest_good(run_dir: Path, device: str | torch.device = "cpu", log=print) -> Checkpoint:
    """The newest checkpoint of a run that loads; damaged ones are reported and skipped."""
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise UserError(f"{run_dir}: no checkpoints to resume from")
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, device)
        except UserError as e:
            log(f"skipping damaged checkpoint: {e}")
    raise UserError(f"{run_dir}: every checkpoint is damaged; cannot resume")


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints, never the best one (named in best.json)."""
    best_file = Path(run_dir) / CHECKPOINT_DIR / "best.json"
    best = json.loads(best_file.read_text())["path"] if best_file.exists() else None
    for path in list_checkpoints(run_dir)[:-keep]:
        if path.name != best:
            path.unlink()


def record_best(run_dir: Path, path: Path, metric: str, value: float, lower_is_better: bool) -> bool:
    """Remembers `path` as the best checkpoint if `value` beats the recorded best. Returns whether it did."""
    best_file = Path(run_dir) / CHECKPOINT_DIR / "best.json"
    if best_file.exists():
        best = json.loads(best_file.read_text())
        if best["metric"] == metric and (value >= best["value"] if lower_is_better else value <= best["value"]):
            return False
    tmp = best_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"path": path.name, "metric": metric, "value": value}))
    os.replace(tmp, best_file)
    return True
