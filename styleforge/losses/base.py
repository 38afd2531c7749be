"""The GAN loss template: the training phases written once; a loss supplies only its G and D terms.

Phases (stylegan2-ada-pytorch's, run by the training loop): `Gmain`, `Greg`, `Gboth`, `Dmain`, `Dreg`,
`Dboth`. A main phase runs every step; a regularization phase runs every k steps with its loss scaled by k
(the `gain`), and `both` is the two together (k = 0 in the config: no lazy regularization).

- G's main phase: G draws images, D scores them, the loss's `generator_loss` plus the G regularizers that
  work on that pass (EqGAN-SA's alignment); one backward.
- D's main phase: fakes (without G's graph) and reals through D, `discriminator_loss` plus the D
  regularizers of those passes (FSMR, drift, and R1 in `Dboth`); one backward.
- The regularization phases run the lazy regularizers (R1 on the reals' pass, path length and the
  gradient penalty with passes of their own).

Regularizers (`regularizers.py`) are parts that declare their network, whether they are lazy and which
pass they use; they need nothing from a particular loss. A loss whose D reads every scale of G's images
(MSG-GAN) sets `multi_scale`: G's images and the reals' pyramid then go to D as lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from styleforge.augment.base import Augmentation
from styleforge.losses.regularizers import Regularizer, build_regularizers
from styleforge.networks.generator import style_mix
from styleforge.networks.msg import image_pyramid

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")
Images = torch.Tensor | list[torch.Tensor]  # one image batch, or its scales low -> high (multi-scale)


@dataclass
class Generated:
    """G's images for one chunk: `img` [N, C, H, W] (or its scales), `ws` [N, num_ws, w_dim] and the extra
    synthesis inputs the regularizers chose (e.g. EqGAN-SA's heatmaps)."""

    img: Images
    ws: torch.Tensor
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scored:
    """One pass of D: its input `img` as given (the leaf R1 differentiates by), `seen` the (augmented)
    images D saw, the labels `c` and the logits [N, 1]. `source`: "reals", "fakes" (D's phase) or
    "generated" (G's phase, whose images `generated` holds); `features`: what each watching regularizer
    recorded (keyed by the regularizer)."""

    img: Images
    seen: Images
    c: torch.Tensor
    logits: torch.Tensor
    source: str = "reals"
    generated: Generated | None = None
    features: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """The inputs of one phase on one chunk of the batch."""

    real_img: torch.Tensor  # [N, C, H, W] in [-1, 1]
    real_c: torch.Tensor  # [N, c_dim]
    gen_z: torch.Tensor  # [N, z_dim]
    gen_c: torch.Tensor  # [N, c_dim]
    fakes: Generated | None = None  # D's main phase: the fakes it scored (reused by the gradient penalty)


def report_regularization(stats: dict[str, torch.Tensor], reg: Regularizer, penalty: torch.Tensor) -> None:
    """Adds a lazy regularizer's weighted penalty to its network's `Loss/G/reg` or `Loss/D/reg` (official names)."""
    if reg.lazy:
        key = f"Loss/{reg.network}/reg"
        stats[key] = stats[key] + penalty.detach() if key in stats else penalty.detach()


class GANLoss:
    """Subclasses define `generator_loss` and `discriminator_loss` (per-sample, [N, 1])."""

    multi_scale: ClassVar[bool] = False  # D reads every scale of G's images (MSG-GAN)
    relativistic: ClassVar[bool] = False  # G's term needs D's logits on reals too
    # Regularizer weights this loss implies unless the user sets them (e.g. WGAN-GP's gradient penalty).
    default_weights: ClassVar[dict[str, float]] = {}

    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        augment: Augmentation | None = None,
        regularizers: Iterable[Regularizer] = (),
        style_mixing: float = 0.9,
        compile: bool = False,
    ):
        self.G, self.D = G, D
        self.augment = augment
        self.regularizers = list(regularizers)
        self.style_mixing = style_mixing
        self._w_means: list[torch.Tensor] = []  # per-chunk mean w of the current phase (for w_avg)
        # torch.compile cannot differentiate twice, so compiled modules serve the passes without
        # double backward; R1 and path length run the same weights eagerly.
        self.synthesis_main = torch.compile(G.synthesis) if compile else G.synthesis
        self.D_main = torch.compile(D) if compile else D

    @classmethod
    def from_config(cls, cfg: Any, G: torch.nn.Module, D: torch.nn.Module, augment: Augmentation | None) -> GANLoss:
        return cls(G, D, augment, regularizers=build_regularizers(cfg), style_mixing=cfg.style_mixing,
                   compile=cfg.compile, **cfg.loss_kwargs)

    @classmethod
    def incompatibility(cls, cfg: Any, G_class: type, D_class: type) -> str | None:
        """Why this loss cannot train with the configured networks and augmentation (None: it can)."""
        multi_scale_nets = getattr(G_class, "emits_all_scales", False) and getattr(D_class, "reads_all_scales", False)
        if cls.multi_scale and not multi_scale_nets:
            return (f"--loss {cfg.loss} feeds every scale of G's images to D: it needs a multi-scale G and D "
                    f"(--g msg-stylegan2 or msg-stylegan1 and --d msg), not --g {cfg.g} --d {cfg.d}")
        if cls.multi_scale and cfg.aug != "none":
            return (f"--loss {cfg.loss} with --aug {cfg.aug}: augmentation cannot be applied consistently to "
                    "every scale of an image; use --aug none")
        return None

    # --- the terms a loss defines ------------------------------------------------------------------
    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def discriminator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # --- networks -----------------------------------------------------------------------------------
    def generate(self, z: torch.Tensor, c: torch.Tensor, main: bool = False, all_scales: bool = False,
                 **inputs: Any) -> Generated:
        """G's images with style mixing; records the batch's mean w for the w_avg update of `phase_done`."""
        ws = self.G.mapping(z, c)  # [N, num_ws, w_dim]; w_avg is updated in phase_done, from the global batch
        self._w_means.append(ws[:, 0].detach().float().mean(dim=0))  # ws[:, 0] is never style-mixed
        if self.style_mixing > 0 and ws.shape[1] > 1:
            # With prob. style_mixing, the ws from a random crossover on come from a second latent.
            cutoff = torch.randint(1, ws.shape[1], [], device=ws.device)
            mixed = torch.rand([], device=ws.device) < self.style_mixing
            cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws = style_mix(ws, self.G.mapping(torch.randn_like(z), c), cutoff)
        synthesis = self.synthesis_main if main else self.G.synthesis
        img = synthesis(ws, **inputs, **({"return_all_scales": True} if all_scales else {}))
        return Generated(img, ws, inputs)

    def discriminate(self, img: Images, c: torch.Tensor, main: bool = False, source: str = "reals") -> Scored:
        """D's logits on `img` after augmentation (`main`: the compiled D, when no double backward follows)."""
        seen = self.augment(img) if self.augment is not None else img
        return Scored(img, seen, c, (self.D_main if main else self.D)(seen, c), source)

    def reals(self, real_img: torch.Tensor, requires_grad: bool) -> Images:
        """The reals as D reads them: a leaf to differentiate by, or (multi-scale) one leaf per scale."""
        if self.multi_scale:
            return [img.requires_grad_(requires_grad) for img in image_pyramid(real_img.detach(), self.D.num_scales)]
        return real_img.detach().requires_grad_(requires_grad)

    # --- phases -------------------------------------------------------------------------------------
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float) -> dict[str, torch.Tensor]:
        """Runs one phase on one chunk of the batch and calls backward on its loss times `gain`.

        Returns detached per-sample statistics for reporting."""
        assert phase in PHASES, phase
        network, kind = phase[0], phase[1:]
        main, lazy = kind in ("main", "both"), kind in ("reg", "both")
        active = [r for r in self.regularizers if r.network == network and (lazy if r.lazy else main)]
        chunk = Chunk(real_img, real_c, gen_z, gen_c)
        stats: dict[str, torch.Tensor] = {}
        if network == "G":
            self._generator_phase(main, active, chunk, gain, stats)
        else:
            self._discriminator_phase(main, active, chunk, gain, stats)
        for reg in active:  # the regularizers with a pass of their own (path length, gradient penalty)
            if reg.own_pass:
                penalty = reg.own_pass_penalty(self, chunk, stats)
                penalty.mean().mul(gain).backward()
                report_regularization(stats, reg, penalty)
        return stats

    def _generator_phase(self, main: bool, active: list[Regularizer], chunk: Chunk, gain: float,
                         stats: dict[str, torch.Tensor]) -> None:
        if not main:
            return
        on_pass = [r for r in active if r.on_generated]
        inputs: dict[str, Any] = {}
        for reg in on_pass:
            inputs.update(reg.generator_inputs(self, chunk.gen_z.shape[0], chunk.gen_z.device))
        fakes = self.generate(chunk.gen_z, chunk.gen_c, main=True, all_scales=self.multi_scale, **inputs)
        with ExitStack() as stack:  # watching regularizers record D's features with hooks: D runs eagerly
            features = {reg: stack.enter_context(reg.watch(self.D)) for reg in on_pass if reg.watches}
            scored = self.discriminate(fakes.img, chunk.gen_c, main=not features, source="generated")
        scored.generated, scored.features = fakes, features
        real_logits = None
        if self.relativistic:
            with torch.no_grad():
                real_logits = self.discriminate(self.reals(chunk.real_img, False), chunk.real_c, main=True).logits
        loss = self.generator_loss(scored.logits, real_logits)
        stats.update({"Loss/scores/fake": scored.logits.detach(), "Loss/signs/fake": scored.logits.detach().sign(),
                      "Loss/G/loss": loss.detach()})
        total = loss.mean()
        for reg in on_pass:
            total = total + reg.penalty(self, scored, stats).mean()
        total.mul(gain).backward()

    def _discriminator_phase(self, main: bool, active: list[Regularizer], chunk: Chunk, gain: float,
                             stats: dict[str, torch.Tensor]) -> None:
        fake_logits, total = None, None
        if main:
            with torch.no_grad():
                chunk.fakes = self.generate(chunk.gen_z, chunk.gen_c, main=True, all_scales=self.multi_scale)
            scored = self.discriminate(chunk.fakes.img, chunk.gen_c, main=True, source="fakes")
            fake_logits = scored.logits
            stats.update({"Loss/scores/fake": fake_logits.detach(), "Loss/signs/fake": fake_logits.detach().sign()})
            total = fake_logits * 0
            for reg in active:
                if reg.on_fakes:
                    total = total + reg.penalty(self, scored, stats)
        on_reals = [r for r in active if r.on_reals]
        if not (main or on_reals):
            return
        differentiate = any(r.needs_input_grad for r in on_reals)
        scored = self.discriminate(self.reals(chunk.real_img, differentiate), chunk.real_c, main=not differentiate)
        stats.update({"Loss/scores/real": scored.logits.detach(), "Loss/signs/real": scored.logits.detach().sign()})
        loss = scored.logits * 0  # keeps every parameter of D in the graph (identical gradients on all ranks)
        if self.augment is not None:  # ADA's overfitting heuristic sees every pass of D on reals, as official
            self.augment.observe(scored.logits)
        if main:
            d_loss = self.discriminator_loss(fake_logits, scored.logits)
            stats["Loss/D/loss"] = d_loss.detach()
            loss = loss + d_loss + total
        for reg in on_reals:
            penalty = reg.penalty(self, scored, stats)
            loss = loss + penalty
            report_regularization(stats, reg, penalty)
        loss.mean().mul(gain).backward()

    def phase_done(self, phase: str, all_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Called once per phase after every chunk on every rank: updates the running means (G's w_avg,
        the regularizers' own) from the whole global batch (`all_mean` averages over ranks), so the result
        does not depend on how the batch was split into chunks and ranks."""
        mapping = self.G.mapping
        if self._w_means and getattr(mapping, "w_avg_beta", None) is not None:
            batch_mean = all_mean(torch.stack(self._w_means).mean(dim=0))
            mapping.w_avg.copy_(batch_mean.to(mapping.w_avg.dtype).lerp(mapping.w_avg, mapping.w_avg_beta))
        self._w_means.clear()
        for reg in self.regularizers:
            reg.phase_done(all_mean)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value for reg in self.regularizers for name, value in reg.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for reg in self.regularizers:
            reg.load_state_dict(state)
