"""StyleForge: training, evaluating and using style-based GANs in pure PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, key: str | None = None, device="cpu"):
    """Loads a generator (by default G_ema) from a network file or training checkpoint, in eval mode."""
    from styleforge.networks.persistence import load_network

    return load_network(path, key=key, device=device)
