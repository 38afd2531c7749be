"""Generators and discriminators of the StyleGAN family, registered by name."""

from styleforge.registry import DISCRIMINATORS, GENERATORS


def registered_network(name: str):
    """The constructor registered under `name`, generator or discriminator.

    A generator and a discriminator may share a registry name ("stylegan2"); their persistent names
    then say which registry they come from: "generator/stylegan2", "discriminator/stylegan2".
    """
    kind, _, short = name.rpartition("/")
    if kind:
        registry = {GENERATORS.kind: GENERATORS, DISCRIMINATORS.kind: DISCRIMINATORS}.get(kind)
        if registry is None:
            raise KeyError(f"unknown network kind '{kind}' in '{name}'")
        return registry.get(short)
    if name in GENERATORS:
        return GENERATORS.get(name)
    return DISCRIMINATORS.get(name)


# Importing the network modules registers them.
from styleforge.networks import discriminator, generator, msg, progan, stylegan1  # noqa: E402, F401
