"""gridcnn: classify anything that is a grid with one configurable CNN and a scikit-learn estimator."""

from .backbone import BackboneSpec, ConvBlock, get_preset
from .estimator import GridCNNClassifier
from .exceptions import GridCNNError
from .persistence import load

__version__ = "0.1.0"

__all__ = ["BackboneSpec", "ConvBlock", "GridCNNClassifier", "GridCNNError", "get_preset", "load"]
