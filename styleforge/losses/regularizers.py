"""Regularizers: penalties that any GAN loss can add to G's or D's objective, registered by name.

Each declares what the loss template (`base.py`) needs to know to run it:
- `option`: the config field holding its weight (0 turns it off);
- `network`: "G" or "D", the network whose phases it joins;
- `lazy`: False: it joins every main phase; True: the network's regularization phase, every
  --pl-interval (G) or --r1-interval (D) steps with its loss scaled by the interval (StyleGAN2's lazy
  regularization), or every step with an interval of 0;
- which pass it works on: `on_generated` (D on G's images in G's phase), `on_fakes`, `on_reals` (D's
  passes in D's phase; `needs_input_grad` makes the reals' pass differentiable by the images), or
  `own_pass` (it runs networks itself).
A regularizer returns its weighted per-sample penalty and reports the unweighted one in the stats.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from styleforge.registry import REGULARIZERS

if TYPE_CHECKING:
    from styleforge.losses.base import Chunk, GANLoss, Scored


class Regularizer:
    option: ClassVar[str]
    stat: ClassVar[str]  # the name of its (unweighted) penalty in the statistics
    network: ClassVar[str]
    lazy: ClassVar[bool] = False
    on_generated: ClassVar[bool] = False
    on_fakes: bool = False
    on_reals: ClassVar[bool] = False
    own_pass: ClassVar[bool] = False
    needs_input_grad: ClassVar[bool] = False
    watches: ClassVar[bool] = False  # records D's features during its pass (`watch`)

    def __init__(self, weight: float):
        self.weight = weight

    @classmethod
    def from_config(cls, cfg: Any) -> Regularizer | None:
        """The regularizer the config switches on, or None when its weight is 0."""
        weight = getattr(cfg, cls.option)
        return cls(weight) if weight else None

    @classmethod
    def incompatibility(cls, cfg: Any, loss_class: type, G_class: type, D_class: type) -> str | None:
        """Why it cannot join this loss and these networks (None: it can)."""
        return None

    # --- hooks; each regularizer implements those of its pass -----------------------------------------
    def penalty(self, loss: GANLoss, scored: Scored, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted penalty ([N, 1], or a scalar) on a pass of D that the template ran."""
        raise NotImplementedError

    def own_pass_penalty(self, loss: GANLoss, chunk: Chunk, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted per-sample penalty from networks it runs itself, with every parameter in its graph."""
        raise NotImplementedError

    def generator_inputs(self, loss: GANLoss, batch_size: int, device: torch.device) -> dict[str, Any]:
        """Extra synthesis inputs for G's main pass (e.g. heatmaps)."""
        return {}

    def watch(self, D: torch.nn.Module) -> AbstractContextManager[Any]:
        """A context in which D's pass records what `penalty` needs (found in `scored.features[self]`)."""
        return nullcontext()

    def phase_done(self, all_mean) -> None:
        """After every chunk of a phase on every rank (running means from the global batch)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


def build_regularizers(cfg: Any) -> list[Regularizer]:
    """Every registered regularizer whose weight the config sets, in registry order."""
    built = (REGULARIZERS.get(name).from_config(cfg) for name in REGULARIZERS.names())
    return [reg for reg in built if reg is not None]


def input_gradients(logits: torch.Tensor, inputs: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    """d(sum logits)/d(inputs), differentiable again; only the inputs' gradients are computed."""
    from styleforge.ops.conv import no_weight_gradients

    inputs = inputs if isinstance(inputs, list) else [inputs]
    with no_weight_gradients():  # the penalty asks for the images' gradients, not the weights'
        return list(torch.autograd.grad(outputs=[logits.sum()], inputs=inputs, create_graph=True, only_inputs=True))
