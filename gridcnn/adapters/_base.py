"""The adapter registry and the base class every adapter shares."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._registry import Registry

ADAPTERS: Registry = Registry("adapter")
# Rows an adapter converts at a time: a memory-mapped .npy (np.load(..., mmap_mode="r")) is then read batch by
# batch, and the float intermediates of a conversion never exceed one batch whatever the size of X.
BATCH_ROWS = 4096


def get_adapter(name: str, **params) -> "GridAdapter":
    """Return a new adapter of the kind ``name`` (see ``ADAPTERS.names()``) built with ``params``."""
    return ADAPTERS.get(name)(**params)


class GridAdapter(TransformerMixin, BaseEstimator):
    """Base class: ``fit`` learns what it needs (lengths, statistics), ``transform`` returns float32 (n, C, H, W).

    Fitted state lives in public attributes ending in ``_`` holding JSON-able values or numpy arrays, so a fitted
    adapter can be saved next to the model without pickle (see `gridcnn.persistence`).
    Subclasses set ``registry_name`` to the name they are registered under and ``modality`` to what their grids
    are ("image", "audio", "sequence", "text"), which chooses the estimator's default augmentation.
    """

    registry_name: str = ""
    modality: str = "image"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags


def map_rows(transform, X):
    """``transform(X, 0)`` computed `BATCH_ROWS` rows at a time into one preallocated float array.

    ``transform(part, start)`` gets the rows from ``start`` on (so its messages can name rows by their index in X).
    It must map k rows to k * r grids for a fixed r (SequenceGrid's windows per signal), as every adapter's
    transform does when it skips nothing.
    """
    n, step = len(X), BATCH_ROWS
    if n <= step:
        return transform(X, 0)
    first = transform(X[:step], 0)
    per_row = len(first) // step
    out = np.empty((n * per_row, *first.shape[1:]), dtype=first.dtype)
    out[: len(first)] = first
    for start in range(step, n, step):
        part = transform(X[start : start + step], start)
        out[start * per_row : start * per_row + len(part)] = part
    return out
