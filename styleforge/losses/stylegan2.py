"""The StyleGAN2 loss: non-saturating logistic, R1 on reals, path-length regularisation, style mixing.

One method per training phase (`Gmain`, `Greg`, `Gboth`, `Dmain`, `Dreg`, `Dboth`), as in
stylegan2-ada-pytorch: the loop decides which phases run at a step; lazy regularisation is a phase that
runs every k steps with its loss multiplied by k (the `gain`).

Options add the regularizers of other methods of the family to it: FSMR's feature-statistics mixing
penalty on D (`fsmr_weight`, `fsmr_fakes`) and EqGAN-SA's attention alignment on G (`align_weight`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from styleforge.losses.alignment import AttentionAlignment
from styleforge.losses.fsmr import fsmr_penalty
from styleforge.networks.heatmaps import random_heatmaps
from styleforge.ops.conv import no_weight_gradients
from styleforge.registry import LOSSES

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


@LOSSES.register("stylegan2")
class StyleGAN2Loss:
    def __init__(
        self,
        G: torch.nn.Module,
        D: torch.nn.Module,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        r1_gamma: float = 10.0,
        style_mixing: float = 0.9,
        pl_weight: float = 2.0,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        fsmr_weight: float = 0.0,
        fsmr_fakes: bool = False,
        align_weight: float = 0.0,
        compile: bool = False,
    ):
        """fsmr_weight: FSMR penalty weight in D's main loss (0: off; 0.05 in the paper), on reals and, with
        fsmr_fakes, on fakes. align_weight: weight of each level of EqGAN-SA's alignment loss (0: off)."""
        self.G, self.D = G, D
        self.augment = augment
        self.r1_gamma = r1_gamma
        self.style_mixing = style_mixing
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.fsmr_weight = fsmr_weight
        self.fsmr_fakes = fsmr_fakes
        self.alignment = AttentionAlignment(D, weight=align_weight) if align_weight > 0 else None
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self._pl_lengths: list[torch.Tensor] = []  # per-chunk mean lengths of the current Greg phase
        self._w_means: list[torch.Tensor] = []  # per-chunk mean w of the current D phase (for w_avg)
        # torch.compile cannot differentiate twice, so compiled modules serve only the main phases;
        # R1 and path length run the same weights eagerly.
        self.synthesis_main = torch.compile(G.synthesis) if compile else G.synthesis
        self.D_main = torch.compile(D) if compile else D

    # --- networks -----------------------------------------------------------------------------------
    def run_G(
        self, z: torch.Tensor, c: torch.Tensor, main: bool = False, heatmap: list[torch.Tensor] | None = None,
        **synthesis_kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # w_avg is not updated here but in phase_done, from the whole global batch.
        ws = self.G.mapping(z, c)  # [N, num_ws, w_dim]
        if self.style_mixing > 0 and ws.shape[1] > 1:
            # With prob. style_mixing, the ws from a random crossover on come from a second latent.
            cutoff = torch.randint(1, ws.shape[1], [], device=ws.device)
            mixed = torch.rand([], device=ws.device) < self.style_mixing
            cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws2 = self.G.mapping(torch.randn_like(z), c)
            take_second = torch.arange(ws.shape[1], device=ws.device)[None, :, None] >= cutoff
            ws = torch.where(take_second, ws2, ws)
        synthesis = self.synthesis_main if main else self.G.synthesis
        # Heatmaps only reach generators with spatial encoding layers (EqGAN-SA); others draw none.
        if heatmap is not None and getattr(self.G.synthesis, "heatmap_encoder", None) is not None:
            synthesis_kwargs["heatmap"] = heatmap
        img = synthesis(ws, **synthesis_kwargs)
        return img, ws

    def run_D(
        self, img: torch.Tensor, c: torch.Tensor, main: bool = False, return_augmented: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """logits [N, 1], and with return_augmented also the augmented image D saw."""
        if self.augment is not None:
            img = self.augment(img)
        logits = (self.D_main if main else self.D)(img, c)
        return (logits, img) if return_augmented else logits

    # --- phases -------------------------------------------------------------------------------------
    def accumulate_gradients(
        self,
        phase: str,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: torch.Tensor,
        gain: float,
    ) -> dict[str, torch.Tensor]:
        """Runs one phase on one chunk of the batch and calls backward on `loss * gain`.

        Returns detached per-sample statistics for reporting.
        """
        assert phase in PHASES, phase
        stats: dict[str, torch.Tensor] = {}
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight > 0
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma > 0

        if do_Gmain:
            align = self.alignment is not None
            heatmaps = random_heatmaps(gen_z.shape[0], self.G.img_resolution, gen_z.device) if align else None
            gen_img, _ = self.run_G(gen_z, gen_c, main=True, heatmap=heatmaps)
            # The alignment records D's block outputs with hooks: D runs eagerly then.
            with self.alignment.watch() if align else nullcontext() as features:
                gen_logits, gen_aug = self.run_D(gen_img, gen_c, main=not align, return_augmented=True)
            loss_G = F.softplus(-gen_logits)  # -log(sigmoid(gen_logits))
            stats["Loss/scores/fake"] = gen_logits.detach()
            stats["Loss/G/loss"] = loss_G.detach()
            loss_G = loss_G.mean()
            if align:
                loss_align = self.alignment(gen_aug, gen_c, features, heatmaps)
                stats["Loss/G/align"] = loss_align.detach()
                loss_G = loss_G + loss_align
            loss_G.mul(gain).backward()

        if do_Gpl:
            batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch])
            # Random image-space direction, scaled so the expected length does not depend on resolution.
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            # Only ws's gradient is asked for; G trains with unfused modulation, so its conv weights are
            # parameters and their gradients can be skipped.
            with no_weight_gradients():
                (pl_grads,) = torch.autograd.grad(
                    outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True
                )
            pl_lengths = pl_grads.float().square().sum(2).mean(1).sqrt()  # [N]; float32 under bf16 autocast too
            self._pl_lengths.append(pl_lengths.mean().detach())
            pl_mean = self.pl_mean.lerp(pl_lengths.mean().detach(), self.pl_decay)
            pl_penalty = (pl_lengths - pl_mean).square()
            stats["Loss/pl_penalty"] = pl_penalty.detach()
            loss_Gpl = pl_penalty * self.pl_weight
            # Adding 0 * image keeps every synthesis parameter in the graph (identical gradients across ranks).
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

        if do_Dmain:
            with torch.no_grad():
                gen_img, gen_ws = self.run_G(gen_z, gen_c, main=True)
            self._w_means.append(gen_ws[:, 0].float().mean(dim=0))  # ws[:, 0] is never style-mixed
            gen_logits, gen_aug = self.run_D(gen_img, gen_c, main=True, return_augmented=True)
            loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(gen_logits))
            stats["Loss/scores/fake"] = gen_logits.detach()
            fsmr_fake = self._fsmr(gen_aug, gen_c, gen_logits, "fake", stats) if self.fsmr_fakes else 0
            (loss_Dgen + fsmr_fake).mean().mul(gain).backward()

        if do_Dmain or do_Dr1:
            real = real_img.detach().requires_grad_(do_Dr1)
            real_logits, real_aug = self.run_D(real, real_c, main=not do_Dr1, return_augmented=True)
            loss = torch.zeros_like(real_logits)
            if do_Dmain:
                loss_Dreal = F.softplus(-real_logits)  # -log(sigmoid(real_logits))
                stats["Loss/scores/real"] = real_logits.detach()
                stats["Loss/signs/real"] = real_logits.detach().sign()
                stats["Loss/D/loss"] = (loss_Dgen + loss_Dreal).detach()
                loss = loss + loss_Dreal
                loss = loss + self._fsmr(real_aug, real_c, real_logits, "real", stats)
            if do_Dr1:
                with no_weight_gradients():  # only the images' gradients are asked for
                    (r1_grads,) = torch.autograd.grad(
                        outputs=[real_logits.sum()], inputs=[real], create_graph=True, only_inputs=True
                    )
                r1_penalty = r1_grads.float().square().sum([1, 2, 3])[:, None]  # [N, 1]
                stats["Loss/r1_penalty"] = r1_penalty.detach()
                loss = loss + r1_penalty * (self.r1_gamma / 2)
            (real_logits * 0 + loss).mean().mul(gain).backward()
        return stats

    def _fsmr(self, img: torch.Tensor, c: torch.Tensor, logits: torch.Tensor, kind: str,
              stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """FSMR's weighted penalty [N, 1] on the batch D just scored (`img` as augmented, its `logits`); 0 when off."""
        if self.fsmr_weight <= 0:
            return torch.zeros_like(logits)
        penalty = fsmr_penalty(self.D, img, c, logits)
        stats[f"Loss/fsmr_penalty/{kind}"] = penalty.detach()
        return penalty * self.fsmr_weight

    def phase_done(self, phase: str, all_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Called once per phase after every chunk on every rank: updates the running means (path length,
        G's w_avg) from the whole global batch (`all_mean` averages over ranks), so the result does not
        depend on how the batch was split into chunks and ranks."""
        if self._pl_lengths:
            batch_mean = all_mean(torch.stack(self._pl_lengths).mean())
            self.pl_mean.copy_(self.pl_mean.lerp(batch_mean, self.pl_decay))
            self._pl_lengths.clear()
        mapping = self.G.mapping
        if self._w_means and getattr(mapping, "w_avg_beta", None) is not None:
            batch_mean = all_mean(torch.stack(self._w_means).mean(dim=0))
            mapping.w_avg.copy_(batch_mean.to(mapping.w_avg.dtype).lerp(mapping.w_avg, mapping.w_avg_beta))
        self._w_means.clear()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"pl_mean": self.pl_mean.detach().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.pl_mean.copy_(state["pl_mean"])
