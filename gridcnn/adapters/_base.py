"""The adapter registry and the base class every adapter shares."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from .._registry import Registry

ADAPTERS: Registry = Registry("adapter")


def get_adapter(name: str, **params) -> "GridAdapter":
    """Return a new adapter of the kind ``name`` (see ``ADAPTERS.names()``) built with ``params``."""
    return ADAPTERS.get(name)(**params)


class GridAdapter(TransformerMixin, BaseEstimator):
    """Base class: ``fit`` learns what it needs (lengths, statistics), ``transform`` returns float32 (n, C, H, W).

    Fitted state lives in public attributes ending in ``_`` holding JSON-able values or numpy arrays, so a fitted
    adapter can be saved next to the model without pickle (see `gridcnn.persistence`).
    Subclasses set ``registry_name`` to the name they are registered under.
    """

    registry_name: str = ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags
