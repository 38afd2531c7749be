"""Image conversions and grids shared by training and the tools."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] floats in [-1, 1] -> [N, H, W, C] uint8 (rounded, clipped)."""
    img = (img.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return img.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, cols: int) -> np.ndarray:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] image, filled row by row (empty cells black)."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
    return grid


def save_image(array: np.ndarray, path: str | os.PathLike) -> None:
    """Saves an [H, W, C] uint8 array (C = 1 or 3) as PNG."""
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)


def save_grid(images: torch.Tensor | np.ndarray, path: str | os.PathLike, cols: int) -> None:
    if torch.is_tensor(images):
        images = to_uint8(images)
    save_image(make_grid(images, cols), path)
