"""StyleGAN2's path-length regularization: a fixed-size step in w moves the image by a fixed amount.

For a random image-space direction y (randn / sqrt(H*W), so the expected length does not depend on the
resolution), the length is |J_w^T y| (root of the mean over ws of the squared gradient norms); the penalty
is (length - a)^2 with a the running mean of the lengths (decay 0.01). It runs on batch / --pl-batch-shrink
images every --pl-interval G steps (lazy). As in the official code the running mean inside the penalty is
the lerp towards this chunk's mean length, gradient included; the stored mean is updated once per phase
from the global batch.
"""

from __future__ import annotations

import numpy as np
import torch

from styleforge.losses.regularizers import Regularizer
from styleforge.ops.conv import no_weight_gradients
from styleforge.registry import REGULARIZERS


@REGULARIZERS.register("path_length")
class PathLength(Regularizer):
    """--pl-weight: path-length regularization of G (lazy, every --pl-interval steps)."""

    option = "pl_weight"
    network = "G"
    lazy = True
    own_pass = True
    stat = "Loss/pl_penalty"

    def __init__(self, weight: float, batch_shrink: int = 2, decay: float = 0.01):
        super().__init__(weight)
        self.batch_shrink = batch_shrink
        self.decay = decay
        self.pl_mean = torch.zeros([])
        self._lengths: list[torch.Tensor] = []  # per-chunk mean lengths of the current phase

    @classmethod
    def from_config(cls, cfg) -> PathLength | None:
        return cls(cfg.pl_weight, cfg.pl_batch_shrink, cfg.pl_decay) if cfg.pl_weight else None

    def noise(self, img: torch.Tensor) -> torch.Tensor:
        """The random image-space direction, scaled so the expected length does not depend on resolution."""
        return torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])

    def own_pass_penalty(self, loss, chunk, stats) -> torch.Tensor:
        batch = max(chunk.gen_z.shape[0] // self.batch_shrink, 1)
        gen = loss.generate(chunk.gen_z[:batch], chunk.gen_c[:batch])
        # Only ws's gradient is asked for; G trains with unfused modulation, so its conv weights are
        # parameters and their gradients can be skipped.
        with no_weight_gradients():
            (pl_grads,) = torch.autograd.grad(outputs=[(gen.img * self.noise(gen.img)).sum()], inputs=[gen.ws],
                                              create_graph=True, only_inputs=True)
        lengths = pl_grads.float().square().sum(2).mean(1).sqrt()  # [N]; float32 under bf16 autocast too
        self._lengths.append(lengths.mean().detach())
        self.pl_mean = self.pl_mean.to(lengths.device)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        penalty = (lengths - pl_mean).square()
        stats[self.stat] = penalty.detach()
        # Adding 0 * image keeps every synthesis parameter in the graph (identical gradients across ranks).
        return gen.img[:, 0, 0, 0] * 0 + penalty * self.weight

    def phase_done(self, all_mean) -> None:
        if self._lengths:
            batch_mean = all_mean(torch.stack(self._lengths).mean())
            self.pl_mean = self.pl_mean.lerp(batch_mean, self.decay)
            self._lengths.clear()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"pl_mean": self.pl_mean.detach().clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.pl_mean = state["pl_mean"].clone()
