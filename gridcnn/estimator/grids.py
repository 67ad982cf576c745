"""X as the network sees it: validated float32 grids of the fitted shape, for `fit` and `predict` alike.

Arrays (and tensors, lists, memory maps, data frames) are checked with scikit-learn's ``validate_data`` and
reshaped to (n, C, H, W); a `StreamedGrids` keeps its files and is checked by the grid shape its adapter makes.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from gridcnn.adapters.text import token_table as emb
from gridcnn.estimator.inputs import as_cells, check_axes, explain_shape
from gridcnn.estimator.pipeline import grid_shape
from gridcnn.exceptions import GridCNNError
from gridcnn.streaming import StreamedGrids
from gridcnn.training.distributed import ensure_process_group
from gridcnn.training.steps import resolve_device


def grids(est, X, *, reset: bool, y=None, check_table=None):
    """Validate X (and y) and return float32 grids of shape (n, C, H, W); ``reset`` (in `fit`) records the grid
    shape and ``n_features_in_``, and calls ``check_table(X)`` on 2-D input with labels."""
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    X = as_cells(X)
    if not reset and isinstance(X, np.ndarray):
        # Before validate_data, whose "X has 1 features, expecting 8" would hide that it is the grid that differs.
        hint = explain_shape(X.shape, est.input_shape_, est.n_features_in_, type(est).__name__)
        if hint:
            raise GridCNNError(hint)
        if X.ndim >= 3:
            check_grid(est, X.shape, est.input_shape_)
    kw = dict(allow_nd=True, dtype=np.float32, reset=reset)
    if y is None:
        X = validate_data(est, X, **kw)
    else:
        X, y = validate_data(est, X, y, **kw)
    if X.ndim > 4:
        raise GridCNNError(
            f"X must be 2-D (n, L), 3-D (n, H, W) or 4-D (n, C, H, W). Got a {X.ndim}-D array of shape {X.shape}."
        )
    check_axes(X.shape)
    shape = grid_shape(X.shape, est.input_shape) if reset else est.input_shape_
    check_grid(est, X.shape, shape)
    if reset and y is not None and X.ndim == 2 and check_table is not None:
        check_table(X)
    X = X.reshape((X.shape[0], *shape))
    if reset:
        est.input_shape_ = tuple(int(v) for v in shape)
    return X if y is None else (X, y)


def stream_labels(est, X: StreamedGrids, y, *, reset: bool, rank: int, world_size: int):
    """Prepare a `StreamedGrids` for training (grid shape; the cache, built on its first use) and return the labels
    of its rows (files its cache build skipped are dropped with their labels)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise GridCNNError(
            f"y must hold one label per file of the StreamedGrids: it has {len(X)} files and y has shape "
            f"{y.shape}. Pass the labels that go with its paths, in the same order."
        )
    if world_size > 1:  # a cache build under torchrun splits the files between the ranks
        ensure_process_group(est.device_ if not reset else resolve_device(est.device))
    X.prepare(rank, world_size)
    grid = tuple(X.grid_shape_)
    if not reset:
        check_grid(est, (len(X), *grid), est.input_shape_)
    elif est.input_shape is not None and tuple(int(v) for v in est.input_shape) not in (grid, grid[1:]):
        raise GridCNNError(
            f"input_shape={tuple(est.input_shape)} cannot reshape streamed grids: they come as {grid} "
            "(C, H, W) from the adapter. Leave input_shape=None."
        )
    if reset:
        est.input_shape_, est.n_features_in_ = grid, grid[0]
    return y[X.kept_]


def batches(est, X, size: int):
    """(rows in X, iterator over X's validated grids ``size`` rows at a time): a memory-mapped X is read (and
    copied) one batch at a time; token ids are checked against the network's table batch by batch."""
    n, out = _batches(est, X, size)
    return n, out if est.spec_.embedding is None else _checked_ids(est, out)


def _batches(est, X, size: int):
    if isinstance(X, StreamedGrids):  # files decoded batch by batch, in order
        X.prepare()
        check_grid(est, (len(X), *X.grid_shape_), est.input_shape_)
        rows = X.rows()
        return len(rows), (g.numpy() for _, g in X.read([rows[s : s + size] for s in range(0, len(rows), size)]))
    if torch.is_tensor(X):
        X = X.detach().cpu()
    if not isinstance(getattr(X, "shape", None), tuple) or len(X.shape) == 0 or X.shape[0] == 0:
        # Lists and the like are in memory already; empty X raises sklearn's "Found array with 0 sample(s)".
        X = grids(est, X, reset=False)
        return len(X), (X[start : start + size] for start in range(0, len(X), size))
    take = X.iloc if hasattr(X, "iloc") else X
    return X.shape[0], (grids(est, take[s : s + size], reset=False) for s in range(0, X.shape[0], size))


def _checked_ids(est, batches):
    for xb in batches:
        emb.check_token_ids(xb, est.input_shape_, est.spec_.embedding[0], type(est).__name__)
        yield xb


def check_grid(est, x_shape, grid) -> None:
    """X's rows must hold the grid the network was built for (same values, same (C, H, W) when 4-D)."""
    if int(np.prod(x_shape[1:])) != int(np.prod(grid)) or (len(x_shape) == 4 and tuple(x_shape[1:]) != tuple(grid)):
        raise GridCNNError(
            f"X has grids of shape {tuple(x_shape[1:])}, but this {type(est).__name__} was fitted on grids of "
            f"shape {tuple(grid)} (C, H, W). Resize the input to the fitted grid size."
        )
