"""When the recipe runner and the CLI stream: file adapters, file lists, and the automatic size threshold."""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import clone

from gridcnn.exceptions import GridCNNError
from gridcnn.estimator.pipeline import split_pipeline

#: ``stream = "auto"`` in a recipe streams when the training grids, held as float32, would take more than this.
STREAM_THRESHOLD_BYTES = 1 << 30
#: `gridcnn predict` and evaluation decode in this process below this many files, in 2 workers from it on.
WORKERS_FROM = 1000
#: Files `fit_adapter` learns an adapter's statistics from, at most.
FIT_SAMPLE = 2048


def file_adapter(model):
    """The adapter a pipeline starts with when it reads files (`GridAdapter.reads_files`), or None."""
    adapters, _ = split_pipeline(model)
    if adapters and callable(getattr(adapters[0], "reads_files", None)) and adapters[0].reads_files():
        return adapters[0]
    return None


def is_file_list(X) -> bool:
    """True for a list (or string array) of paths, what a class folder loads as."""
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "US" and X.ndim == 1
    return isinstance(X, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in X[:100])


def fit_adapter(adapter, paths, max_files: int = FIT_SAMPLE, random_state=0):
    """Fit ``adapter`` on at most ``max_files`` of ``paths`` (a seeded sample, kept in order) and return it.

    What the adapter learns (the output mode and size of images, a clip length for ``duration="auto"``, the
    statistics of ``standardize`` / ``normalize``) is then estimated from the sample, without decoding every file.
    """
    paths = list(paths)
    if len(paths) > max_files:
        pick = np.sort(np.random.default_rng(random_state).choice(len(paths), size=max_files, replace=False))
        paths = [paths[i] for i in pick]
    return adapter.fit(paths)


def grid_bytes(n_rows: int, grid_shape) -> int:
    """Bytes that ``n_rows`` float32 grids of ``grid_shape`` take in memory."""
    return int(n_rows) * int(np.prod(grid_shape)) * 4


def should_stream(stream, model, X) -> bool:
    """Whether a recipe's training data are streamed.

    ``stream`` is the recipe's ``[data] stream``: true, false, or "auto" (the default), which streams class
    folders of image or sound files whose grids would take more than `STREAM_THRESHOLD_BYTES` (1 GiB) as float32,
    the size estimated from one file decoded by the adapter fitted on a few files.
    """
    adapter = file_adapter(model)
    files = is_file_list(X)
    if stream is True and (adapter is None or not files):
        raise GridCNNError(
            "[data] stream = true streams image or sound files through an [adapter] named image or spectrogram; "
            "these data are " + ("not a list of files" if not files else "read without such an adapter") +
            ". Remove stream = true, or point [data] at a class folder."
        )
    if stream is not True and (stream is False or adapter is None or not files):
        return False
    if stream is True:
        return True
    probe = fit_adapter(clone(adapter), X, max_files=8)
    return grid_bytes(len(X), probe.transform(list(X[:1])).shape[1:]) > STREAM_THRESHOLD_BYTES


def predict_files(model, paths, num_workers: int | None = None):
    """``(probabilities, kept paths)`` of a file pipeline on ``paths``, decoded batch by batch (never all at once).

    Bit for bit what ``model.predict_proba(paths)`` gives, in memory that does not grow with the number of files.
    Files the adapter skips (``on_error="skip"``) are left out of both.
    """
    from gridcnn.streaming._source import StreamedGrids

    adapter, est = file_adapter(model), split_pipeline(model)[1]
    workers = num_workers if num_workers is not None else (2 if len(paths) >= WORKERS_FROM else 0)
    stream = StreamedGrids(paths, adapter, cache=False, num_workers=workers)
    proba = est.predict_proba(stream)
    return proba, [p for p, keep in zip(stream.paths, stream.kept_) if keep]
