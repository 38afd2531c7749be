"""WGAN-GP as ProGAN trains with it (NVlabs/progressive_growing_of_gans, loss.py).

G: -D(G(z)). D: D(G(z)) - D(x) + drift * D(x)^2, and the gradient penalty
lambda / target^2 * (|grad D(x_hat)| - target)^2 at x_hat = lerp(x, G(z), u), u ~ U(0, 1) per sample.
Defaults: lambda 10, target 1, drift 0.001 (set through `--loss-kwargs '{"gp_lambda": 10}'`; --gamma is R1's).
The penalty runs in D's regularization phase: with `--r1-interval 0` (the official recipe) at every step
together with the main loss; with an interval k, every k steps scaled by k. `--pl-weight` > 0 adds
StyleGAN2's path-length regularization, as in the stylegan2 loss.
"""

from __future__ import annotations

import torch

from styleforge.losses.stylegan2 import PHASES, StyleGAN2Loss
from styleforge.ops.conv import no_weight_gradients
from styleforge.registry import LOSSES


@LOSSES.register("wgangp")
class WGANGPLoss(StyleGAN2Loss):
    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment=None, gp_lambda: float = 10.0,
                 gp_target: float = 1.0, drift: float = 0.001, **stylegan2_kwargs):
        super().__init__(G, D, augment, **stylegan2_kwargs)
        self.gp_lambda = gp_lambda
        self.gp_target = gp_target
        self.drift = drift

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float) -> dict[str, torch.Tensor]:
        assert phase in PHASES, phase
        stats: dict[str, torch.Tensor] = {}
        if phase in ("Greg", "Gboth") and self.pl_weight > 0:
            stats.update(super().accumulate_gradients("Greg", real_img, real_c, gen_z, gen_c, gain))

        if phase in ("Gmain", "Gboth"):
            gen_img, _ = self.run_G(gen_z, gen_c, main=True)
            gen_logits = self.run_D(gen_img, gen_c, main=True)
            loss_G = -gen_logits
            stats["Loss/scores/fake"] = gen_logits.detach()
            stats["Loss/G/loss"] = loss_G.detach()
            loss_G.mean().mul(gain).backward()

        gen_img = None
        if phase in ("Dmain", "Dboth"):
            with torch.no_grad():
                gen_img, gen_ws = self.run_G(gen_z, gen_c, main=True)
            self._w_means.append(gen_ws[:, 0].float().mean(dim=0))
            gen_logits = self.run_D(gen_img, gen_c, main=True)
            real_logits = self.run_D(real_img.detach(), real_c, main=True)
            drift = real_logits.square()
            loss_D = gen_logits - real_logits + drift * self.drift
            stats.update({"Loss/scores/fake": gen_logits.detach(), "Loss/scores/real": real_logits.detach(),
                          "Loss/signs/real": real_logits.detach().sign(), "Loss/drift_penalty": drift.detach(),
                          "Loss/D/loss": loss_D.detach()})
            loss_D.mean().mul(gain).backward()

        if phase in ("Dreg", "Dboth") and self.gp_lambda > 0:
            if gen_img is None or real_c.shape[1] > 0:
                with torch.no_grad():  # as the official code, the fakes of the penalty carry the reals' labels
                    gen_img, _ = self.run_G(gen_z, real_c)
            u = torch.rand([real_img.shape[0], 1, 1, 1], device=real_img.device, dtype=real_img.dtype)
            mixed = torch.lerp(real_img.detach(), gen_img.to(real_img.dtype), u).requires_grad_(True)
            mixed_logits = self.run_D(mixed, real_c)
            with no_weight_gradients():  # only the images' gradients are asked for
                (grads,) = torch.autograd.grad(outputs=[mixed_logits.sum()], inputs=[mixed], create_graph=True)
            norms = grads.float().square().sum(dim=[1, 2, 3]).sqrt()[:, None]  # [N, 1]
            penalty = (norms - self.gp_target).square()
            stats["Loss/gp_penalty"] = penalty.detach()
            loss_gp = penalty * (self.gp_lambda / self.gp_target**2)
            (mixed_logits * 0 + loss_gp).mean().mul(gain).backward()
        return stats
