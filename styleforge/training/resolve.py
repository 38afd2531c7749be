"""From what the user gave to a resolved, checked run: the resumed checkpoint's config merged with the
user's options, the data set's header (resolution, channels, labels), the preset's values, and the check
that the chosen networks, loss, regularizers and augmentation fit together. Nothing is trained or
allocated here, so `--dry-run` and a bad option cost seconds, and every problem is one clear line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import styleforge.augment  # noqa: F401  (registers augmentations)
import styleforge.losses  # noqa: F401  (registers losses and regularizers)
import styleforge.metrics  # noqa: F401  (registers metrics)
import styleforge.networks  # noqa: F401  (registers networks)
from styleforge.data.dataset import ImageDataset
from styleforge.errors import UserError
from styleforge.networks.spec import NetworkSpec, build_network
from styleforge.registry import AUGMENTATIONS, DISCRIMINATORS, GENERATORS, LOSSES, METRICS, REGULARIZERS
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.config import TrainConfig, option, resolve, upgrade_legacy

# Options a resumed run may change; any other option must match the checkpoint's config.
RESUME_OVERRIDES = {"kimg", "time_budget", "tick_kimg", "snap", "keep", "metrics", "metrics_detector",
                    "metrics_num_gen", "workers", "data", "resume", "outdir", "compile", "threads"}


@dataclass
class ResolvedRun:
    cfg: TrainConfig
    dataset: ImageDataset
    spec: NetworkSpec  # what G and D are built from
    resumed: ckpt_io.Checkpoint | None = None


def resolve_run(user_options: dict[str, Any], world_size: int = 1,
                log: Callable[[str], None] = print) -> ResolvedRun:
    """`user_options`: the config fields the user set (CLI or API); the rest comes from the preset or, when
    resuming, from the checkpoint."""
    base = TrainConfig.from_dict(user_options)
    resumed = None
    if base.resume:
        resumed = find_resume_checkpoint(base.resume, Path(base.outdir), log)
        base = TrainConfig.from_dict(merge_resumed_config(resumed.config, user_options))
    if not base.data:
        raise UserError("--data is required (a data set written by `styleforge dataset`)")
    dataset = ImageDataset(base.data, xflip=base.mirror, use_labels=base.cond)
    cfg = resolve(base, dataset.resolution, world_size)
    cfg.data = str(Path(cfg.data).resolve())  # so the run resumes from any working directory
    if cfg.cond and not dataset.has_labels:
        raise UserError(f"--cond: the data set {cfg.data} has no labels")
    spec = network_spec(cfg, dataset.resolution, dataset.num_channels, dataset.label_dim if cfg.cond else 0)
    check_components(cfg, spec)
    return ResolvedRun(cfg, dataset, spec, resumed)


def network_spec(cfg: TrainConfig, resolution: int, channels: int, c_dim: int) -> NetworkSpec:
    """The one place where the config's option names become the networks' argument names."""
    return NetworkSpec(img_resolution=resolution, img_channels=channels, c_dim=c_dim, z_dim=cfg.z_dim,
                       w_dim=cfg.w_dim, mapping_layers=cfg.map_layers, channel_base=cfg.cbase, channel_max=cfg.cmax,
                       mbstd_group_size=cfg.mbstd_group, num_fp16_res=cfg.fp16_res or 0, conv_clamp=cfg.conv_clamp,
                       g_architecture=cfg.g_arch, d_architecture=cfg.d_arch, use_sel=cfg.sel)


def check_components(cfg: TrainConfig, spec: NetworkSpec) -> None:
    """Every name is registered, the networks accept their arguments, and the loss, regularizers and
    augmentation work with the networks; otherwise one line that names the options and why."""
    G_class, D_class = GENERATORS.get(cfg.g), DISCRIMINATORS.get(cfg.d)
    loss_class = LOSSES.get(cfg.loss)
    AUGMENTATIONS.get(cfg.aug)
    for name in cfg.metrics:
        METRICS.get(name)  # unknown names fail now, not at the first snapshot
    # Built on the meta device: every constructor argument is checked, nothing is allocated.
    with torch.device("meta"):
        for kind, cls, name, extra in (("g", G_class, cfg.g, cfg.g_kwargs), ("d", D_class, cfg.d, cfg.d_kwargs)):
            try:
                build_network(cls, spec, extra)
            except (TypeError, ValueError, UserError) as e:
                given = f" with --{kind}-kwargs '{json.dumps(extra)}'" if extra else ""
                raise UserError(f"--{kind} {name}{given}: {e}") from None
    if cfg.sel and not getattr(G_class, "supports_sel", False):
        raise UserError(f"--sel: --g {cfg.g} has no spatial encoding layers (--g stylegan2 has)")
    reason = loss_class.incompatibility(cfg, G_class, D_class)
    if reason is not None:
        raise UserError(reason)
    for reg_name in REGULARIZERS.names():
        reg_class = REGULARIZERS.get(reg_name)
        if not getattr(cfg, reg_class.option):
            continue
        reason = reg_class.incompatibility(cfg, loss_class, G_class, D_class)
        if reason is not None:
            raise UserError(f"{option(reg_class.option)} with --loss {cfg.loss} (--g {cfg.g} --d {cfg.d}): {reason}")


def find_resume_checkpoint(resume: str, outdir: Path, log: Callable[[str], None]) -> ckpt_io.Checkpoint:
    """`resume` is a checkpoint file, a run directory, or "latest" (newest run in `outdir`)."""
    if resume == "latest":
        runs = sorted(p for p in outdir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if ckpt_io.list_checkpoints(p))
        if not runs:
            raise UserError(f"--resume latest: no run with checkpoints in {outdir}")
        return ckpt_io.load_latest_good(runs[-1], log=log)
    path = Path(resume)
    if path.is_dir():
        return ckpt_io.load_latest_good(path, log=log)
    return ckpt_io.load_checkpoint(path)


def merge_resumed_config(saved: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's config with the options the user set explicitly; conflicting ones are refused."""
    merged = upgrade_legacy(saved)
    for key, value in upgrade_legacy(user).items():
        if key in RESUME_OVERRIDES:
            merged[key] = value
        elif value != merged.get(key) and not (isinstance(value, tuple) and list(value) == merged.get(key)):
            raise UserError(f"{option(key)}={value!r} conflicts with the resumed run's {merged.get(key)!r}; "
                            "a resumed run keeps its configuration (drop the option or start a new run)")
    return merged
