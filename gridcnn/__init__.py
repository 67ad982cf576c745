"""gridcnn: classify anything that is a grid with one configurable CNN and a scikit-learn estimator.

The public names are imported on first use, so ``import gridcnn`` (and the ``gridcnn`` command's start-up, where
Ctrl-C must stay quiet) does not wait for torch until something needs it.
"""

import os
import sys
import warnings
from importlib import import_module
from importlib.abc import Loader, MetaPathFinder
from importlib.util import spec_from_loader

from gridcnn.exceptions import GridCNNError

__version__ = "0.1.0"

# Whether OpenMP's waiting threads sleep (OMP_WAIT_POLICY=PASSIVE, set before torch loads OpenMP, which reads it
# once): then a fit keeps torch's thread count at any load (gridcnn/training/threads.py).
_OPENMP_PASSIVE = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"

# Public name -> module that defines it.
_WHERE = {
    "BackboneSpec": "gridcnn.backbone",
    "ConvBlock": "gridcnn.backbone",
    "GridCNNClassifier": "gridcnn.estimator.classifier",
    "SuitabilityReport": "gridcnn.suitability",
    "check_suitability": "gridcnn.suitability",
    "get_preset": "gridcnn.backbone",
    "load": "gridcnn.modelfile.persistence",
    "quick_check": "gridcnn.suitability",
}

# Public modules of 0.1.0 that moved into subpackages: importing the old name still works, with a warning.
_MOVED = {
    "gridcnn.auto": "gridcnn.workflow.auto",
    "gridcnn.checkpoint": "gridcnn.modelfile.checkpoint",
    "gridcnn.datasets": "gridcnn.data",
    "gridcnn.persistence": "gridcnn.modelfile.persistence",
    "gridcnn.plots": "gridcnn.workflow.plots",
    "gridcnn.recipes": "gridcnn.workflow.recipes",
    "gridcnn.runs": "gridcnn.workflow.runs",
    "gridcnn.serialization": "gridcnn.modelfile.codec",
}

__all__ = sorted([*_WHERE, "GridCNNError"])


class _MovedModules(MetaPathFinder, Loader):
    """``import gridcnn.recipes`` gives ``gridcnn.workflow.recipes`` (the same module object) and a FutureWarning."""

    def find_spec(self, fullname, path=None, target=None):
        return spec_from_loader(fullname, self) if fullname in _MOVED else None

    def create_module(self, spec):
        warnings.warn(f"{spec.name} moved to {_MOVED[spec.name]}; import it from there (the old name goes in 0.3).",
                      FutureWarning, stacklevel=2)
        return import_module(_MOVED[spec.name])

    def exec_module(self, module):  # the module it stands for has run already
        pass


sys.meta_path.append(_MovedModules())


def __getattr__(name):
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
    else:  # a subpackage, as gridcnn.serve was reachable when this file imported everything
        try:
            value = import_module(f"gridcnn.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'gridcnn' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_WHERE])
