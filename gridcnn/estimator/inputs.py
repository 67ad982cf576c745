"""Checks of what a user hands the estimator (labels, cells, grid shapes, callbacks), each ending in one message.

They run before anything is trained, and each says what came, what was expected and the fix, where numpy, sklearn
or torch would otherwise fail later and in their own words. Messages keep the prefix sklearn's own checks look for
("Input y contains NaN", "Unknown label type", "Complex data not supported").
"""

from __future__ import annotations

import numbers

import numpy as np

from gridcnn.exceptions import GridCNNError


def check_callbacks(callbacks) -> None:
    """Every callback must be callable: found when ``fit`` starts, not after the first epoch."""
    for i, cb in enumerate(callbacks or ()):
        if not callable(cb) and not hasattr(cb, "on_epoch_end"):  # a function, or a training-loop Hook
            raise GridCNNError(
                f"callbacks[{i}] is {cb!r} ({type(cb).__name__}), which cannot be called. Each callback is a function "
                "called as callback(estimator, record) after every epoch; a recipe cannot name one (use the Python "
                "API to pass functions)."
            )


def check_input_shape(value) -> None:
    """``input_shape`` is None or 2 or 3 positive ints (checked with the parameters, so a recipe names it)."""
    if value is None:
        return
    if len(value) not in (2, 3) or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                                           for v in value):
        raise GridCNNError(
            f"input_shape must be (height, width) or (channels, height, width) of positive ints. Got {list(value)!r} "
            "instead."
        )


def check_sizes(name: str, value) -> None:
    """A size parameter (kernel_size, stride, padding, pool_size): an int, an (h, w) pair, or a list of those per
    block, so a nested list of the wrong shape is named before a network is planned."""
    if value is None or isinstance(value, numbers.Integral) or (name == "padding" and value in ("same", "valid")):
        return
    lo = 0 if name == "padding" else 1

    def one(v) -> bool:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return v >= lo
        if name == "padding" and v in ("same", "valid"):
            return True
        return (isinstance(v, (list, tuple)) and len(v) == 2 and all(
            (isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= lo)
            or (name == "kernel_size" and i == 1 and x == "full") for i, x in enumerate(v)))

    if one(value) or (isinstance(value, (list, tuple)) and value and all(one(v) for v in value)):
        return
    raise GridCNNError(
        f"{name} must be an int, an (h, w) pair, or a list with one of those per block (such as [3, [1, 5]]). "
        f"Got {value!r} instead."
    )


def _kind(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, (str, np.str_, bytes)):
        return "str"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Number):
        return "number"
    return type(v).__name__


def _rows(mask) -> str:
    idx = np.flatnonzero(mask)
    return f"{len(idx)} of {len(mask)} labels (first: row {idx[0]})"


def check_labels(y) -> None:
    """Missing, mixed-type or continuous labels, named before sklearn or np.unique trip over them."""
    from sklearn.utils.multiclass import check_classification_targets, type_of_target

    y = np.asarray(y) if not hasattr(y, "dtype") else y
    if getattr(y.dtype, "kind", "") in "Mm":  # a model file keeps bool, int, float or text labels
        raise GridCNNError(
            f"y holds {'dates' if y.dtype.kind == 'M' else 'durations'} ({y.dtype}); a classifier's labels must be text, "
            "ints or bools, which a model file keeps exactly. Pass y.astype(str)."
        )
    if y.dtype == object:
        flat = np.asarray(y).ravel()
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in flat])
        if missing.all():
            raise GridCNNError(f"y holds no labels: all {len(flat)} are None or NaN. Pass the class of every row.")
        if missing.any():
            raise GridCNNError(
                f"Input y contains NaN or None (missing labels) in {_rows(missing)}. Drop those rows, or fill them in."
            )
        kinds = {}
        for v in flat:
            kinds.setdefault(_kind(v), v)
        if "str" in kinds and any(isinstance(v, str) and v.endswith("\0") for v in flat):
            # numpy's text arrays (what a model file keeps) drop trailing NULs: 'a\0' would come back as 'a'.
            raise GridCNNError(
                f"y holds a label ending in a NUL character ({next(v for v in flat if str(v).endswith(chr(0)))!r}), "
                "which text arrays cannot keep. Strip it: [s.rstrip('\\0') for s in y]."
            )
        if len(kinds) > 1:
            examples = ", ".join(f"{v!r} ({k})" for k, v in kinds.items())
            raise GridCNNError(
                f"y mixes label types: {examples}. Give every label the same type, such as all strings "
                "(y.astype(str)) or all ints."
            )
    elif y.dtype.kind == "f" and np.isnan(y).any():
        raise GridCNNError(f"Input y contains NaN (missing labels) in {_rows(np.isnan(np.ravel(y)))}. Drop those rows, or "
                           "fill them in.")
    try:
        check_classification_targets(y)
    except ValueError:
        kind = type_of_target(y)
        if kind == "continuous":
            sample = ", ".join(f"{v:g}" for v in np.unique(np.ravel(y))[:3])
            raise GridCNNError(
                f"Unknown label type: continuous. y holds {len(np.unique(y))} distinct float values ({sample}, ...), "
                "which looks like a regression target; GridCNNClassifier needs class labels. Bin the values "
                "(np.digitize) or pass integer or string classes."
            ) from None
        raise


def as_cells(X):
    """X as an array of numbers, or a message about its cells: ragged rows, strings, complex numbers."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        return X
    if isinstance(X, (list, tuple)):
        try:
            return np.asarray(X)
        except ValueError as exc:
            if "inhomogeneous" in str(exc):
                lengths = sorted({np.shape(r) for r in X[:1000]}, key=str)[:3]
                raise GridCNNError(
                    f"X is a ragged list: its rows have different shapes ({', '.join(map(str, lengths))}, ...). Every "
                    "grid must have the same shape: pad or crop the rows, or use an adapter that does (such as "
                    "SequenceGrid(length=...))."
                ) from None
            raise
    arr = np.asarray(X) if isinstance(X, np.ndarray) else X
    if isinstance(arr, np.ndarray):
        if arr.dtype.kind == "c":
            raise GridCNNError(
                "Complex data not supported: X holds complex numbers. Pass the magnitudes (np.abs(X)) or the real "
                "and imaginary parts as two channels (np.stack([X.real, X.imag], axis=1))."
            )
        if arr.dtype.kind in "USO" and arr.size:
            bad = next((v for v in arr.ravel()[:10000] if isinstance(v, (str, bytes, np.str_))), None)
            if bad is not None:
                raise GridCNNError(
                    f"X holds text ({bad!r}) where numbers were expected; a grid's cells must be numbers. Convert the "
                    "cells (X.astype(float)), or give texts to EmbeddingGrid."
                )
    return X


def check_axes(shape) -> None:
    """No axis of a grid may be empty (an array of shape (n, 0, 8) has no cells to convolve)."""
    if any(int(d) == 0 for d in shape[1:]):
        raise GridCNNError(
            f"X has shape {tuple(shape)}: axis {next(i for i, d in enumerate(shape) if i and d == 0)} is empty, so "
            "its grids hold no cells. Check how X was built or sliced."
        )


def explain_shape(shape, grid, n_features: int, name: str) -> str | None:
    """Why X of ``shape`` does not fit a model fitted on ``grid`` (C, H, W), when a common slip explains it."""
    shape, grid = tuple(int(v) for v in shape), tuple(int(v) for v in grid)
    c, h, w = grid
    # A lone grid, which no batch of a fitted layout can be: (1, L) or (1, H, W) are batches of one.
    fitted = [grid] if c > 1 else [(h, w)] if h > 1 else [(w,)]
    hints = {(w,): f"X[None] (shape (1, {w}))", (h, w): f"X[None] (shape (1, {h}, {w}))", grid: f"X[None] (shape (1, {c}, {h}, {w}))"}
    if shape in fitted:
        # sklearn's own checks look for "Reshape your data" when 1-D X comes.
        return (f"X has shape {shape}: one grid without the batch axis? This {name} predicts a batch of grids; for "
                f"one grid pass {hints[shape]}." + (" Reshape your data the same way." if len(shape) == 1 else ""))
    cells = int(np.prod(grid))
    if len(shape) >= 2 and shape[1] != n_features and int(np.prod(shape[1:])) == cells:
        layout = {cells: f"(n, {cells})", c: f"(n, {c}, {h}, {w})", h: f"(n, {h}, {w})"}.get(n_features, f"(n, {c}, {h}, {w})")
        return (f"X has shape {shape}, but this {name} was fitted on {c}x{h}x{w} grids (C, H, W) given as {layout}. "
                f"Reshape X with X.reshape({layout[1:-1].replace('n', '-1')}).")
    return None


def check_answers(logits, X, name: str) -> None:
    """Refuse rows the network gives no finite output for, naming them and their largest value.

    Finite but huge inputs (3e38 in a cell) overflow float32 inside the network (a sum of such cells is inf, and
    inf - inf is NaN), and softmax would turn that into NaN probabilities. No probability can be trusted there, so
    the rows are refused, as NaN in X is; the error's ``rows`` lets a caller name the files they came from.
    """
    import torch

    bad = np.flatnonzero(~torch.isfinite(logits).all(dim=1).numpy())
    if not len(bad):
        return
    first = int(bad[0])
    try:  # the largest |value| of the first such row, when X can be indexed (not a stream of files)
        row = X[first].detach().cpu().numpy() if torch.is_tensor(X) else np.asarray(
            X.iloc[first] if hasattr(X, "iloc") else X[first], dtype=np.float64)
        value = f" its largest value is {float(np.abs(row).max()):.3g}, and"
    except Exception:  # noqa: BLE001 (only the message's detail depends on it)
        value = ""
    which = f"Input {first}" + (f" (and {len(bad) - 1} more of {len(logits)}: {bad[1:6].tolist()})" if len(bad) > 1 else "")
    error = GridCNNError(
        f"{which} gives no answer: {name}'s output for it is not a finite number (it overflows float32):{value} "
        "values that large are far outside what the model was trained on. Scale the input as the training data "
        "was scaled (check its units), or leave it out."
    )
    error.rows = bad.tolist()
    raise error
