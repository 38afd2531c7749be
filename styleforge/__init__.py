"""StyleForge: training, evaluating and using style-based GANs in pure PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, key: str | None = None, device="cpu", verify: bool = True):
    """Loads a generator (by default G_ema) from a network file or training checkpoint, in eval mode.

    The file's SHA-256 checksums are verified first (a damaged or edited file raises UserError);
    `verify=False` skips that for speed. A generator comes with its conveniences bound:
    `G.generate(seeds, psi=...)` (see `styleforge.tools.generate`).
    """
    import types

    from styleforge.networks.persistence import load_network

    net = load_network(path, key=key, device=device, verify=verify)
    if hasattr(net, "mapping") and hasattr(net, "synthesis"):  # the generator contract
        from styleforge.tools.generate import generate

        net.generate = types.MethodType(generate, net)
    return net
