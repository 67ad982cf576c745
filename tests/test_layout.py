"""The package's seams: one pipeline splitter, one grid shape rule, and imports that leave the caller's state alone."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.estimator.pipeline import grid_shape, split_pipeline
from gridcnn.adapters import SequenceGrid


def test_split_pipeline():
    est, adapter = GridCNNClassifier(), SequenceGrid()
    assert split_pipeline(Pipeline([("sequence", adapter), ("classifier", est)])) == ([adapter], est)
    assert split_pipeline(est) == ([], est)


@pytest.mark.parametrize("x_shape, input_shape, expected", [
    ((10, 64), None, (1, 1, 64)), ((10, 64), (8, 8), (1, 8, 8)), ((10, 64), (4, 4, 4), (4, 4, 4)),
    ((10, 28, 28), None, (1, 28, 28)), ((10, 3, 32, 32), None, (3, 32, 32)), ((10, 1, 28, 28), (28, 28), (1, 28, 28)),
])
def test_grid_shape_is_what_the_estimator_builds(x_shape, input_shape, expected):
    assert grid_shape(x_shape, input_shape) == expected
    X = np.random.default_rng(0).random(x_shape).astype(np.float32)
    est = GridCNNClassifier(input_shape=input_shape, filters=2, hidden=4, max_epochs=1, check_input="off",
                            kernel_size=1, pool="none", random_state=0)
    assert est.fit(X, np.arange(10) % 2).input_shape_ == expected


def test_grid_shape_refuses_what_does_not_fit():
    with pytest.raises(GridCNNError, match=r"input_shape=\(7, 7\) does not fit rows of 64 values \(X has shape \(10, 64\)\)"):
        grid_shape((10, 64), (7, 7))


def test_importing_plots_keeps_the_callers_matplotlib_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import gridcnn.workflow.plots, gridcnn.workflow.runs, gridcnn.suitability; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg"
