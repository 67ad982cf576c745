"""gridcnn: classify anything that is a grid with one configurable CNN and a scikit-learn estimator."""

from .backbone import BackboneSpec, ConvBlock, get_preset
from .estimator import GridCNNClassifier
from .exceptions import GridCNNError
from .persistence import load
from .suitability import SuitabilityReport, check_suitability, quick_check

__version__ = "0.1.0"

__all__ = [
    "BackboneSpec",
    "ConvBlock",
    "GridCNNClassifier",
    "GridCNNError",
    "SuitabilityReport",
    "check_suitability",
    "get_preset",
    "load",
    "quick_check",
]
