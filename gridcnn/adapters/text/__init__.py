"""Text: the `EmbeddingGrid` adapter and its token tables (``adapter``), and the rows a non-static text CNN starts
from (``token_table``)."""

from importlib import import_module

__all__ = ['EmbeddingGrid']


def __getattr__(name):  # on first use: the modules inside import each other, never this package
    if name in __all__:
        return getattr(import_module("gridcnn.adapters.text.adapter"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
