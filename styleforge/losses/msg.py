"""MSG-GAN losses: G's images at every scale go to D, with the reals' 2x2-average-pooled pyramid.

- `msg`: non-saturating logistic (MSG-StyleGAN) and R1 over all real scales:
  (gamma / 2) * mean over scales of |grad D(x_s)|^2, as akanimax/msg-stylegan-tf (its r1_gamma 10 is our
  --gamma 10, a weight of 5 on the penalty); not lazy in the official recipe (`--r1-interval 0`).
- `msg-rahinge`: the relativistic average hinge loss of BMSG-GAN, means over the chunk:
  D: relu(1 - (D(x) - mean D(G(z)))) + relu(1 + (D(G(z)) - mean D(x))); G: the same with the signs swapped.
  R1 is added when --gamma > 0.

Both need a multi-scale D (`--d msg`) and a G whose synthesis takes `return_all_scales`
(`msg-stylegan2`, `msg-stylegan1`); `--pl-weight` > 0 regularizes the top scale as the stylegan2 loss does.
Augmentation is refused: the scales of an image would need one and the same transform.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from styleforge.errors import UserError
from styleforge.losses.stylegan2 import PHASES, StyleGAN2Loss
from styleforge.networks.msg import image_pyramid
from styleforge.ops.conv import no_weight_gradients
from styleforge.registry import LOSSES


@LOSSES.register("msg")
class MSGLoss(StyleGAN2Loss):
    relativistic = False  # the G loss needs D(reals)

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment=None, **stylegan2_kwargs):
        name = type(self).__name__
        if augment is not None:
            raise UserError(f"{name}: augmentation cannot be applied consistently to every scale; use --aug none")
        if getattr(D, "num_scales", None) is None:
            raise UserError(f"{name}: the discriminator must read every scale (--d msg)")
        if "return_all_scales" not in inspect.signature(G.synthesis.forward).parameters:
            raise UserError(f"{name}: the generator must emit every scale (--g msg-stylegan2 or msg-stylegan1)")
        super().__init__(G, D, None, **stylegan2_kwargs)
        self.num_scales = D.num_scales

    def generator_loss(self, gen_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        return F.softplus(-gen_logits)  # -log(sigmoid(D(G(z))))

    def discriminator_loss(self, gen_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(gen_logits) + F.softplus(-real_logits)

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float) -> dict[str, torch.Tensor]:
        assert phase in PHASES, phase
        stats: dict[str, torch.Tensor] = {}
        if phase in ("Greg", "Gboth") and self.pl_weight > 0:  # on the top scale, which G(z) returns
            stats.update(super().accumulate_gradients("Greg", real_img, real_c, gen_z, gen_c, gain))
        reals = image_pyramid(real_img.detach(), self.num_scales)

        if phase in ("Gmain", "Gboth"):
            gen_imgs, _ = self.run_G(gen_z, gen_c, main=True, return_all_scales=True)
            gen_logits = self.D_main(gen_imgs, gen_c)
            real_logits = None
            if self.relativistic:
                with torch.no_grad():
                    real_logits = self.D(reals, real_c)
            loss_G = self.generator_loss(gen_logits, real_logits)
            stats["Loss/scores/fake"] = gen_logits.detach()
            stats["Loss/G/loss"] = loss_G.detach()
            loss_G.mean().mul(gain).backward()

        do_Dmain = phase in ("Dmain", "Dboth")
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma > 0
        if do_Dmain or do_Dr1:
            reals = [img.requires_grad_(do_Dr1) for img in reals]
            real_logits = self.D(reals, real_c)
            loss = torch.zeros_like(real_logits)
            if do_Dmain:
                with torch.no_grad():
                    gen_imgs, gen_ws = self.run_G(gen_z, gen_c, main=True, return_all_scales=True)
                self._w_means.append(gen_ws[:, 0].float().mean(dim=0))
                gen_logits = self.D_main(gen_imgs, gen_c)
                loss = self.discriminator_loss(gen_logits, real_logits)
                stats.update({"Loss/scores/fake": gen_logits.detach(), "Loss/scores/real": real_logits.detach(),
                              "Loss/signs/real": real_logits.detach().sign(), "Loss/D/loss": loss.detach()})
            if do_Dr1:
                with no_weight_gradients():  # only the images' gradients are asked for
                    grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=reals, create_graph=True)
                r1_penalty = torch.stack([g.float().square().sum(dim=[1, 2, 3]) for g in grads]).mean(dim=0)[:, None]
                stats["Loss/r1_penalty"] = r1_penalty.detach()
                loss = loss + r1_penalty * (self.r1_gamma / 2)
            (real_logits * 0 + loss).mean().mul(gain).backward()
        return stats


@LOSSES.register("msg-rahinge")
class MSGRelativisticHingeLoss(MSGLoss):
    relativistic = True

    def generator_loss(self, gen_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        real_vs_fake = real_logits - gen_logits.mean()
        fake_vs_real = gen_logits - real_logits.mean()
        return F.relu(1 + real_vs_fake) + F.relu(1 - fake_vs_real)

    def discriminator_loss(self, gen_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        real_vs_fake = real_logits - gen_logits.mean()
        fake_vs_real = gen_logits - real_logits.mean()
        return F.relu(1 - real_vs_fake) + F.relu(1 + fake_vs_real)
