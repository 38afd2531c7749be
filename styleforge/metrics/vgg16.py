"""VGG16 as the feature network of precision/recall (fc2 features) and of LPIPS (for PPL).

Parameter names are torchvision's `vgg16` (`features.<i>`, `classifier.<i>`), so its ImageNet file
(`vgg16-397923af.pth`) loads as it is; the LPIPS v0.1 linear layers (`vgg.pth` of the lpips package,
keys `lin<k>.model.1.weight`) load into `lins.<k>`.

The call mirrors NVIDIA's TorchScript `vgg16.pt`: input [N, 3, H, W] with values in [0, 255];
`return_features=True` gives the 4096-d fc2 activations (after ReLU) for precision/recall;
`return_lpips=True` gives an embedding whose squared Euclidean distance is the LPIPS distance:
for each tap l (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), features unit-normalised over channels,
scaled by sqrt(w_l[c] / (H_l W_l)) and flattened, since LPIPS = sum_l mean_hw sum_c w_l[c] (f0 - f1)^2.
`resize_images=True` (default) resizes to 224x224 first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styleforge.metrics.inception import he_init

INPUT_SIZE = 224
NUM_FEATURES = 4096
# Convolution widths of VGG16 ("D"); "M" is a 2x2 max pool.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# Indices in `features` of the ReLUs that LPIPS reads: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# LPIPS v0.1 input scaling, applied to images in [-1, 1].
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def resize_for_vgg(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging."""
    if x.shape[2:] == (size, size):
        return x
    if x.shape[2] >= size and x.shape[3] >= size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def lpips_state_from_file(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames the lpips package's keys (`lin<k>.model.1.weight`) to ours (`lins.<k>.weight`)."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("lin") and key.endswith(".model.1.weight"):
            key = f"lins.{key[3:].split('.')[0]}.weight"
        renamed[key] = value
    return renamed


class VGG16(nn.Module):
    """`with_classifier`: the fully connected layers (for fc2 features); `with_lpips`: the LPIPS linear layers."""

    def __init__(self, with_classifier: bool = True, with_lpips: bool = False):
        super().__init__()
        self.features = _make_features()
        if with_classifier:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, 1000))
        if with_lpips:
            self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in LPIPS_CHANNELS)
        he_init(self)
        self.register_buffer("imagenet_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("lpips_shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("lpips_scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    def fc2_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features((x - self.imagenet_mean) / self.imagenet_std)
        x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)  # [N, 25088]
        return self.classifier[:5](x)  # fc1, relu, dropout, fc2, relu: [N, 4096]

    def lpips_embedding(self, x: torch.Tensor) -> torch.Tensor:
        x = (x / 127.5 - 1 - self.lpips_shift) / self.lpips_scale
        parts = []
        taps = iter(self.lins)
        for i, layer in enumerate(self.features[:LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if i in LPIPS_TAPS:
                unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                weight = next(taps).weight.clamp(min=0).view(1, -1, 1, 1)  # [1, C, 1, 1]
                parts.append((unit * (weight / (x.shape[2] * x.shape[3])).sqrt()).flatten(1))
        return torch.cat(parts, dim=1)  # [N, sum_l C_l H_l W_l]

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_features: bool = False,
                return_lpips: bool = False) -> torch.Tensor:
        x = img.to(torch.float32)
        if resize_images:
            x = resize_for_vgg(x)
        if return_lpips:
            return self.lpips_embedding(x)
        if return_features:
            return self.fc2_features(x)
        return self.classifier[5:](self.fc2_features(x)).softmax(dim=1)  # ImageNet probabilities [N, 1000]
