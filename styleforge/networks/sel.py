"""EqGAN-SA's spatial awareness in G: heatmap encoders and the Spatial Encoding Layer (SEL).

The three heatmap levels (`heatmaps.py`) are encoded at full resolution into 32 feature channels each.
Synthesis blocks at 4x4 see level 1, 8x8 level 2, 16x16 level 3, blocks from 32x32 on all three (96
channels). A SEL in front of every modulated convolution and ToRGB re-normalizes the layer input with a
spatially varying scale and shift predicted from those features (like SPADE), added as a small residual:
    out = x + 0.1 * conv3x3(lrelu_0.2(InstanceNorm(x) * (1 + gamma(hm)) + beta(hm))).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from styleforge.networks.heatmaps import NUM_CENTRES
from styleforge.ops.layers import Conv2dLayer

LEVEL_CHANNELS = 32  # encoded features per heatmap level
HIDDEN_CHANNELS = 64  # SEL's shared heatmap features


def heatmap_feature_channels(resolution: int) -> int:
    """Channels of the heatmap features a layer of this resolution sees: one level up to 16x16, all three above."""
    return LEVEL_CHANNELS if resolution <= 16 else LEVEL_CHANNELS * len(NUM_CENTRES)


class HeatmapEncoder(nn.Module):
    """Per level: conv3x3 (k -> 16, lrelu), conv3x3 (16 -> 32, lrelu, gain sqrt(0.5)), at the heatmaps' resolution."""

    def __init__(self):
        super().__init__()
        self.levels = nn.ModuleList()
        for k in NUM_CENTRES:
            level = nn.Module()
            level.conv0 = Conv2dLayer(k, LEVEL_CHANNELS // 2, kernel_size=3, activation="lrelu")
            level.conv1 = Conv2dLayer(LEVEL_CHANNELS // 2, LEVEL_CHANNELS, kernel_size=3, activation="lrelu")
            self.levels.append(level)

    def forward(self, heatmaps: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Three levels [N, k, R, R] -> features by block resolution: {4: level 1, 8: level 2, 16: level 3,
        32: all three concatenated} ([N, 32 or 96, R, R]; blocks above 32 use the entry of 32)."""
        if len(heatmaps) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} heatmap levels, got {len(heatmaps)}")
        features = []
        for level, hm in zip(self.levels, heatmaps):
            features.append(level.conv1(level.conv0(hm), gain=math.sqrt(0.5)))
        return {4: features[0], 8: features[1], 16: features[2], 32: torch.cat(features, dim=1)}


def features_for_block(features: dict[int, torch.Tensor], resolution: int) -> torch.Tensor:
    return features[min(resolution, 32)]


class SpatialEncodingLayer(nn.Module):
    """SEL: x [N, C, H, W], heatmap features [N, map_dim, R, R] -> x + 0.1 * conv(lrelu(modulated norm(x)))."""

    def __init__(self, channels: int, map_dim: int, hidden: int = HIDDEN_CHANNELS):
        super().__init__()
        self.channels = channels
        self.map_dim = map_dim
        self.shared = Conv2dLayer(map_dim, hidden, kernel_size=3, activation="lrelu")
        self.gamma = Conv2dLayer(hidden, 1, kernel_size=3)  # scale, broadcast over channels
        self.beta = Conv2dLayer(hidden, 1, kernel_size=3)  # shift, broadcast over channels
        self.out = Conv2dLayer(channels, channels, kernel_size=3)

    def forward(self, x: torch.Tensor, hm_features: torch.Tensor) -> torch.Tensor:
        if hm_features.shape[-2:] != x.shape[-2:]:
            hm_features = F.interpolate(hm_features, size=x.shape[-2:], mode="bilinear", align_corners=True)
        h = self.shared(hm_features.to(x.dtype))
        normalized = F.instance_norm(x.float(), eps=1e-5).to(x.dtype)
        modulated = normalized * (1 + self.gamma(h)) + self.beta(h)
        return x + 0.1 * self.out(F.leaky_relu(modulated, 0.2))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, map_dim={self.map_dim}"
