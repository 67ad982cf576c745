"""Is this data a grid? The suitability check, its report, its picture, and its file loader.

``check_suitability(X, y)`` -> `SuitabilityReport` (never prints); ``quick_check(X)`` is its fast locality-only form
(what ``GridCNNClassifier(check_input=...)`` runs); ``plot_suitability(report, path)`` draws a report;
``load_check_data(path)`` reads what ``gridcnn check`` is given. Inside: ``_check`` (the two stages and the report),
``_stats`` (the locality permutation tests), ``_model`` (the small-CNN test), ``_text`` (the report's sentences),
``_load`` and ``_plot``.
"""

from gridcnn.suitability._check import AxisVerdict, SuitabilityReport, check_suitability, quick_check
from gridcnn.suitability._load import load_check_data
from gridcnn.suitability._model import ModelResult
from gridcnn.suitability._plot import plot_suitability

__all__ = ["AxisVerdict", "ModelResult", "SuitabilityReport", "check_suitability", "load_check_data",
           "plot_suitability", "quick_check"]
