"""Where a model's pieces meet: a pipeline's adapters and its estimator, and the grid the estimator makes of X.

Every module that handles "an estimator, or a Pipeline of adapters ending in one" (model files, run folders,
``gridcnn predict`` / ``summary`` / ``evaluate``, recipes) splits it with `split_pipeline`; the estimator and
``gridcnn summary`` turn X's shape into the network's (C, H, W) with `grid_shape`.
"""

from __future__ import annotations

import math

from sklearn.pipeline import Pipeline

from gridcnn.exceptions import GridCNNError


def split_pipeline(model) -> tuple[list, object]:
    """``(adapters, estimator)``: the steps of a Pipeline before its last, and its last; ``([], model)`` otherwise.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> split_pipeline(make_pipeline(StandardScaler(), LogisticRegression()))
    ([StandardScaler()], LogisticRegression())
    >>> split_pipeline(LogisticRegression())
    ([], LogisticRegression())
    """
    if isinstance(model, Pipeline):
        *adapters, estimator = [step for _, step in model.steps]
        return adapters, estimator
    return [], model


def grid_shape(x_shape, input_shape=None) -> tuple[int, int, int]:
    """The (C, H, W) grid of each row of an X shaped ``x_shape``: the estimator's rule, shared with ``summary``.

    ``input_shape`` ((H, W) or (C, H, W)) reshapes each row, which must hold as many values; without it, 2-D X
    holds 1 x L sequences, 3-D X one-channel (H, W) grids and 4-D X (C, H, W) grids.

    Examples
    --------
    >>> grid_shape((100, 64)), grid_shape((100, 64), (8, 8)), grid_shape((100, 28, 28)), grid_shape((5, 3, 32, 32))
    ((1, 1, 64), (1, 8, 8), (1, 28, 28), (3, 32, 32))
    """
    x_shape = tuple(int(v) for v in x_shape)
    n_values = math.prod(x_shape[1:])
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if len(shape) not in (2, 3) or math.prod(shape) != n_values:
            raise GridCNNError(
                f"input_shape={shape} does not fit rows of {n_values} values (X has shape {x_shape}). Give "
                f"(height, width) or (channels, height, width) whose product is {n_values}."
            )
        return shape if len(shape) == 3 else (1, *shape)
    if len(x_shape) not in (2, 3, 4):
        raise GridCNNError(
            f"X must be 2-D (n, L), 3-D (n, H, W) or 4-D (n, C, H, W). Got a {len(x_shape)}-D array of shape {x_shape}."
        )
    return {2: (1, 1, x_shape[-1]), 3: (1, *x_shape[1:]), 4: x_shape[1:]}[len(x_shape)]
