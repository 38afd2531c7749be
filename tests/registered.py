"""The components StyleForge itself registers (tests may register stand-ins of their own)."""

from styleforge.registry import Registry


def builtin_names(registry: Registry) -> list[str]:
    return [name for name in registry.names() if registry.get(name).__module__.startswith("styleforge.")]
