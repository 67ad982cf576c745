"""Name -> factory maps for the things a recipe or the CLI names by string (presets, adapters, datasets)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gridcnn.exceptions import GridCNNError

T = TypeVar("T")


def did_you_mean(name: str, choices) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or "" when nothing is close."""
    choices = [str(c) for c in choices]
    same_letters = [c for c in choices if c.lower() == str(name).lower()]  # 'rgb' for 'RGB'
    close = same_letters or difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A named collection of factories, with "did you mean" on a miss.

    Parameters
    ----------
    kind : str
        What the entries are ("preset", "adapter", "dataset"); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that stores ``obj`` under ``name``."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Return the entry called ``name``; raise `GridCNNError` naming the valid ones otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(repr(n) for n in self._entries)
            raise GridCNNError(
                f"Unknown {self.kind} {name!r}.{did_you_mean(name, self._entries)} Known {self.kind}s: {known}."
            ) from None

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
