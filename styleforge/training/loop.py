"""The training loop: GAN phases over a stream of batches, with ticks, snapshots and exact resume.

Randomness is derived from (seed, step, phase, chunk) by reseeding torch's generator before each chunk
of the global batch. So a run's numbers do not depend on how the batch is split over processes and
gradient-accumulation rounds, and a resumed run repeats the uninterrupted one step for step.

The Trainer knows no particular network, loss or augmentation: each builds itself from the resolved config
(`resolve.py`), and the loss runs the phases (`losses/base.py`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from styleforge.networks.spec import build_network
from styleforge.registry import AUGMENTATIONS, DISCRIMINATORS, GENERATORS, LOSSES
from styleforge.training import checkpoint as ckpt_io
from styleforge.training import distributed as dist_utils
from styleforge.training.data_stream import ChunkSampler
from styleforge.training.growing import ProgressiveGrowing
from styleforge.training.performance import thread_governor
from styleforge.training.phases import Phase, make_optimizer, make_phases, set_learning_rate
from styleforge.training.progress import SampleGrid, TickReport
from styleforge.training.report import TickStats
from styleforge.training.resolve import resolve_run
from styleforge.training.run_dir import RunLog, claim_run_dir, cut_back
from styleforge.training.schedule import Schedule
from styleforge.training.snapshots import TrainingDiverged, evaluate_snapshot, save_training_checkpoint

__all__ = ["Trainer", "TrainingDiverged", "train"]


def chunk_seed(seed: int, step: int, phase: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, step, phase, chunk]).generate_state(1, np.uint64)[0] >> 1)


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
        self.log = RunLog(enabled=self.env.is_main, quiet=quiet)
        run = resolve_run(user_options, self.env.world_size, self.log)
        self.cfg = cfg = run.cfg
        self.threads = thread_governor(cfg.threads, self.device)
        device = self.device
        self.dataset = run.dataset
        self.resumed = run.resumed

        torch.manual_seed(cfg.seed)
        self.G = build_network(GENERATORS.get(cfg.g), run.spec, cfg.g_kwargs).to(device).train().requires_grad_(False)
        self.D = build_network(DISCRIMINATORS.get(cfg.d), run.spec, cfg.d_kwargs).to(device).train()
        self.D.requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.schedule = (ProgressiveGrowing.from_config(cfg, [self.G, self.D, self.G_ema], self.dataset.resolution)
                         if cfg.grow else Schedule(cfg.batch))
        self.augment = AUGMENTATIONS.get(cfg.aug).from_config(cfg).train().requires_grad_(False).to(device)
        self.loss = LOSSES.get(cfg.loss).from_config(cfg, self.G, self.D, self.augment)
        self.opt_G = make_optimizer(self.G, cfg.glr, cfg.betas, cfg.eps, cfg.pl_interval)
        self.opt_D = make_optimizer(self.D, cfg.dlr, cfg.betas, cfg.eps, cfg.r1_interval)
        self.phases: list[Phase] = (make_phases("G", self.G, self.opt_G, cfg.pl_interval)
                                    + make_phases("D", self.D, self.opt_D, cfg.r1_interval))
        # Conditioning labels of the fakes are drawn from the data set's labels.
        self.labels = (torch.from_numpy(np.stack([self.dataset.get_label(i) for i in range(len(self.dataset))]))
                       .to(device) if run.spec.c_dim else None)
        self.cur_nimg, self.batch_idx, self.tick = 0, 0, 0
        self.batch = self.batch_gpu = self.n_chunks = 0
        self.my_chunks: list[int] = []
        self.set_batch(cfg.batch)
        self.run_dir: Path | None = None  # claimed when the run starts
        if self.resumed is not None:
            self._restore(self.resumed)
        else:
            for module in (self.G, self.D):
                dist_utils.broadcast_module(module)
            self.G_ema.load_state_dict(self.G.state_dict())

    def set_batch(self, batch: int) -> None:
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
        progress = ckpt.progress
        # Checkpoints before augmentations kept their own state held ADA's p and controller apart.
        augment_state = progress.get("augment") or {"p": progress.get("augment_p"), "controller": progress.get("ada")}
        if augment_state.get("p") is not None:
            self.augment.load_training_state(augment_state)
        self.schedule.load_state_dict(progress.get("schedule") or {})
        self.cur_nimg, self.batch_idx, self.tick = progress["cur_nimg"], progress["batch_idx"], progress["tick"]
        ckpt_io.restore_rng(ckpt.rng)

    # --- data ---------------------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's chunks of real images ([-1, 1], labels), step after step, from the current position."""
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

    def latents(self, phase_idx: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """z and labels c of the fakes of one phase and chunk, drawn after reseeding (see the module doc)."""
        torch.manual_seed(chunk_seed(self.cfg.seed, self.batch_idx, phase_idx, chunk))
        z = torch.randn([self.batch_gpu, self.G.z_dim], device=self.device)
        if self.labels is None:
            return z, torch.zeros([self.batch_gpu, 0], device=self.device)
        return z, self.labels[torch.randint(len(self.labels), [self.batch_gpu], device=self.device)]

    # --- one step -----------------------------------------------------------------------------------
    def train_step(self, reals: list[tuple[torch.Tensor, torch.Tensor]], stats: TickStats) -> dict[str, float]:
        """One iteration: each phase due at this step, then G's EMA and the augmentation's adaptation.
        `reals`: this rank's chunks. Returns the mean of each reported value (the last phase's per name)."""
        self.threads.update()  # fewer threads while other processes keep the CPUs busy
        reals = [(self.schedule.process_reals(img), c) for img, c in reals]
        step_losses: dict[str, torch.Tensor] = {}
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")
        for phase_idx, phase in enumerate(self.phases):
            if self.batch_idx % phase.interval:
                continue
            phase.module.requires_grad_(True)
            phase.opt.zero_grad(set_to_none=True)
            phase_losses: dict[str, torch.Tensor] = {}
            for chunk, (real_img, real_c) in zip(self.my_chunks, reals):
                gen_z, gen_c = self.latents(phase_idx, chunk)
                with autocast:
                    values = self.loss.accumulate_gradients(phase.name, real_img, real_c, gen_z, gen_c,
                                                            gain=phase.interval / self.n_chunks)
                for name, value in values.items():
                    stats.add(name, value)
                    phase_losses[name] = phase_losses.get(name, 0) + value.float().mean() / len(self.my_chunks)
            self.loss.phase_done(phase.name, dist_utils.all_mean)
            phase.module.requires_grad_(False)
            self._check_finite(phase.name, phase_losses)
            params = [p for p in phase.module.parameters() if p.grad is not None]
            dist_utils.sum_gradients(params)
            for p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            phase.opt.step()
            step_losses.update(phase_losses)
        self.update_ema()
        self.augment.end_step(self.batch, dist_utils.all_reduce_sum)
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

    def ema_beta(self) -> float:
        """G_ema keeps this share of itself per step: a half-life of ema_kimg, ramped up over the first images."""
        ema_nimg = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.cfg.ema_rampup)
        return 0.5 ** (self.batch / max(ema_nimg, 1e-8))

    @torch.no_grad()
    def update_ema(self) -> None:
        """G_ema's parameters move towards G's; buffers are copied."""
        beta = self.ema_beta()
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def _follow_schedule(self) -> bool:
        """Applies the schedule's plan for the coming step; True when the batch changed (new data loader)."""
        plan = self.schedule.before_step(self.cur_nimg)
        if plan.reset_optimizers:
            for opt in (self.opt_G, self.opt_D):
                opt.state.clear()
        set_learning_rate(self.opt_G, plan.lr or self.cfg.glr, self.cfg.pl_interval)
        set_learning_rate(self.opt_D, plan.lr or self.cfg.dlr, self.cfg.r1_interval)
        if plan.batch == self.batch:
            return False
        self.set_batch(plan.batch)
        return True

    # --- the loop -----------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg = self.cfg
        self.run_dir = self._open_run_dir()
        grid = SampleGrid(self.G, cfg.grid_seeds, cfg.seed, self.labels.shape[1] if self.labels is not None else 0,
                          self.device)
        self.log(f"run {self.run_dir}: {cfg.g} G ({sum(p.numel() for p in self.G.parameters()):,} params), "
                 f"{cfg.d} D ({sum(p.numel() for p in self.D.parameters()):,} params), data {cfg.data} "
                 f"({len(self.dataset)} images, {self.dataset.resolution}px), batch {cfg.batch}, device {self.device}")
        if self.env.is_main and self.resumed is None:
            grid.save_reals(self.dataset, self.run_dir / "reals.png")
            grid.save(self.G_ema, self.run_dir / "fakes000000.png")
        by_time = cfg.time_budget is not None
        report = TickReport(self.run_dir if self.env.is_main else None,
                            int(cfg.time_budget) if by_time else int(cfg.kimg * 1000), by_time, self.cur_nimg,
                            show_bar=self.env.is_main and not self.quiet)
        stats = TickStats()
        batches = None
        try:
            while True:
                if self._follow_schedule() or batches is None:
                    batches = self.batches()
                reals = [next(batches) for _ in self.my_chunks]
                losses = self.train_step(reals, stats)
                if self.step_callback is not None:
                    self.step_callback(self.batch_idx - 1, losses)
                report.step(self.batch, time.time() - self.start_time)
                done = self._done()
                if not done and self.cur_nimg < report.tick_start_nimg + cfg.tick_kimg * 1000:
                    continue
                self.tick += 1
                progress = {**self.augment.progress(), **self.schedule.progress()}
                entry = report.entry(stats, self.tick, self.cur_nimg, time.time() - self.start_time, self.device,
                                     progress)
                if self.env.is_main:
                    self.log(report.write(entry, self.tick))
                if done or self.tick % cfg.snap == 0:
                    self._snapshot(grid)
                report.start_tick(self.cur_nimg)
                if done:
                    break
        finally:
            report.close()
        self.log(f"done: kimg {self.cur_nimg / 1000:.1f} in {time.time() - self.start_time:.0f} s; {self.run_dir}")
        return self.run_dir

    def _open_run_dir(self) -> Path:
        """A new run claims the next free run folder; a resumed one continues in its own, cut back to the
        checkpoint it resumes from. Rank 0 decides; the others follow."""
        cfg = self.cfg
        run_dir = None
        if self.env.is_main:
            if self.resumed is not None:
                run_dir = self.resumed.path.parent.parent
                cut_back(run_dir, self.cur_nimg)
            else:
                desc = cfg.desc or "-".join([Path(cfg.data).stem, cfg.cfg] + (["cond"] if cfg.cond else [])
                                            + ([cfg.aug] if cfg.aug != "none" else []))
                run_dir = claim_run_dir(Path(cfg.outdir), desc)
                (run_dir / "config.json").write_text(cfg.to_json())
            self.log.attach(run_dir / "log.txt")
            if self.resumed is not None:
                self.log(f"resumed from {self.resumed.path} at kimg {self.cur_nimg / 1000:.1f}")
        if self.env.world_size > 1:
            shared = [str(run_dir) if run_dir is not None else None]
            torch.distributed.broadcast_object_list(shared, src=0)
            run_dir = Path(shared[0])
        return run_dir

    def _done(self) -> bool:
        done = self.cur_nimg >= self.cfg.kimg * 1000
        if self.cfg.time_budget is not None:
            done = done or time.time() - self.start_time >= self.cfg.time_budget
        if self.env.world_size > 1:  # all ranks stop together
            done = bool(dist_utils.all_reduce_sum(torch.tensor([float(done)], device=self.device)).item() > 0)
        return done

    def _snapshot(self, grid: SampleGrid) -> None:
        path = ckpt_io.checkpoint_path(self.run_dir, self.cur_nimg)
        if self.env.is_main:
            grid.save(self.G_ema, self.run_dir / f"fakes{self.cur_nimg // 1000:06d}.png")
            progress = dict(cur_nimg=self.cur_nimg, batch_idx=self.batch_idx, tick=self.tick,
                            augment=self.augment.training_state(), schedule=self.schedule.state_dict())
            save_training_checkpoint(path, self.cfg, {"G": self.G, "D": self.D, "G_ema": self.G_ema},
                                     {"opt_G": self.opt_G, "opt_D": self.opt_D},
                                     {f"loss.{k}": v for k, v in self.loss.state_dict().items()}, progress)
            self.log(f"checkpoint {path}")
        evaluate_snapshot(self.cfg, self.G_ema, path, self.run_dir if self.env.is_main else None, self.device,
                          self.env.rank, self.env.world_size, self.log)


def train(options: dict[str, Any], **kwargs) -> Path:
    """Trains with the given config options (field name -> value); returns the run directory."""
    env = dist_utils.init_from_env()
    try:
        return Trainer(options, env=env, **kwargs).run()
    finally:
        dist_utils.shutdown()
