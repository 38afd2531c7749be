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

import torch

import styleforge.losses  # noqa: F401  (registers the losses, whose regularizer weights resolve reads)
import styleforge.networks  # noqa: F401  (registers the networks, whose capabilities resolve reads)
from styleforge.errors import UserError
from styleforge.registry import GENERATORS, LOSSES
from styleforge.training.performance import default_precision

PRESETS = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "lowshot", "stylegan1", "progan",
           "msg-stylegan", "cpu")


@dataclass
class TrainConfig:
    # --- data and run -------------------------------------------------------------------------------
    data: str = ""  # data set ZIP or folder written by `styleforge dataset`
    outdir: str = "runs"  # runs go to OUTDIR/NNNNN-<desc>/
    desc: str | None = None  # run name suffix (default: data set name, preset, methods)
    cfg: str = "auto"  # preset: the official settings of a paper (docs/family.md), or cpu for demos (default: auto)
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
    g: str | None = None  # generator registry name (default: stylegan2)
    d: str | None = None  # discriminator registry name (default: stylegan2)
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
    sel: bool | None = None  # EqGAN-SA: G's spatial encoding layers with random heatmaps (default: with --align-weight)
    g_kwargs: dict[str, Any] = field(default_factory=dict)  # extra generator kwargs (JSON)
    d_kwargs: dict[str, Any] = field(default_factory=dict)  # extra discriminator kwargs (JSON)
    # --- loss and regularisation --------------------------------------------------------------------
    loss: str | None = None  # loss registry name (default: stylegan2)
    gamma: float | None = None  # R1 weight (0: off)
    gp_weight: float | None = None  # WGAN-GP gradient penalty weight (0: off; default: the loss's, 10 for wgangp)
    drift_weight: float | None = None  # ProGAN's drift penalty on D(reals)^2 (0: off; default: the loss's)
    r1_interval: int | None = None  # lazy interval of D's regularizers, R1 and GP (0: every step; default 16)
    pl_weight: float | None = None  # path-length regularisation weight (0: off)
    pl_interval: int | None = None  # lazy interval of G's regularizer, path length (0: every step; default 4)
    pl_decay: float = 0.01  # decay of the path-length running mean
    pl_batch_shrink: int = 2  # path length runs on batch / this many images
    style_mixing: float | None = None  # probability of mixing two latents in a G step
    ema_kimg: float | None = None  # G EMA half-life in kimg
    ema_rampup: float | None = None  # EMA half-life ramp-up (fraction of cur_nimg), 0 or None: off
    trunc_psi: float | None = None  # truncation psi the tools use by default for this model (1: none)
    trunc_cutoff: int | None = None  # truncation on the first N ws only (default: all)
    fsmr_weight: float = 0.0  # FSMR: feature-statistics mixing penalty in D's loss (0: off; paper: 0.05)
    fsmr_fakes: bool = False  # FSMR: the penalty on fakes too (default: reals only)
    align_weight: float = 0.0  # EqGAN-SA: align D's attention (Grad-CAM) on fakes with G's heatmaps (paper: 1)
    loss_kwargs: dict[str, Any] = field(default_factory=dict)  # extra loss kwargs (JSON)
    # --- progressive growing (ProGAN, StyleGAN v1) ---------------------------------------------------
    grow: bool | None = None  # grow G and D from grow_init_res, fading in each doubling (--g/--d progan or stylegan1)
    grow_init_res: int | None = None  # resolution that progressive growing starts at (default 4)
    grow_stable_kimg: float = 600  # kimg at each resolution before the next one fades in
    grow_fade_kimg: float = 600  # kimg of each fade-in
    grow_batch: dict[str, int] | None = None  # global batch per resolution ({"4": 64}; else --batch)
    grow_lr: dict[str, float] | None = None  # G and D learning rate per resolution ({"128": 0.0015}; else --glr)
    # --- augmentation -------------------------------------------------------------------------------
    aug: str | None = None  # augmentation registry name (default: none)
    aug_p: float | None = None  # fixed p for ada (disables the adaptation)
    ada_target: float = 0.6  # ADA: target of E[sign(D(real))]
    ada_kimg: float = 500  # ADA: kimg for p to move from 0 to 1 at full speed
    ada_interval: int = 4  # ADA: adjust p every this many D steps
    aug_kwargs: dict[str, Any] = field(default_factory=dict)  # extra augmentation kwargs (JSON)
    # --- performance --------------------------------------------------------------------------------
    precision: str | None = None  # fp32, or bf16: bfloat16 autocast (default: bf16 where faster, on CPUs with AMX)
    compile: bool = False  # torch.compile the networks
    threads: int | None = None  # CPU threads; fixed ones make runs reproducible bit for bit (default: adapt to load)
    workers: int = 1  # data loader worker processes
    # --- reporting and checkpoints ------------------------------------------------------------------
    tick_kimg: float | None = None  # progress/stats interval
    snap: int | None = None  # checkpoint and sample grid every N ticks
    keep: int = 3  # keep the last K checkpoints (plus the best by metric)
    metrics: list[str] = field(default_factory=list)  # metrics evaluated at each checkpoint (first one: best)
    metrics_detector: str | None = None  # feature network of the metrics: a file or builtin:digits (default: Inception)
    metrics_num_gen: int | None = None  # generated images per metric (default: the metric's own, e.g. 50k)
    grid_seeds: int = 32  # number of fixed seeds in the sample grids
    resume: str | None = None  # checkpoint path, a run directory, or "latest"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = upgrade_legacy(values)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(f"unknown config option(s): {', '.join(unknown)}")
        cfg = cls(**values)
        if isinstance(cfg.betas, list):
            cfg.betas = tuple(cfg.betas)
        return cfg


def upgrade_legacy(values: dict[str, Any]) -> dict[str, Any]:
    """A config written by an earlier version (a checkpoint's) in today's names: `align_loss` (a flag) became
    `align_weight`; WGAN-GP's `loss_kwargs` gp_lambda / drift became `gp_weight` / `drift_weight`."""
    values = dict(values)
    if "align_loss" in values:
        values["align_weight"] = 1.0 if values.pop("align_loss") else 0.0
    loss_kwargs = dict(values.get("loss_kwargs") or {})
    for old, new in (("gp_lambda", "gp_weight"), ("drift", "drift_weight")):
        if old in loss_kwargs:
            values[new] = loss_kwargs.pop(old)
    if "loss_kwargs" in values:
        values["loss_kwargs"] = loss_kwargs
    return values


# StyleGAN v1 and ProGAN (8 GPUs): global batch and learning rate per resolution while growing.
GROWING_BATCH = {"4": 512, "8": 256, "16": 128, "32": 64, "64": 32}  # 32 above (--batch)
GROWING_LR = {"128": 0.0015, "256": 0.002, "512": 0.003, "1024": 0.003}  # 0.001 below (--glr, --dlr)


def preset_values(cfg: str, resolution: int, world_size: int) -> dict[str, Any]:
    """The values a preset gives. Sources (official repositories):
    - auto, stylegan2, paper256/512/1024, cifar: NVlabs/stylegan2-ada-pytorch train.py (cfg_specs); all of
      them with float16 on the top 4 resolutions and conv_clamp 256 (on CUDA: the CPU has no float16 path);
    - lowshot: mit-han-lab/data-efficient-gans DiffAugment-stylegan2-pytorch train.py ('low_shot'), with its
      default DiffAugment policy color,translation,cutout;
    - stylegan1: NVlabs/stylegan train.py ('-8gpu' and the default options: growing from 8 px, minibatch_dict,
      G_lrate_dict) and training/training_loop.py (lr 0.001, G_smoothing_kimg 10, 600 + 600 kimg per
      resolution); D_logistic_simplegp r1_gamma 10 every step; style mixing 0.9; truncation psi 0.7, cutoff 8
      (its generate scripts);
    - progan: tkarras/progressive_growing_of_gans config.py ('preset-v2-8gpus': the same batch and learning
      rates per resolution, 12000 kimg) with WGAN-GP (lambda 10, drift 0.001) every step, from 4 px; G EMA of
      10 kimg as StyleGAN's training loop, which trains ProGAN too;
    - msg-stylegan: akanimax/msg-stylegan-tf (StyleGAN v1 generator at every scale, NS logistic + R1 gamma 10
      every step, lr 0.003, batch 16, no style mixing, EMA 10 kimg, truncation 0.7 / 8);
    - cpu: ours, small enough to learn the built-in digits on two CPU cores in minutes.
    """
    fp16 = dict(fp16_res=4, conv_clamp=256) if torch.cuda.is_available() else {}
    if cfg == "auto":
        batch = max(min(world_size * min(4096 // resolution, 32), 64), world_size)
        return dict(
            kimg=25000, batch=batch, mbstd_group=min(batch // world_size, 4),
            cbase=16384 if resolution < 512 else 32768, glr=0.002 if resolution >= 1024 else 0.0025,
            gamma=0.0002 * resolution**2 / batch, ema_kimg=batch * 10 / 32, ema_rampup=0.05, map_layers=2, **fp16,
        )
    # No lazy regularization: plain Adam at the given learning rates, as their official loops.
    family = dict(cbase=16384, glr=0.001, ema_kimg=10, r1_interval=0, pl_interval=0, pl_weight=0, mbstd_group=4)
    growing_batch = {res: b for res, b in GROWING_BATCH.items() if int(res) <= resolution}
    growing_lr = {res: lr for res, lr in GROWING_LR.items() if int(res) <= resolution}
    table = {
        "stylegan2": dict(kimg=25000, batch=32, mbstd_group=4, cbase=32768, glr=0.002, gamma=10, ema_kimg=10, **fp16),
        "paper256": dict(kimg=25000, batch=64, mbstd_group=8, cbase=16384, glr=0.0025, gamma=1, ema_kimg=20, **fp16),
        "paper512": dict(kimg=25000, batch=64, mbstd_group=8, cbase=32768, glr=0.0025, gamma=0.5, ema_kimg=20, **fp16),
        "paper1024": dict(kimg=25000, batch=32, mbstd_group=4, cbase=32768, glr=0.002, gamma=2, ema_kimg=10, **fp16),
        "cifar": dict(kimg=100000, batch=64, mbstd_group=32, cbase=32768, glr=0.0025, gamma=0.01, ema_kimg=500,
                      ema_rampup=0.05, map_layers=2, pl_weight=0, style_mixing=0, d_arch="orig", **fp16),
        "lowshot": dict(kimg=300, batch=8, mbstd_group=4, cbase=32768, glr=0.002, gamma=10, ema_kimg=10, map_layers=2,
                        snap=10, aug="diffaug", **fp16),
        "stylegan1": dict(family, kimg=25000, batch=32, g="stylegan1", d="stylegan1", gamma=10, grow=True,
                          grow_init_res=min(8, resolution), grow_batch=growing_batch, grow_lr=growing_lr,
                          trunc_psi=0.7, trunc_cutoff=8),
        "progan": dict(family, kimg=12000, batch=32, g="progan", d="progan", loss="wgangp", style_mixing=0,
                       grow=True, grow_init_res=4, grow_batch=growing_batch, grow_lr=growing_lr),
        "msg-stylegan": dict(family, kimg=25000, batch=16, g="msg-stylegan1", d="msg", loss="msg", gamma=10,
                             glr=0.003, style_mixing=0, trunc_psi=0.7, trunc_cutoff=8),
        "cpu": dict(kimg=100, batch=32, mbstd_group=4, cbase=1024, glr=0.0025, gamma=0.05, ema_kimg=2,
                    ema_rampup=0.05, map_layers=2, cmax=64, z_dim=64, w_dim=64, tick_kimg=1, snap=5),
    }
    if cfg not in table:
        raise UserError(f"unknown preset --cfg {cfg!r}; choose one of: {', '.join(PRESETS)}")
    return table[cfg]


# What every preset shares unless it says otherwise.
COMMON_DEFAULTS = dict(
    g="stylegan2", d="stylegan2", loss="stylegan2", aug="none", r1_interval=16, pl_interval=4, grow=False,
    grow_init_res=4, grow_batch={}, grow_lr={}, map_layers=8, pl_weight=2.0, style_mixing=0.9, ema_rampup=0.0,
    d_arch="resnet", cmax=512, z_dim=512, w_dim=512, tick_kimg=4.0, snap=10, trunc_psi=1.0,
)


def resolve(cfg: TrainConfig, resolution: int, world_size: int) -> TrainConfig:
    """Fills the fields the user left at None, then validates them. Precedence: the user, the loss's
    regularizer weights (e.g. WGAN-GP's penalty), the preset, what all presets share."""
    values = dataclasses.asdict(cfg)
    preset = {**COMMON_DEFAULTS, **preset_values(cfg.cfg, resolution, world_size)}
    loss_defaults = LOSSES.get(values["loss"] or preset["loss"]).default_weights
    for key, value in {**preset, **loss_defaults}.items():
        if values[key] is None:
            values[key] = value
    for key in ("gp_weight", "drift_weight"):
        values[key] = values[key] or 0.0
    if values["sel"] is None:  # the alignment loss aligns with the heatmaps of the spatial encoding layers
        values["sel"] = values["align_weight"] > 0 and getattr(GENERATORS.get(values["g"]), "supports_sel", False)
    if values["dlr"] is None:
        values["dlr"] = values["glr"]
    if values["batch_gpu"] is None:
        values["batch_gpu"] = values["batch"] // world_size if values["batch"] else None
    if values["precision"] is None and values["batch_gpu"]:
        values["precision"] = default_precision(values, resolution)
    out = TrainConfig.from_dict(values)
    validate(out, resolution, world_size)
    return out


def option(name: str) -> str:
    """The command-line spelling of a config field."""
    return "--" + name.replace("_", "-")


def validate(cfg: TrainConfig, resolution: int, world_size: int) -> None:
    """Checks every field's value on its own and against the others (not the components: resolve.py)."""
    def bad(msg: str) -> None:
        raise UserError(msg)

    for f in dataclasses.fields(cfg):  # NaN and infinity are no setting of anything (and not JSON)
        value = getattr(cfg, f.name)
        numbers = value if isinstance(value, (tuple, list)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            bad(f"{option(f.name)} must be a finite number (got {value})")
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
    for name in ("glr", "dlr", "kimg", "tick_kimg", "ema_kimg", "time_budget", "eps", "ada_kimg"):
        if getattr(cfg, name) is not None and getattr(cfg, name) <= 0:
            bad(f"{option(name)} must be positive (got {getattr(cfg, name)})")
    for name in ("z_dim", "w_dim", "map_layers", "cbase", "cmax", "grid_seeds", "pl_decay"):
        if getattr(cfg, name) <= 0:
            bad(f"{option(name)} must be positive (got {getattr(cfg, name)})")
    for name in ("seed", "workers", "mbstd_group", "fp16_res", "ada_interval"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            bad(f"{option(name)} must be >= 0 (got {getattr(cfg, name)})")
    if not all(0 <= beta < 1 for beta in cfg.betas):
        bad(f"--betas must lie in [0, 1) (got {cfg.betas})")
    if cfg.fsmr_fakes and not cfg.fsmr_weight:
        bad("--fsmr-fakes applies the FSMR penalty to fakes too; switch it on with --fsmr-weight (e.g. 0.05)")
    for name in ("gamma", "gp_weight", "drift_weight", "pl_weight", "style_mixing", "fsmr_weight", "align_weight",
                 "ema_rampup"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            bad(f"{option(name)} must be >= 0 (got {getattr(cfg, name)})")
    if not 0 <= cfg.style_mixing <= 1:
        bad(f"--style-mixing is a probability (got {cfg.style_mixing})")
    if cfg.r1_interval < 0 or cfg.pl_interval < 0:
        bad("--r1-interval and --pl-interval must be >= 0")
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
    for res, lr in cfg.grow_lr.items():
        if not str(res).isdigit() or int(res) not in [2**i for i in range(2, resolution.bit_length())]:
            raise UserError(f"--grow-lr: {res!r} is not a resolution of this run (4 .. {resolution})")
        if not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
            raise UserError(f"--grow-lr: learning rate {lr!r} at {res} px must be a positive number")
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
