"""The dataset registry: a loader and what a recipe needs to know about it."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gridcnn._registry import Registry, did_you_mean
from gridcnn.exceptions import GridCNNError

DATASETS: Registry = Registry("dataset")


@dataclass(frozen=True)
class DatasetInfo:
    """A registered data set.

    Attributes
    ----------
    name : str
        The name recipes and the CLI use.
    loader : callable
        ``loader(split=None, **kwargs) -> (X, y)``.
    modality : str
        "image", "audio", "text", "sequence" or "table".
    splits : tuple of str
        Named splits the loader knows (such as ("train", "test")); empty when a recipe must use ``test_fraction``.
    adapter : str or None
        The adapter that turns X into grids, or None when X already is one.
    description : str
        One line for ``gridcnn datasets``.
    """

    name: str
    loader: Callable
    modality: str
    splits: tuple[str, ...]
    adapter: str | None
    description: str

    def load(self, split: str | None = None, **kwargs):
        """Call the loader after checking ``split`` and the keyword names."""
        if split is not None and split not in self.splits:
            have = ", ".join(repr(s) for s in self.splits) or "none (use test_fraction)"
            raise GridCNNError(
                f"Dataset {self.name!r} has no split {split!r}.{did_you_mean(split, self.splits)} Its splits: {have}."
            )
        params = inspect.signature(self.loader).parameters
        for key in kwargs:
            if key not in params:
                valid = [p for p in params if p != "split"]
                raise GridCNNError(
                    f"Dataset {self.name!r} takes no argument {key!r}.{did_you_mean(key, valid)} "
                    f"Its arguments: {', '.join(valid) or 'none'}."
                )
        return self.loader(split=split, **kwargs)


def register_dataset(name: str, *, modality: str, splits=(), adapter: str | None = None, description: str = ""):
    """Decorator registering ``loader(split=None, **kwargs) -> (X, y)`` under ``name``."""

    def add(loader):
        DATASETS.register(name)(DatasetInfo(name, loader, modality, tuple(splits), adapter, description))
        return loader

    return add


def get_dataset(name: str) -> DatasetInfo:
    """Return the `DatasetInfo` registered as ``name``."""
    return DATASETS.get(name)


def load_dataset(name: str, split: str | None = None, **kwargs):
    """Load the data set ``name`` (optionally one named ``split``) as ``(X, y)``."""
    return get_dataset(name).load(split=split, **kwargs)


def cache_dir() -> Path:
    """Where built data sets live: ``$GRIDCNN_CACHE``, else ``~/.cache/gridcnn``."""
    return Path(os.environ.get("GRIDCNN_CACHE", "~/.cache/gridcnn")).expanduser()
