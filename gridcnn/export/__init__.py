"""``gridcnn export``: a trained model and its adapter's preprocessing (``frontends``) in one ONNX graph (``onnx``)."""

from importlib import import_module

__all__ = ['export_onnx']


def __getattr__(name):  # on first use: the modules inside import each other, never this package
    if name in __all__:
        return getattr(import_module("gridcnn.export.onnx"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
