"""Training configuration: one typed, validated dataclass, filled from a preset and command-line overrides.

Every field is a command-line option (`--field-name`); a field left at None takes its value from the
preset (`--cfg`), and a preset leaves untouched whatever the user set. The resolved config is written as
JSON into the run directory and into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from styleforge.errors import UserError
from styleforge.training.performance import default_precision

PRESETS = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "cpu")


@dataclass
class TrainConfig:
    # --- data and run -------------------------------------------------------------------------------
    data: str = ""  # data set ZIP or folder written by `styleforge dataset`
    outdir: str = "runs"  # runs go to OUTDIR/NNNNN-<desc>/
    desc: str | None = None  # run name suffix (default: data set name, preset, methods)
    cfg: str = "auto"  # preset: auto, stylegan2, paper256, paper512, paper1024, cifar, cpu
    cond: bool = False  # train on the data set's labels
    mirror: bool = False  # x-flip: doubles the data set with mirrored images
    seed: int = 0  # random seed of the networks' init, latents and data order
    kimg: float | None = None  # training length in thousands of real images shown to D
    time_budget: float | None = None  # stop (with a checkpoint) after this many seconds
    # --- batch and optimisation ---------------------------------------------------------------------
    batch: int | None = None  # global batch over all ranks
    batch_gpu: int | None = None  # images per forward pass (gradient accumulation when < batch / ranks)
    glr: float | None = None  # G learning rate (Adam)
    dlr: float | None = None  # D learning rate (Adam)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas of G and D
    eps: float = 1e-8  # Adam epsilon
    # --- networks -----------------------------------------------------------------------------------
    g: str = "stylegan2"  # generator registry name
    d: str = "stylegan2"  # discriminator registry name
    g_arch: str = "skip"  # StyleGAN2 G architecture: orig, skip, resnet
    d_arch: str | None = None  # default resnet (orig for cifar)
    z_dim: int | None = None  # latent z size
    w_dim: int | None = None  # intermediate latent w size
    map_layers: int | None = None  # mapping network depth
    cbase: int | None = None  # channel_base; channels at res r = min(cbase / r, cmax)
    cmax: int | None = None  # channel_max: the most channels of any layer
    mbstd_group: int | None = None  # minibatch-stddev group size of D
    fp16_res: int | None = None  # reduced precision on the top N resolutions (CUDA only)
    conv_clamp: float | None = None  # clamp of conv outputs (the official fp16 setting: 256)
    sel: bool = False  # EqGAN-SA: spatial encoding layers fed by random heatmaps in G
    g_kwargs: dict[str, Any] = field(default_factory=dict)  # extra generator kwargs (JSON)
    d_kwargs: dict[str, Any] = field(default_factory=dict)  # extra discriminator kwargs (JSON)
    # --- loss and regularisation --------------------------------------------------------------------
    loss: str = "stylegan2"  # loss registry name
    gamma: float | None = None  # R1 weight
    r1_interval: int = 16  # lazy regularisation interval of R1 (0: every step, in D main)
    pl_weight: float | None = None  # path-length regularisation weight (0: off)
    pl_interval: int = 4  # lazy regularisation interval of path length
    pl_decay: float = 0.01  # decay of the path-length running mean
    pl_batch_shrink: int = 2  # path length runs on batch / this many images
    style_mixing: float | None = None  # probability of mixing two latents in a G step
    ema_kimg: float | None = None  # G EMA half-life in kimg
    ema_rampup: float | None = None  # EMA half-life ramp-up (fraction of cur_nimg), 0 or None: off
    fsmr_weight: float = 0.0  # FSMR: feature-statistics mixing penalty in D's loss (0: off; paper: 0.05)
    fsmr_fakes: bool = False  # FSMR: the penalty on fakes too (default: reals only)
    align_loss: bool = False  # EqGAN-SA: align D's attention (Grad-CAM) on fakes with G's heatmaps
    loss_kwargs: dict[str, Any] = field(default_factory=dict)  # extra loss kwargs (JSON)
    # --- progressive growing (ProGAN, StyleGAN v1) ---------------------------------------------------
    grow: bool = False  # grow G and D from grow_init_res, fading in each doubling (--g/--d progan or stylegan1)
    grow_init_res: int = 4  # resolution that progressive growing starts at
    grow_stable_kimg: float = 600  # kimg at each resolution before the next one fades in
    grow_fade_kimg: float = 600  # kimg of each fade-in
    grow_batch: dict[str, int] = field(default_factory=dict)  # global batch per resolution ({"4": 64}; else --batch)
    # --- augmentation -------------------------------------------------------------------------------
    aug: str = "none"  # augmentation registry name: none, ada, diffaug
    aug_p: float | None = None  # fixed p for ada (disables the adaptation)
    ada_target: float = 0.6  # ADA: target of E[sign(D(real))]
    ada_kimg: float = 500  # ADA: kimg for p to move from 0 to 1 at full speed
    ada_interval: int = 4  # ADA: adjust p every this many D steps
    aug_kwargs: dict[str, Any] = field(default_factory=dict)  # extra augmentation kwargs (JSON)
    # --- performance --------------------------------------------------------------------------------
    precision: str | None = None  # fp32, or bf16: bfloat16 autocast (default: bf16 where faster, on CPUs with AMX)
    compile: bool = False  # torch.compile the networks
    threads: int | None = None  # CPU threads (default: this process's CPUs, fewer while others keep them busy)
    workers: int = 1  # data loader worker processes
    # --- reporting and checkpoints ------------------------------------------------------------------
    tick_kimg: float | None = None  # progress/stats interval
    snap: int | None = None  # checkpoint and sample grid every N ticks
    keep: int = 3  # keep the last K checkpoints (plus the best by metric)
    metrics: list[str] = field(default_factory=list)  # metrics evaluated at each checkpoint (first one: best)
    metrics_detector: str | None = None  # feature network file for the metrics (default: the standard one)
    metrics_num_gen: int | None = None  # generated images per metric (default: the metric's own, e.g. 50k)
    grid_seeds: int = 32  # number of fixed seeds in the sample grids
    resume: str | None = None  # checkpoint path, a run directory, or "latest"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(f"unknown config option(s): {', '.join(unknown)}")
        cfg = cls(**values)
        if isinstance(cfg.betas, list):
            cfg.betas = tuple(cfg.betas)
        return cfg


def loss_options(cfg: TrainConfig) -> dict[str, Any]:
    """Loss kwargs beyond the StyleGAN2 basics: the family's regularizers that are switched on (so a loss
    without them still builds when they are off), then `loss_kwargs`, which override."""
    options: dict[str, Any] = {}
    if cfg.fsmr_weight:
        options.update(fsmr_weight=cfg.fsmr_weight, fsmr_fakes=cfg.fsmr_fakes)
    if cfg.align_loss:
        options["align_weight"] = 1.0
    return {**options, **cfg.loss_kwargs}


def preset_values(cfg: str, resolution: int, world_size: int) -> dict[str, Any]:
    """The values a preset gives (train.py of stylegan2-ada-pytorch; `cpu` is ours, for demos and tests)."""
    if cfg == "auto":
        batch = max(min(world_size * min(4096 // resolution, 32), 64), world_size)
        return dict(
            kimg=25000, batch=batch, mbstd_group=min(batch // world_size, 4),
            cbase=16384 if resolution < 512 else 32768, glr=0.002 if resolution >= 1024 else 0.0025,
            gamma=0.0002 * resolution**2 / batch, ema_kimg=batch * 10 / 32, ema_rampup=0.05, map_layers=2,
        )
    table = {
        "stylegan2": dict(kimg=25000, batch=32, mbstd_group=4, cbase=32768, glr=0.002, gamma=10, ema_kimg=10),
        "paper256": dict(kimg=25000, batch=64, mbstd_group=8, cbase=16384, glr=0.0025, gamma=1, ema_kimg=20),
        "paper512": dict(kimg=25000, batch=64, mbstd_group=8, cbase=32768, glr=0.0025, gamma=0.5, ema_kimg=20),
        "paper1024": dict(kimg=25000, batch=32, mbstd_group=4, cbase=32768, glr=0.002, gamma=2, ema_kimg=10),
        "cifar": dict(kimg=100000, batch=64, mbstd_group=32, cbase=32768, glr=0.0025, gamma=0.01, ema_kimg=500,
                      ema_rampup=0.05, map_layers=2, pl_weight=0, style_mixing=0, d_arch="orig"),
        # Small enough to learn the built-in digits on two CPU cores in minutes.
        "cpu": dict(kimg=100, batch=32, mbstd_group=4, cbase=1024, glr=0.0025, gamma=0.05, ema_kimg=2,
                    ema_rampup=0.05, map_layers=2, cmax=64, z_dim=64, w_dim=64, tick_kimg=1, snap=5),
    }
    if cfg not in table:
        raise UserError(f"unknown preset --cfg {cfg!r}; choose one of: {', '.join(PRESETS)}")
    return table[cfg]


# What every preset shares unless it says otherwise.
COMMON_DEFAULTS = dict(
    map_layers=8, pl_weight=2.0, style_mixing=0.9, ema_rampup=0.0, d_arch="resnet",
    cmax=512, z_dim=512, w_dim=512, tick_kimg=4.0, snap=10,
)


def resolve(cfg: TrainConfig, resolution: int, world_size: int) -> TrainConfig:
    """Fills the fields the user left at None from the preset, then validates."""
    values = dataclasses.asdict(cfg)
    for key, value in {**COMMON_DEFAULTS, **preset_values(cfg.cfg, resolution, world_size)}.items():
        if values[key] is None:
            values[key] = value
    if values["dlr"] is None:
        values["dlr"] = values["glr"]
    if values["batch_gpu"] is None:
        values["batch_gpu"] = values["batch"] // world_size if values["batch"] else None
    if values["precision"] is None and values["batch_gpu"]:
        values["precision"] = default_precision(values, resolution)
    out = TrainConfig.from_dict(values)
    validate(out, resolution, world_size)
    return out


def validate(cfg: TrainConfig, resolution: int, world_size: int) -> None:
    def bad(msg: str) -> None:
        raise UserError(msg)

    if not cfg.data:
        bad("--data is required (a data set written by `styleforge dataset`)")
    if resolution < 4 or 2 ** int(math.log2(resolution)) != resolution:
        bad(f"data set resolution {resolution} is not a power of two >= 4")
    if cfg.batch is None or cfg.batch <= 0:
        bad(f"--batch must be positive (got {cfg.batch})")
    if cfg.batch % world_size:
        bad(f"--batch {cfg.batch} is not divisible by the number of processes ({world_size})")
    if cfg.batch_gpu <= 0 or (cfg.batch // world_size) % cfg.batch_gpu:
        bad(f"--batch-gpu {cfg.batch_gpu} must divide the per-process batch {cfg.batch // world_size}")
    if cfg.mbstd_group and cfg.batch_gpu % cfg.mbstd_group and cfg.mbstd_group < cfg.batch_gpu:
        bad(f"--mbstd-group {cfg.mbstd_group} must divide --batch-gpu {cfg.batch_gpu}")
    if cfg.precision == "fp16":
        bad("--precision fp16 does not exist: float16 runs per block, as in the official code (--fp16-res N, "
            "CUDA only); or use --precision bf16")
    if cfg.precision not in ("fp32", "bf16"):
        bad(f"--precision must be fp32 or bf16 (got {cfg.precision!r})")
    if cfg.aug_p is not None and cfg.aug != "ada":
        bad(f"--aug-p fixes the probability of ADA; it has no effect with --aug {cfg.aug}")
    if cfg.aug_p is not None and not 0 <= cfg.aug_p <= 1:
        bad(f"--aug-p must lie in [0, 1] (got {cfg.aug_p})")
    for name in ("glr", "dlr", "kimg", "tick_kimg", "ema_kimg"):
        if getattr(cfg, name) is not None and getattr(cfg, name) <= 0:
            bad(f"--{name.replace('_', '-')} must be positive (got {getattr(cfg, name)})")
    if cfg.fsmr_fakes and not cfg.fsmr_weight:
        bad("--fsmr-fakes applies the FSMR penalty to fakes too; switch it on with --fsmr-weight (e.g. 0.05)")
    for name in ("gamma", "pl_weight", "style_mixing", "fsmr_weight"):
        if getattr(cfg, name) < 0:
            bad(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(cfg, name)})")
    if not 0 <= cfg.style_mixing <= 1:
        bad(f"--style-mixing is a probability (got {cfg.style_mixing})")
    if cfg.r1_interval < 0 or cfg.pl_interval < 1:
        bad("--r1-interval must be >= 0 and --pl-interval >= 1")
    if cfg.pl_batch_shrink < 1 or cfg.batch_gpu % cfg.pl_batch_shrink and cfg.pl_weight > 0:
        bad(f"--pl-batch-shrink {cfg.pl_batch_shrink} must divide --batch-gpu {cfg.batch_gpu}")
    if cfg.snap < 1 or cfg.keep < 1:
        bad("--snap and --keep must be >= 1")
    validate_growing(cfg, resolution, world_size)


def validate_growing(cfg: TrainConfig, resolution: int, world_size: int) -> None:
    if not cfg.grow:
        return
    if not 4 <= cfg.grow_init_res <= resolution or cfg.grow_init_res & (cfg.grow_init_res - 1):
        raise UserError(f"--grow-init-res must be a power of two in [4, {resolution}] (got {cfg.grow_init_res})")
    if cfg.grow_stable_kimg < 0 or cfg.grow_fade_kimg < 0:
        raise UserError("--grow-stable-kimg and --grow-fade-kimg must be >= 0")
    for res, batch in cfg.grow_batch.items():
        if not str(res).isdigit() or int(res) not in [2**i for i in range(2, resolution.bit_length())]:
            raise UserError(f"--grow-batch: {res!r} is not a resolution of this run (4 .. {resolution})")
        # Each step uses min(--batch-gpu, per-process batch) images per forward pass.
        batch_gpu = min(cfg.batch_gpu, batch // world_size) if isinstance(batch, int) else 0
        if batch_gpu <= 0 or batch % world_size or (batch // world_size) % batch_gpu:
            raise UserError(f"--grow-batch: batch {batch!r} at {res} px must be a multiple of the number of "
                            f"processes ({world_size}) that --batch-gpu {cfg.batch_gpu} divides per process")
        if cfg.mbstd_group and batch_gpu % cfg.mbstd_group and cfg.mbstd_group < batch_gpu:
            raise UserError(f"--grow-batch: --mbstd-group {cfg.mbstd_group} must divide the {batch_gpu} images "
                            f"per forward pass at {res} px")
