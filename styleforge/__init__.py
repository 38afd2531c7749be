"""StyleForge: training, evaluating and using style-based GANs in pure PyTorch.

    G = styleforge.load("ckpt.safetensors")                      # G_ema, eval mode
    images = styleforge.generate(G, seeds=[0, 1, 2], psi=0.7)    # uint8 [N, H, W, C]
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, key: str | None = None, device="cpu", verify: bool = True):
    """Loads a network (by default G_ema, else G) from a network file or training checkpoint, in eval mode.

    The file's SHA-256 checksums are verified first (a damaged or edited file raises UserError);
    `verify=False` skips that for speed."""
    from styleforge.networks.persistence import load_network

    return load_network(path, key=key, device=device, verify=verify)


def __getattr__(name: str):
    # `styleforge.generate` without importing torch when only the command line is wanted.
    if name == "generate":
        from styleforge.inference.generate import generate

        return generate
    raise AttributeError(f"module 'styleforge' has no attribute {name!r}")
