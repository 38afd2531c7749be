"""Tiny generators for the tools' tests."""

from __future__ import annotations

import torch
from tiny import tiny_network


def tiny_generator(c_dim: int = 0, seed: int = 0, noise_strength: float = 0.3) -> torch.nn.Module:
    """A 16x16 StyleGAN2 G (6 ws), by default with visible noise so that noise modes differ."""
    torch.manual_seed(seed)
    G = tiny_network("G", c_dim=c_dim, z_dim=32, w_dim=32, mapping_layers=2, channel_base=512, channel_max=32)
    with torch.no_grad():
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(noise_strength)  # the official initial value is 0, which hides the noise
    return G.eval().requires_grad_(False)


# Our EqGAN-SA parameter names -> the official genforce/eqgan-sa ones (inverse of official/names.py's renames).
EQGAN_TO_OFFICIAL = [
    (r"heatmap_encoder\.levels\.0\.conv(\d)", r"hm_conv\1_b8"),
    (r"heatmap_encoder\.levels\.1\.conv(\d)", r"hm_conv\1_b16"),
    (r"heatmap_encoder\.levels\.2\.conv(\d)", r"hm_conv\1_b32"),
    (r"sel\.shared\.", "sel.shared.0."), (r"sel\.gamma\.", "sel.sigma."), (r"sel\.beta\.", "sel.mu."),
    (r"sel\.out\.", "sel.output.1."),
]


def eqgan_official_state(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """An EqGAN-SA G's state dict under the official parameter names."""
    import re

    state = {}
    for name, value in G.state_dict().items():
        for pattern, replacement in EQGAN_TO_OFFICIAL:
            name = re.sub(pattern, replacement, name)
        state[name] = value
    return state
