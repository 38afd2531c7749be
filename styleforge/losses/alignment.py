"""EqGAN-SA's alignment loss (Wang et al. 2022, genforce/eqgan-sa): G learns to place what D attends to
where its heatmaps say, by pulling D's Grad-CAM attention on a fake towards the heatmaps G was given.

For D's block outputs A of size 4x4, 8x8, 16x16 (heatmap levels 1, 2, 3):
- w = spatial mean of dL/dA with L = sum softplus(-D(x)) (G's loss), from a second pass of D in eval
  mode on a detached copy of the image; w is a constant;
- CAM = sum_k relu(w_k * A_k) with A from the normal G-step forward (so the gradient reaches G, while D
  stays frozen), upsampled bilinearly to the image size and min-max normalized per sample;
- target: level 1's heatmap as is, levels 2 and 3 averaged over centres and min-max normalized;
- e = |CAM - target|; the mean of the elements above 0.25 when more than one is, else the mean of all.
The levels' errors are summed (weight 1 each) and added to G's loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from styleforge.errors import UserError
from styleforge.losses.regularizers import Regularizer
from styleforge.networks.heatmaps import random_heatmaps
from styleforge.registry import REGULARIZERS

ATTENTION_SIZES = (4, 8, 16)  # D feature sizes of heatmap levels 1, 2, 3
THRESHOLD = 0.25


@contextmanager
def block_outputs(D: torch.nn.Module, sizes: Iterable[int] = ATTENTION_SIZES) -> Iterator[dict[int, torch.Tensor]]:
    """Records, by spatial size, the feature outputs of D's blocks (`D.blocks`) that are size x size."""
    blocks = getattr(D, "blocks", None)
    if blocks is None:
        raise UserError(f"the alignment loss needs a discriminator with `blocks`; {type(D).__name__} has none")
    sizes = set(sizes)
    recorded: dict[int, torch.Tensor] = {}

    def record(module, inputs, output):
        x = output[0] if isinstance(output, tuple) else output
        if x.ndim == 4 and x.shape[-1] in sizes:
            recorded[x.shape[-1]] = x

    handles = [block.register_forward_hook(record) for block in blocks.values()]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def grad_cam_weights(
    D: torch.nn.Module, img: torch.Tensor, c: torch.Tensor, sizes: Iterable[int] = ATTENTION_SIZES
) -> dict[int, torch.Tensor]:
    """Grad-CAM channel weights [N, C, 1, 1] by feature size: spatial means of d(sum softplus(-D(img)))/dA,
    with D in eval mode on a detached copy of `img`. Constants: nothing reaches D's weights or `img`."""
    was_training = D.training
    D.eval()
    try:
        with torch.enable_grad(), block_outputs(D, sizes) as features:
            logits = D(img.detach().requires_grad_(True), c)
            found = sorted(features)
            grads = torch.autograd.grad(F.softplus(-logits).sum(), [features[s] for s in found])
    finally:
        D.train(was_training)
    return {s: g.float().mean(dim=[2, 3], keepdim=True) for s, g in zip(found, grads)}


def min_max_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per sample and channel to [0, 1] over H, W, with min and max as constants; all-equal maps -> 0."""
    x = x - x.amin(dim=[2, 3], keepdim=True).detach()
    hi = x.amax(dim=[2, 3], keepdim=True).detach()
    return x / torch.where(hi > 0, hi, torch.ones_like(hi))


def grad_cam(features: torch.Tensor, weights: torch.Tensor, resolution: int) -> torch.Tensor:
    """CAM = sum_k relu(w_k * A_k), upsampled to resolution and min-max normalized: [N, C, h, w] -> [N, 1, R, R]."""
    cam = F.relu(weights * features.float()).sum(dim=1, keepdim=True)
    cam = F.interpolate(cam, size=(resolution, resolution), mode="bilinear", align_corners=True)
    return min_max_normalize(cam)


def alignment_target(heatmap: torch.Tensor, level: int) -> torch.Tensor:
    """Level 1's heatmap [N, 1, R, R] as is; finer levels [N, k, R, R] averaged over centres, normalized."""
    if level == 1:
        return heatmap
    return min_max_normalize(heatmap.mean(dim=1, keepdim=True))


def alignment_error(cam: torch.Tensor, target: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Mean of |cam - target| over the elements above `threshold` if more than one is, else over all."""
    err = (cam - target).abs()
    above = err > threshold
    count = above.sum()
    # Branch-free (no host sync): both means are computed, one is kept.
    return torch.where(count > 1, (err * above).sum() / count.clamp(min=1), err.mean())


class AttentionAlignment:
    """The alignment loss of one D. Usage in G's step:

        with alignment.watch() as features:
            logits = D(img, c)   # the normal forward, recording D's block outputs
        loss = alignment(img, c, features, heatmaps)
    """

    def __init__(self, D: torch.nn.Module, weight: float = 1.0, threshold: float = THRESHOLD):
        self.D = D
        self.weight = weight
        self.threshold = threshold

    def watch(self):
        return block_outputs(self.D, ATTENTION_SIZES)

    def cams(self, img: torch.Tensor, c: torch.Tensor, features: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Grad-CAM [N, 1, R, R] in [0, 1] by heatmap level (1, 2, 3; the levels D has features for)."""
        weights = grad_cam_weights(self.D, img, c, features)
        return {ATTENTION_SIZES.index(s) + 1: grad_cam(features[s], w, img.shape[-1]) for s, w in weights.items()}

    def __call__(
        self, img: torch.Tensor, c: torch.Tensor, features: dict[int, torch.Tensor], heatmaps: list[torch.Tensor]
    ) -> torch.Tensor:
        """Weighted sum over levels of the alignment error between D's attention on `img` (the D input of
        the normal forward that recorded `features`) and the heatmaps G was given (scalar)."""
        loss = torch.zeros([], device=img.device)
        for level, cam in self.cams(img, c, features).items():
            target = alignment_target(heatmaps[level - 1].to(cam.dtype), level)
            loss = loss + alignment_error(cam, target, self.threshold)
        return loss * self.weight


@REGULARIZERS.register("alignment")
class Alignment(Regularizer):
    """--align-weight: EqGAN-SA's alignment of D's attention on fakes with G's heatmaps, in G's main step."""

    option = "align_weight"
    network = "G"
    on_generated = True
    watches = True
    stat = "Loss/G/align"

    @classmethod
    def incompatibility(cls, cfg, loss_class, G_class, D_class) -> str | None:
        if not getattr(G_class, "supports_sel", False):
            return (f"the alignment needs the heatmaps of G's spatial encoding layers, which --g {cfg.g} does "
                    "not have (--g stylegan2 has)")
        if not cfg.sel:
            return "the alignment needs the heatmaps of G's spatial encoding layers: drop --no-sel"
        if not getattr(D_class, "has_blocks", False):
            return f"the alignment records D's block outputs, which --d {cfg.d} does not expose (--d stylegan2 does)"
        return None

    def generator_inputs(self, loss, batch_size, device) -> dict:
        return {"heatmap": random_heatmaps(batch_size, loss.G.img_resolution, device)}

    def watch(self, D: torch.nn.Module):
        return block_outputs(D, ATTENTION_SIZES)

    def penalty(self, loss, scored, stats) -> torch.Tensor:
        align = AttentionAlignment(loss.D, self.weight)
        value = align(scored.seen, scored.c, scored.features[self], scored.generated.inputs["heatmap"])
        stats[self.stat] = (value / self.weight).detach()
        return value
