"""DiffAugment (Zhao et al. 2020): cheap differentiable augmentations, applied to every image D sees.

Each op draws one value per sample from torch's global RNG on the images' device (as the PyTorch
code of mit-han-lab/data-efficient-gans does, in the same order) and always fires.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from styleforge.augment.base import Augmentation
from styleforge.errors import UserError
from styleforge.registry import AUGMENTATIONS


def _uniform(x: Tensor) -> Tensor:
    """One U[0, 1) draw per sample, [N, 1, 1, 1], in x's dtype."""
    return torch.rand([x.shape[0], 1, 1, 1], device=x.device).to(x.dtype)


def rand_brightness(x: Tensor) -> Tensor:
    """Adds a per-sample constant in [-0.5, 0.5)."""
    return x + (_uniform(x) - 0.5)


def rand_saturation(x: Tensor) -> Tensor:
    """Scales each pixel's deviation from its channel mean by a per-sample factor in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x) * 2) + mean


def rand_contrast(x: Tensor) -> Tensor:
    """Scales the deviation from the image mean (over C, H, W) by a per-sample factor in [0.5, 1.5)."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shifts each image by integers in [-s, s] per axis, s = int(size * ratio + 0.5), filling with 0.

    out[i, j] = x[i + di, j + dj] where that exists, else 0.
    """
    N, C, H, W = x.shape
    shift_h, shift_w = int(H * ratio + 0.5), int(W * ratio + 0.5)
    di = torch.randint(-shift_h, shift_h + 1, [N, 1], device=x.device)
    dj = torch.randint(-shift_w, shift_w + 1, [N, 1], device=x.device)
    # Index into a zero border: out-of-range sources clamp onto it. gather is linear, so twice differentiable.
    x = F.pad(x, [1, 1, 1, 1])
    rows = (torch.arange(H, device=x.device) + di + 1).clamp(0, H + 1)  # [N, H]
    x = x.gather(2, rows[:, None, :, None].expand(N, C, H, W + 2))
    cols = (torch.arange(W, device=x.device) + dj + 1).clamp(0, W + 1)  # [N, W]
    return x.gather(3, cols[:, None, None, :].expand(N, C, H, W))


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zeroes a square of side int(size * ratio + 0.5) (clipped at the borders) at a random centre per sample."""
    N, C, H, W = x.shape
    size_h, size_w = int(H * ratio + 0.5), int(W * ratio + 0.5)
    center_i = torch.randint(0, H + (1 - size_h % 2), [N, 1], device=x.device)
    center_j = torch.randint(0, W + (1 - size_w % 2), [N, 1], device=x.device)
    rows = torch.arange(H, device=x.device) - (center_i - size_h // 2)  # [N, H] position within the square
    cols = torch.arange(W, device=x.device) - (center_j - size_w // 2)  # [N, W]
    inside = ((rows >= 0) & (rows < size_h))[:, :, None] & ((cols >= 0) & (cols < size_w))[:, None, :]  # [N, H, W]
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICY_OPS = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


@AUGMENTATIONS.register("diffaug")
class DiffAugment(Augmentation):
    """DiffAugment. `aug(images) -> images`, images [N, C, H, W] in [-1, 1].

    Args:
        policy: comma-separated groups applied in order, from color (brightness, saturation,
            contrast), translation, cutout. Default "color,translation,cutout"; "" applies nothing.
    """

    def __init__(self, policy: str = "color,translation,cutout"):
        super().__init__()
        self.policy = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in self.policy if name not in POLICY_OPS]
        if unknown:
            raise UserError(f"unknown DiffAugment policy '{','.join(unknown)}'; choose from: {', '.join(POLICY_OPS)}")

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}"

    def forward(self, images: Tensor) -> Tensor:
        for name in self.policy:
            for op in POLICY_OPS[name]:
                images = op(images)
        return images
