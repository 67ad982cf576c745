"""gridcnn: classify anything that is a grid with one configurable CNN and a scikit-learn estimator.

The public names are imported on first use, so ``import gridcnn`` (and the ``gridcnn`` command's start-up, where
Ctrl-C must stay quiet) does not wait for torch until something needs it.
"""

from importlib import import_module

from .exceptions import GridCNNError

__version__ = "0.1.0"

# Public name -> module that defines it.
_WHERE = {
    "BackboneSpec": ".backbone",
    "ConvBlock": ".backbone",
    "GridCNNClassifier": ".estimator",
    "SuitabilityReport": ".suitability",
    "check_suitability": ".suitability",
    "get_preset": ".backbone",
    "load": ".persistence",
    "quick_check": ".suitability",
}

__all__ = sorted([*_WHERE, "GridCNNError"])


def __getattr__(name):
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name], __name__), name)
    else:  # a submodule, as gridcnn.persistence was reachable when this file imported everything
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'gridcnn' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_WHERE])
