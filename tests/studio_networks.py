"""Networks and helpers shared by the studio tests."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tiny import tiny_network
from tools_networks import tiny_generator


class AllScalesSynthesis(torch.nn.Module):
    """A synthesis network with MSG-StyleGAN's contract: `return_all_scales=True` gives the images low -> high
    resolution (here by average pooling the full image, which is all the studio relies on)."""

    def __init__(self, synthesis: torch.nn.Module):
        super().__init__()
        self.inner = synthesis

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", return_all_scales: bool = False):
        img = self.inner(ws, noise_mode=noise_mode)  # [N, C, R, R]
        if not return_all_scales:
            return img
        scales = [img]
        while scales[0].shape[-1] > 4:
            scales.insert(0, F.avg_pool2d(scales[0], 2))
        return scales


def multiscale_generator() -> torch.nn.Module:
    G = tiny_generator()
    G.synthesis = AllScalesSynthesis(G.synthesis)
    return G


def tiny_sel_generator(seed: int = 0) -> torch.nn.Module:
    """A 16x16 EqGAN-SA G: the tiny StyleGAN2 G with spatial encoding layers."""
    torch.manual_seed(seed)
    return tiny_network("G", z_dim=32, w_dim=32, mapping_layers=2, channel_base=512, channel_max=32,
                        use_sel=True).eval().requires_grad_(False)


def decode_data_url(url: str) -> np.ndarray:
    """'data:image/png;base64,...' -> [H, W, C] uint8."""
    assert url.startswith("data:image/png;base64,")
    return png_pixels(base64.b64decode(url.split(",", 1)[1]))


def png_pixels(data: bytes | str) -> np.ndarray:
    image = np.asarray(Image.open(io.BytesIO(data) if isinstance(data, bytes) else data))
    return image[:, :, None] if image.ndim == 2 else image
