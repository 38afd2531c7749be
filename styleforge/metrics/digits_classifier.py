"""`builtin:digits`: a small classifier of the built-in digits, the offline stand-in for Inception.

Inception's ImageNet weights cannot be had offline, and an ImageNet network says little about 8x8
digits anyway. This CNN, trained by `styleforge.metrics.digits_training` on a held-in split of the
1797 built-in digits at 32x32, gives
- `features`: the 128-d penultimate layer before its ReLU, for FID, KID and precision/recall. Before the
  ReLU, because after it 51 of the 128 units are zero on every real digit, which leaves the covariance
  singular. Scaled by a constant fixed at training time so that x.x/D is 1 on average over the held-in
  digits: KID's kernel (x.y/D + 1)^3 was designed for features of that order (Inception's);
- `probs`: class probabilities, for the Inception Score; `logits` for the class metrics (class_acc,
  class_coverage).

The weights ship with the package (`digits_classifier.safetensors`, 0.4 MB) rather than being trained on
first use: a metric's feature network must be the same for everyone, and training on another torch
version or device would round differently and give other weights, hence FIDs that cannot be compared.
`python -m styleforge.metrics.digits_training` rebuilds the file (bit for bit on the same torch and CPU).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import styleforge.metrics.network_files as network_files
from styleforge.errors import UserError

WEIGHTS_FILE = Path(__file__).with_name("digits_classifier.safetensors")
RESOLUTION = 32  # images of any size are resized to this before classification
NUM_CLASSES = 10
OUTPUTS = ("features", "logits", "probs")

# What each metric role (detectors.ROLES) reads from the classifier.
ROLE_OUTPUTS = {"fid": "features", "pr": "features", "is": "probs", "classes": "logits"}


def output_for_role(role: str) -> str:
    if role not in ROLE_OUTPUTS:
        raise UserError(f"builtin:digits serves FID, KID, precision/recall, IS and the class metrics, not {role} "
                        f"(PPL needs a perceptual embedding: leave out --detector for it)")
    return ROLE_OUTPUTS[role]


def _conv_pair(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU()]


class DigitsClassifier(nn.Module):
    """Three conv pairs with 2x2 max pooling (32 -> 4 px), a 128-d dense layer on the flattened 4x4 map
    (the features) and the 10-way output. Flattening, not average pooling, keeps where strokes are, which
    tells 6 from 9 (held-out accuracy 99.2% against 92.5% with average pooling)."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 32), num_features: int = 128):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [*_conv_pair(c_in, c), nn.MaxPool2d(2)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.features = nn.Linear(c_in * (RESOLUTION // 8) ** 2, num_features)
        self.classes = nn.Linear(num_features, NUM_CLASSES)
        self.register_buffer("feature_scale", torch.ones([]))  # set by the training script

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 or float images [N, C, H, W] in [0, 255], gray or RGB, any size -> float [N, 1, 32, 32] in [-1, 1]."""
        x = images.to(torch.float32)
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)  # RGB (or gray repeated) -> gray
        if x.shape[2:] != (RESOLUTION, RESOLUTION):
            x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True, align_corners=False)
        return x / 127.5 - 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer before its ReLU [N, 128] of prepared images [N, 1, 32, 32]."""
        return self.features(self.convs(x).flatten(1))

    def forward(self, images: torch.Tensor, output: str = "logits") -> torch.Tensor:
        """`features` [N, 128], `logits` or `probs` [N, 10] of images in [0, 255] (see `prepare`)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        h = self.embed(self.prepare(images))
        if output == "features":
            return h * self.feature_scale
        logits = self.classes(F.relu(h))
        return logits if output == "logits" else logits.softmax(dim=1)


def load_digits_classifier(path: str | Path = WEIGHTS_FILE, device: torch.device | str = "cpu") -> DigitsClassifier:
    """The classifier with the shipped (or given) weights, in eval mode without gradients."""
    net = DigitsClassifier()
    network_files.load_into(net, network_files.load_state_dict(path), str(path))
    return net.to(device).eval().requires_grad_(False)
