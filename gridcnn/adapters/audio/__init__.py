"""Sound: the `SpectrogramGrid` adapter (``adapter``), reading clips from files or waveforms (``clips``), and the
mel arithmetic it runs (``melspec``)."""

from importlib import import_module

__all__ = ['SpectrogramGrid']


def __getattr__(name):  # on first use: the modules inside import each other, never this package
    if name in __all__:
        return getattr(import_module("gridcnn.adapters.audio.adapter"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
