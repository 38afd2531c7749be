"""The Inception-v3 of every published FID: TensorFlow's graph of 2015-12-05, rebuilt as a module.

The layout and parameter names are torchvision's `Inception3`, so pytorch-fid's converted weights
(`pt_inception-2015-12-05-6726825d.pth`) load as they are, with the differences of the TF graph that
pytorch-fid documents: average pools of the mixed blocks exclude padding, the last block (Mixed_7c)
pools by max instead of average, 1008 output classes, BatchNorm eps 1e-3. Input handling follows the
graph: bilinear resize to 299x299 as TF 1.x computes it (align_corners=False without half-pixel
centres, unlike `F.interpolate`), then (x - 128) / 128.

The call mirrors NVIDIA's TorchScript detector, so either can be used in the same place:
`net(img)` gives softmax probabilities [N, 1008], `return_features=True` the 2048-d pool features,
`no_output_bias=True` probabilities without the last bias (as the official Inception Score).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008


def _tf1_source_indices(in_size: int, out_size: int, device: torch.device):
    """Sampling positions of TF 1.x `resize_bilinear(align_corners=False)`: src = dst * in/out."""
    scale = torch.full((), in_size / out_size, dtype=torch.float32)  # TF computes positions in float32
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=in_size - 1)
    frac = src - lo
    lo, hi, frac = lo.to(device), hi.to(device), frac.to(device)
    return lo, hi, frac


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of [N, C, H, W] float images to [N, C, size, size], identical to TF 1.x."""
    N, C, H, W = x.shape
    if (H, W) == (size, size):
        return x
    ylo, yhi, fy = _tf1_source_indices(H, size, x.device)
    xlo, xhi, fx = _tf1_source_indices(W, size, x.device)
    # Along x first, then along y, as TF does: top + (bottom - top) * y_lerp.
    left, right = x.index_select(3, xlo), x.index_select(3, xhi)
    rows = left + (right - left) * fx.to(x.dtype)  # [N, C, H, size]
    top, bottom = rows.index_select(2, ylo), rows.index_select(2, yhi)
    return top + (bottom - top) * fy.to(x.dtype)[:, None]  # [N, C, size, size]


def he_init(net: nn.Module) -> None:
    """He-normal weights: the network is always loaded from a file, but untrained copies (tests, benchmarks)
    then keep activations of order 1 instead of decaying towards float underflow over ~90 layers."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")


class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3), ReLU: torchvision's `BasicConv2d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # TF's 'SAME' average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_tf(x))], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """Factorised 7x7 convolutions at 17x17."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = ConvBN(in_channels, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(in_channels, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_tf(x))], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """Expanded filter bank at 8x8. `max_pool`: the TF graph's last block pools by max (Mixed_7c)."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], dim=1)


class InceptionV3FID(nn.Module):
    """Images [N, 3, H, W] with values in [0, 255] (uint8 or float) -> probabilities or features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)
        he_init(self)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        x = resize_bilinear_tf1(img.to(torch.float32), INPUT_SIZE)
        x = (x - 128) / 128  # [N, 3, 299, 299]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [N, 64, 73, 73]
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # [N, 192, 35, 35]
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # ends at [N, 2048, 8, 8]
        return x.mean(dim=(2, 3))  # [N, 2048]

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        features = self.features(img)
        if return_features:
            return features
        logits = features @ self.fc.weight.t()
        if not no_output_bias:
            logits = logits + self.fc.bias
        return logits.softmax(dim=1)  # [N, 1008]
