"""Generators and discriminators of the StyleGAN family, registered by name."""

from styleforge.registry import DISCRIMINATORS, GENERATORS


def registered_network(name: str):
    """The constructor registered under `name`, generator or discriminator."""
    if name in GENERATORS:
        return GENERATORS.get(name)
    return DISCRIMINATORS.get(name)

# Importing the network modules registers them.
from styleforge.networks import discriminator, generator  # noqa: E402, F401
