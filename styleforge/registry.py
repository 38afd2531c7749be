"""Name -> component registries, so that methods plug in by name instead of by editing the loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from styleforge.errors import UserError


class Registry:
    """A table of named constructors of one kind of component (generator, loss, metric, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UserError(f"unknown {self.kind} '{name}'; choose one of: {choices}") from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Builds the named component; None-valued kwargs are dropped so defaults apply."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
AUGMENTATIONS = Registry("augmentation")
METRICS = Registry("metric")
REGULARIZERS = Registry("regularizer")
