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

# OpenMP threads that wait for work spin on their core by default. On a machine that other jobs keep busy they spin
# while the thread they wait for has no core: the digits fit took 23 s an epoch instead of 3 on 2 cores at load 10
# (benchmarks/RESULTS.md, "Thread settings under load"). Passive waiting keeps the thread count (so a seeded fit
# gives the same numbers at any load) and only costs a wake-up per parallel region. OpenMP reads it once, when
# torch loads it: hence here, before anything imports torch; a value the user set is kept. Where torch came first,
# a fit on a loaded machine takes one thread instead (gridcnn/training/threads.py).
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_OPENMP_PASSIVE = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"  # as OpenMP will read it

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
