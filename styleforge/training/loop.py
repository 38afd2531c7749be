"""The training loop: GAN phases over a stream of batches, with ticks, snapshots and exact resume.

Randomness is derived from (seed, step, phase, chunk) by reseeding torch's generator before each chunk
of the global batch. So a run's numbers do not depend on how the batch is split over processes and
gradient-accumulation rounds, and a resumed run repeats the uninterrupted one step for step.
"""

from __future__ import annotations

import copy
import dataclasses
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import styleforge.augment  # noqa: F401  (registers augmentations)
import styleforge.losses  # noqa: F401  (registers losses)
import styleforge.metrics  # noqa: F401  (registers metrics)
import styleforge.networks  # noqa: F401  (registers networks)
from styleforge.augment.adaptive import AdaptiveP
from styleforge.data.dataset import ImageDataset, check_compatible
from styleforge.errors import UserError
from styleforge.images import save_grid
from styleforge.metrics.compute import append_metric_result, compute_metric
from styleforge.registry import AUGMENTATIONS, DISCRIMINATORS, GENERATORS, LOSSES, METRICS
from styleforge.training import checkpoint as ckpt_io
from styleforge.training import distributed as dist_utils
from styleforge.training.config import TrainConfig, loss_options, resolve
from styleforge.training.data_stream import ChunkSampler
from styleforge.training.performance import thread_governor
from styleforge.training.phases import Phase, make_optimizer, make_phases
from styleforge.training.report import RunWriter, TickStats
from styleforge.training.schedule import make_schedule

# Options a resumed run may change; any other option must match the checkpoint's config.
RESUME_OVERRIDES = {"kimg", "time_budget", "tick_kimg", "snap", "keep", "metrics", "metrics_detector",
                    "metrics_num_gen", "workers", "data", "resume", "outdir", "compile", "threads"}


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN or infinite."""


def chunk_seed(seed: int, step: int, phase: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, step, phase, chunk]).generate_state(1, np.uint64)[0] >> 1)


def network_kwargs(cfg: TrainConfig, resolution: int, channels: int, c_dim: int) -> tuple[dict, dict]:
    """Constructor kwargs of G and D from the config (official stylegan2-ada-pytorch structure)."""
    common = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels)
    g_kwargs = dict(
        z_dim=cfg.z_dim, w_dim=cfg.w_dim, **common,
        mapping_kwargs=dict(num_layers=cfg.map_layers),
        synthesis_kwargs=dict(channel_base=cfg.cbase, channel_max=cfg.cmax, num_fp16_res=cfg.fp16_res or 0,
                              conv_clamp=cfg.conv_clamp, architecture=cfg.g_arch),
    )
    d_kwargs = dict(
        **common, architecture=cfg.d_arch, channel_base=cfg.cbase, channel_max=cfg.cmax,
        num_fp16_res=cfg.fp16_res or 0, conv_clamp=cfg.conv_clamp,
        epilogue_kwargs=dict(mbstd_group_size=cfg.mbstd_group),
    )
    if cfg.sel:
        g_kwargs["synthesis_kwargs"]["use_sel"] = True
    # A network whose constructor differs from StyleGAN2's says itself which config fields it takes.
    g_class, d_class = GENERATORS.get(cfg.g), DISCRIMINATORS.get(cfg.d)
    if hasattr(g_class, "kwargs_from_config"):
        g_kwargs = g_class.kwargs_from_config(cfg, **common)
    if hasattr(d_class, "kwargs_from_config"):
        d_kwargs = d_class.kwargs_from_config(cfg, **common)
    return _merge(g_kwargs, cfg.g_kwargs), _merge(d_kwargs, cfg.d_kwargs)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def next_run_dir(outdir: Path, desc: str) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(p.name.split("-", 1)[0]) for p in outdir.iterdir() if p.is_dir() and p.name[:5].isdigit()]
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


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
    merged = dict(saved)
    for key, value in user.items():
        if key in RESUME_OVERRIDES:
            merged[key] = value
        elif value != saved.get(key) and not (isinstance(value, tuple) and list(value) == saved.get(key)):
            raise UserError(f"--{key.replace('_', '-')}={value!r} conflicts with the resumed run's {saved.get(key)!r}; "
                            "a resumed run keeps its configuration (drop the option or start a new run)")
    return merged


class Trainer:
    def __init__(
        self,
        user_options: dict[str, Any],
        env: dist_utils.DistEnv | None = None,
        device: torch.device | None = None,
        step_callback: Callable[[int, dict[str, float]], None] | None = None,
        quiet: bool = False,
    ):
        """`user_options`: the config fields the user set (CLI or API); everything else comes from the preset
        (or, when resuming, from the checkpoint)."""
        self.env = env or dist_utils.DistEnv()
        self.device = device or torch.device(f"cuda:{self.env.local_rank}" if torch.cuda.is_available() else "cpu")
        self.step_callback = step_callback
        self.quiet = quiet
        self.start_time = time.time()
        self.log_lines: list[str] = []

        base = TrainConfig.from_dict(user_options)
        self.resumed: ckpt_io.Checkpoint | None = None
        if base.resume:
            self.resumed = find_resume_checkpoint(base.resume, Path(base.outdir), self.log)
            base = TrainConfig.from_dict(merge_resumed_config(self.resumed.config, user_options))
        if not base.data:
            raise UserError("--data is required (a data set written by `styleforge dataset`)")
        self.dataset = ImageDataset(base.data, xflip=base.mirror, use_labels=base.cond)
        self.cfg = resolve(base, self.dataset.resolution, self.env.world_size)
        self.threads = thread_governor(self.cfg.threads, self.device)
        self._build()

    # --- set-up -------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg, ds, device = self.cfg, self.dataset, self.device
        if cfg.cond and not ds.has_labels:
            raise UserError(f"--cond: the data set {cfg.data} has no labels")
        c_dim = ds.label_dim if cfg.cond else 0
        for name in cfg.metrics:
            METRICS.get(name)  # unknown names fail now, not at the first snapshot
        g_kwargs, d_kwargs = network_kwargs(cfg, ds.resolution, ds.num_channels, c_dim)
        torch.manual_seed(cfg.seed)
        self.G = GENERATORS.create(cfg.g, **g_kwargs).train().requires_grad_(False).to(device)
        self.D = DISCRIMINATORS.create(cfg.d, **d_kwargs).train().requires_grad_(False).to(device)
        check_compatible(ds, self.G.img_resolution, self.G.img_channels, self.G.c_dim)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.schedule = make_schedule(cfg, [self.G, self.D, self.G_ema], ds.resolution)
        self.augment = None
        if cfg.aug != "none":
            aug_kwargs = dict(cfg.aug_kwargs)
            if cfg.aug == "ada":
                aug_kwargs.setdefault("p", cfg.aug_p or 0.0)
            self.augment = AUGMENTATIONS.create(cfg.aug, **aug_kwargs).train().requires_grad_(False).to(device)
        self.loss = LOSSES.create(
            cfg.loss, G=self.G, D=self.D, augment=self.augment, r1_gamma=cfg.gamma, style_mixing=cfg.style_mixing,
            pl_weight=cfg.pl_weight, pl_batch_shrink=cfg.pl_batch_shrink, pl_decay=cfg.pl_decay,
            **({"compile": True} if cfg.compile else {}), **loss_options(cfg),
        )
        self.opt_G = make_optimizer(self.G, cfg.glr, cfg.betas, cfg.eps, cfg.pl_interval)
        self.opt_D = make_optimizer(self.D, cfg.dlr, cfg.betas, cfg.eps, cfg.r1_interval)
        self.phases: list[Phase] = make_phases("G", self.G, self.opt_G, cfg.pl_interval) + make_phases(
            "D", self.D, self.opt_D, cfg.r1_interval
        )
        self.cur_nimg, self.batch_idx, self.tick = 0, 0, 0
        self.ada = (AdaptiveP(cfg.ada_target, cfg.ada_kimg, cfg.ada_interval)
                    if cfg.aug == "ada" and cfg.aug_p is None else None)
        if self.resumed is not None:
            self._restore(self.resumed)
        else:
            for module in (self.G, self.D):
                dist_utils.broadcast_module(module)
            self.G_ema.load_state_dict(self.G.state_dict())
        self.labels = (torch.from_numpy(np.stack([ds.get_label(i) for i in range(len(ds))])).to(device)
                       if c_dim else None)
        self._set_batch(cfg.batch)

    def _set_batch(self, batch: int) -> None:
        """The global batch of the coming steps, in chunks of at most --batch-gpu images per forward pass."""
        self.batch = batch
        self.batch_gpu = min(self.cfg.batch_gpu, batch // self.env.world_size)
        self.n_chunks = batch // self.batch_gpu
        self.my_chunks = [j for j in range(self.n_chunks) if j % self.env.world_size == self.env.rank]

    def _restore(self, ckpt: ckpt_io.Checkpoint) -> None:
        for key, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            module.load_state_dict(ckpt.networks[key])
        self.opt_G.load_state_dict(ckpt.optimizers["opt_G"])
        self.opt_D.load_state_dict(ckpt.optimizers["opt_D"])
        self.loss.load_state_dict({k[len("loss."):]: v.to(self.device) for k, v in ckpt.extra.items()
                                   if k.startswith("loss.")})
        if ckpt.progress.get("augment_p") is not None:
            self.augment.p = ckpt.progress["augment_p"]
        if self.ada is not None:
            self.ada.load_state_dict(ckpt.progress["ada"])
        self.schedule.load_state_dict(ckpt.progress.get("schedule") or {})
        self.cur_nimg = ckpt.progress["cur_nimg"]
        self.batch_idx = ckpt.progress["batch_idx"]
        self.tick = ckpt.progress["tick"]
        ckpt_io.restore_rng(ckpt.rng)
        self.log(f"resumed from {ckpt.path} at kimg {self.cur_nimg / 1000:.1f}")

    def log(self, line: str) -> None:
        if self.env.is_main:
            self.log_lines.append(line)
            if not self.quiet:
                tqdm.write(line)
            if getattr(self, "run_dir", None) is not None:
                with open(self.run_dir / "log.txt", "a") as f:
                    f.write(line + "\n")

    def _make_run_dir(self) -> Path:
        if self.resumed is not None:
            return self.resumed.path.parent.parent
        cfg = self.cfg
        desc = cfg.desc or "-".join(
            [Path(cfg.data).stem, cfg.cfg] + (["cond"] if cfg.cond else []) + ([cfg.aug] if cfg.aug != "none" else [])
        )
        run_dir = [next_run_dir(Path(cfg.outdir), desc) if self.env.is_main else None]
        if self.env.world_size > 1:
            torch.distributed.broadcast_object_list(run_dir, src=0)
        return Path(run_dir[0])

    # --- data ---------------------------------------------------------------------------------------
    def _batches(self):
        """This rank's chunks of real images, step after step, continuing at the current position."""
        cfg = self.cfg
        sampler = ChunkSampler(len(self.dataset), cfg.seed, self.cur_nimg, self.batch_gpu, self.n_chunks,
                               self.env.rank, self.env.world_size)
        loader = torch.utils.data.DataLoader(
            self.dataset, sampler=sampler, batch_size=self.batch_gpu, num_workers=cfg.workers,
            pin_memory=self.device.type == "cuda", prefetch_factor=2 if cfg.workers else None,
            persistent_workers=cfg.workers > 0,
        )
        for img, c in loader:
            yield img.to(self.device).float() / 127.5 - 1, c.to(self.device).float()

    def _gen_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn([self.batch_gpu, self.G.z_dim], device=self.device)
        if self.labels is None:
            return z, torch.zeros([self.batch_gpu, 0], device=self.device)
        idx = torch.randint(len(self.labels), [self.batch_gpu], device=self.device)
        return z, self.labels[idx]

    # --- one step -----------------------------------------------------------------------------------
    def train_step(self, reals: list[tuple[torch.Tensor, torch.Tensor]], stats: TickStats) -> dict[str, float]:
        cfg = self.cfg
        self.threads.update()
        reals = [(self.schedule.process_reals(img), c) for img, c in reals]
        step_losses: dict[str, torch.Tensor] = {}
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        for phase_idx, phase in enumerate(self.phases):
            if self.batch_idx % phase.interval:
                continue
            phase.module.requires_grad_(True)
            phase.opt.zero_grad(set_to_none=True)
            phase_losses: dict[str, torch.Tensor] = {}
            real_signs = []
            for chunk, (real_img, real_c) in zip(self.my_chunks, reals):
                torch.manual_seed(chunk_seed(cfg.seed, self.batch_idx, phase_idx, chunk))
                gen_z, gen_c = self._gen_inputs()
                with autocast:
                    values = self.loss.accumulate_gradients(
                        phase.name, real_img, real_c, gen_z, gen_c, gain=phase.interval / self.n_chunks
                    )
                for name, value in values.items():
                    stats.add(name, value)
                    phase_losses[name] = phase_losses.get(name, 0) + value.float().mean() / len(self.my_chunks)
                if "Loss/signs/real" in values:
                    real_signs.append(values["Loss/signs/real"])
            if real_signs and self.ada is not None:
                self.ada.accumulate(torch.cat(real_signs))  # once per D step, whatever the chunking
            self.loss.phase_done(phase.name, dist_utils.all_mean)
            phase.module.requires_grad_(False)
            self._check_finite(phase.name, phase_losses)
            params = [p for p in phase.module.parameters() if p.grad is not None]
            dist_utils.sum_gradients(params)
            for p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            phase.opt.step()
            step_losses.update(phase_losses)
        self._update_ema()
        self._adapt_augment()
        self.cur_nimg += self.batch
        self.batch_idx += 1
        return {k: float(v) for k, v in step_losses.items()}

    def _check_finite(self, phase: str, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            if not torch.isfinite(value):
                raise TrainingDiverged(
                    f"{name} is {float(value)} in phase {phase} at step {self.batch_idx} "
                    f"(kimg {self.cur_nimg / 1000:.3f}); stopping without writing a checkpoint"
                )

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.cfg
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            ema_nimg = min(ema_nimg, self.cur_nimg * cfg.ema_rampup)
        beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def _adapt_augment(self) -> None:
        """ADA: every ada_interval D steps, move p towards holding E[sign(D(real))] at the target."""
        if self.ada is not None and self.ada.ready:
            dist_utils.all_reduce_sum(self.ada.stats)
            self.augment.p = self.ada.update(self.augment.p, self.batch)

    # --- ticks and snapshots ------------------------------------------------------------------------
    def _checkpoint(self, path: Path) -> None:
        extra = {f"loss.{k}": v for k, v in self.loss.state_dict().items()}
        progress = dict(cur_nimg=self.cur_nimg, batch_idx=self.batch_idx, tick=self.tick,
                        augment_p=getattr(self.augment, "p", None),
                        ada=self.ada.state_dict() if self.ada is not None else None,
                        schedule=self.schedule.state_dict())
        path.parent.mkdir(exist_ok=True)
        try:
            ckpt_io.save_checkpoint(path, {"G": self.G, "D": self.D, "G_ema": self.G_ema},
                                    {"opt_G": self.opt_G, "opt_D": self.opt_D}, extra, progress,
                                    dataclasses.asdict(self.cfg))
        except FloatingPointError as e:
            raise TrainingDiverged(f"{e} (step {self.batch_idx}); stopping, earlier checkpoints are kept") from e
        ckpt_io.prune_checkpoints(self.run_dir, self.cfg.keep)

    @torch.no_grad()
    def _save_grid(self) -> None:
        self.G_ema.eval()
        # Seeded, so that networks that draw random inputs (e.g. EqGAN-SA heatmaps) show the same ones each time.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)
            fakes = [self.G_ema(z, c, noise_mode="const") for z, c in zip(self.grid_z.split(16), self.grid_c.split(16))]
        save_grid(torch.cat(fakes), self.run_dir / f"fakes{self.cur_nimg // 1000:06d}.png", self.grid_cols)

    def _setup_grid(self) -> None:
        cfg = self.cfg
        n = cfg.grid_seeds
        gen = torch.Generator().manual_seed(cfg.seed)
        self.grid_z = torch.randn([n, self.G.z_dim], generator=gen).to(self.device)
        if self.labels is not None:
            # One column per class, so each column of the grid shows one class.
            self.grid_cols = self.dataset.label_dim
            n = -(-n // self.grid_cols) * self.grid_cols
            self.grid_z = torch.randn([n, self.G.z_dim], generator=gen).to(self.device)
            self.grid_c = torch.eye(self.dataset.label_dim, device=self.device)[torch.arange(n) % self.grid_cols]
        else:
            self.grid_cols = int(np.ceil(np.sqrt(n)))
            self.grid_c = torch.zeros([n, 0], device=self.device)
        if self.env.is_main and not (self.run_dir / "reals.png").exists():
            count = min(len(self.dataset), len(self.grid_z))
            reals = np.stack([self.dataset[i][0] for i in range(count)]).transpose(0, 2, 3, 1)
            save_grid(reals, self.run_dir / "reals.png", self.grid_cols)

    def _tick_entry(self, stats: TickStats, tick_start: float, tick_start_nimg: int) -> dict[str, Any]:
        entry: dict[str, Any] = stats.gather(sorted(set(stats.names()) | {"Loss/G/loss", "Loss/D/loss"}))
        elapsed = time.time() - tick_start
        kimg_done = (self.cur_nimg - tick_start_nimg) / 1000
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.device.type == "cuda":
            peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        scalars = {
            "Progress/tick": self.tick, "Progress/kimg": self.cur_nimg / 1000, "Timing/sec_per_tick": elapsed,
            "Timing/sec_per_kimg": elapsed / max(kimg_done, 1e-8), "Timing/total_sec": time.time() - self.start_time,
            "Resources/peak_memory_mb": peak_mb,
        }
        if self.augment is not None and hasattr(self.augment, "p"):
            scalars["Progress/augment"] = float(self.augment.p)
        if self.ada is not None and self.ada.last_rt is not None:
            scalars["Progress/ada_rt"] = self.ada.last_rt
        scalars.update(self.schedule.progress())
        entry.update({k: {"mean": float(v)} for k, v in scalars.items()})
        entry["timestamp"] = time.time()
        return entry

    def _done(self) -> bool:
        done = self.cur_nimg >= self.cfg.kimg * 1000
        if self.cfg.time_budget is not None:
            done = done or time.time() - self.start_time >= self.cfg.time_budget
        if self.env.world_size > 1:  # all ranks stop together
            done = bool(dist_utils.all_reduce_sum(torch.tensor([float(done)], device=self.device)).item() > 0)
        return done

    # --- the loop -----------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg = self.cfg
        self.run_dir = self._make_run_dir()
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(cfg.to_json())
            self.writer = RunWriter(self.run_dir)
        self._setup_grid()
        self.log(f"run {self.run_dir}: {cfg.g} G ({sum(p.numel() for p in self.G.parameters()):,} params), "
                 f"{cfg.d} D ({sum(p.numel() for p in self.D.parameters()):,} params), data {cfg.data} "
                 f"({len(self.dataset)} images, {self.dataset.resolution}px), batch {cfg.batch}, device {self.device}")
        if self.resumed is None and self.env.is_main:
            self._save_grid()
        stats = TickStats()
        batches = None
        # With a time budget (the demo's case) the bar counts seconds: its images total would show a false ETA.
        by_time = cfg.time_budget is not None
        total = int(cfg.time_budget) if by_time else int(cfg.kimg * 1000)
        seconds_format = "{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}{postfix}]"
        bar = tqdm(total=total, initial=0 if by_time else min(self.cur_nimg, total), unit="img", unit_scale=not by_time,
                   bar_format=seconds_format if by_time else None, dynamic_ncols=True,
                   disable=not self.env.is_main or self.quiet, desc="train")
        tick_start, tick_start_nimg = time.time(), self.cur_nimg
        try:
            while True:
                if self._follow_schedule() or batches is None:
                    batches = self._batches()
                reals = [next(batches) for _ in self.my_chunks]
                losses = self.train_step(reals, stats)
                if self.step_callback is not None:
                    self.step_callback(self.batch_idx - 1, losses)
                bar.update(min(int(time.time() - self.start_time), total) - bar.n if by_time else self.batch)
                done = self._done()
                if not done and self.cur_nimg < tick_start_nimg + cfg.tick_kimg * 1000:
                    continue
                self.tick += 1
                entry = self._tick_entry(stats, tick_start, tick_start_nimg)
                self._report_tick(entry, bar)
                if done or self.tick % cfg.snap == 0:
                    self._snapshot()
                tick_start, tick_start_nimg = time.time(), self.cur_nimg
                if done:
                    break
        finally:
            bar.close()
            if self.env.is_main:
                self.writer.close()
        self.log(f"done: kimg {self.cur_nimg / 1000:.1f} in {time.time() - self.start_time:.0f} s; {self.run_dir}")
        return self.run_dir

    def _follow_schedule(self) -> bool:
        """Applies the schedule's plan for the coming step; True when the batch changed (new data loader)."""
        plan = self.schedule.before_step(self.cur_nimg)
        if plan.reset_optimizers:
            for opt in (self.opt_G, self.opt_D):
                opt.state.clear()
        if plan.batch == self.batch:
            return False
        self._set_batch(plan.batch)
        return True

    def _report_tick(self, entry: dict[str, Any], bar: tqdm) -> None:
        if not self.env.is_main:
            return
        self.writer.write(entry)
        def mean(name):
            return entry.get(name, {}).get("mean", float("nan"))
        line = (f"tick {self.tick:<4d} kimg {mean('Progress/kimg'):<8.1f} sec/kimg {mean('Timing/sec_per_kimg'):<7.2f} "
                f"G {mean('Loss/G/loss'):.3f} D {mean('Loss/D/loss'):.3f}")
        if "Progress/augment" in entry:
            line += f" p {mean('Progress/augment'):.3f}"
        self.log(line)
        bar.set_postfix(kimg=f"{mean('Progress/kimg'):.1f}", s_per_kimg=f"{mean('Timing/sec_per_kimg'):.1f}",
                        G=f"{mean('Loss/G/loss'):.3f}", D=f"{mean('Loss/D/loss'):.3f}")

    def _snapshot(self) -> None:
        path = ckpt_io.checkpoint_path(self.run_dir, self.cur_nimg)
        if self.env.is_main:
            self._save_grid()
            self._checkpoint(path)
            self.log(f"checkpoint {path}")
        for i, name in enumerate(self.cfg.metrics):  # every rank takes part in the metrics
            result = compute_metric(name, self.G_ema, self.cfg.data, self.device, detector=self.cfg.metrics_detector,
                                    num_gen=self.cfg.metrics_num_gen, rank=self.env.rank,
                                    world_size=self.env.world_size, seed=self.cfg.seed, progress=False)
            if not self.env.is_main:
                continue
            append_metric_result(self.run_dir, result, snapshot=path)
            self.log(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in result["results"].items()))
            if i == 0:  # the first metric decides which checkpoint is the best
                value = next(iter(result["results"].values()))
                lower_is_better = not name.startswith(("is", "pr"))  # FID, KID, PPL: lower; IS, precision: higher
                if ckpt_io.record_best(self.run_dir, path, name, value, lower_is_better):
                    self.log(f"best checkpoint so far by {name}: {path.name}")


def train(options: dict[str, Any], **kwargs) -> Path:
    """Trains with the given config options (field name -> value); returns the run directory."""
    env = dist_utils.init_from_env()
    try:
        return Trainer(options, env=env, **kwargs).run()
    finally:
        dist_utils.shutdown()
