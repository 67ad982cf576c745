"""`GridCNNClassifier` (``classifier``), the checks of what a user hands it (``params``, ``inputs``), and where a
pipeline's adapters meet it (``pipeline``)."""

from importlib import import_module

__all__ = ['GridCNNClassifier']


def __getattr__(name):  # on first use: the modules inside import each other, never this package
    if name in __all__:
        return getattr(import_module("gridcnn.estimator.classifier"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
