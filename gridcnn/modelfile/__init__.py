"""The one model format, JSON + safetensors: `save` and `load` (``persistence``), how objects become JSON and tensors
(``codec``), the config's schema (``schema``), and training checkpoints in the same format (``checkpoint``)."""

from importlib import import_module

__all__ = ['load', 'save']


def __getattr__(name):  # on first use: the modules inside import each other, never this package
    if name in __all__:
        return getattr(import_module("gridcnn.modelfile.persistence"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
