"""MNIST-1D: ten digit templates as 1-D signals, built offline with the ``mnist1d`` package and cached."""

from __future__ import annotations

import os
import random
import tempfile

import numpy as np

from gridcnn.exceptions import GridCNNError
from gridcnn.data.registry import cache_dir, register_dataset

# Bump when the arrays written to the cache change, so an old file is rebuilt rather than trusted.
_CACHE_NAME = "mnist1d-v1.npz"


@register_dataset(
    "mnist1d",
    modality="sequence",
    splits=("train", "test"),
    adapter="sequence",
    description="MNIST-1D: 5,000 signals of length 40 in 10 classes (4,000 train / 1,000 test), built offline.",
)
def load_mnist1d(split=None):
    """Load MNIST-1D (Greydanus and Kobak, 2024), the benchmark's default data set of 5,000 signals.

    The signals are built by ``mnist1d.data.make_dataset`` with the package's default arguments (seed 42,
    length 40) on first use, never downloaded, and cached as ``mnist1d-v1.npz`` in `cache_dir`.

    Parameters
    ----------
    split : {"train", "test"} or None, default=None
        4,000 training or 1,000 test signals; None for all 5,000 (train first).

    Returns
    -------
    X : ndarray of shape (n, 40), float32
        The signals, standardised over the whole data set by the generator.
    y : ndarray of shape (n,), int64
        The digit, 0 to 9.
    """
    path = cache_dir() / _CACHE_NAME
    if not path.exists():
        _write_atomic(path, _build())
    with np.load(path) as data:
        if split is None:
            return np.concatenate([data["x_train"], data["x_test"]]), np.concatenate([data["y_train"], data["y_test"]])
        return data[f"x_{split}"], data[f"y_{split}"]


def _build() -> dict[str, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise GridCNNError(
            "The mnist1d data set is built by the package mnist1d, which is not installed. "
            "Install it with: pip install mnist1d"
        ) from None
    # make_dataset seeds numpy's and Python's global generators; put the caller's state back afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {
        "x_train": data["x"].astype(np.float32),
        "y_train": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32),
        "y_test": data["y_test"].astype(np.int64),
    }


def _write_atomic(path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
