"""Hooks given to `fit`, and the run folder's one writer (`RunCheckpoint`): checkpoint, model and history in step."""

import copy
import csv

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

import gridcnn
from gridcnn import GridCNNClassifier
from gridcnn.modelfile.checkpoint import read_checkpoint
from gridcnn.training.hooks.checkpoint import Checkpoint
from gridcnn.training.loop import Hook, LoopConfig, TensorSource, run_epochs
from gridcnn.workflow.run_checkpoint import RunCheckpoint

X, Y = load_digits(return_X_y=True)
X, Y = X[:200].astype(np.float32) / 16, Y[:200]
SMALL = dict(input_shape=(8, 8), filters=4, hidden=8, batch_size=50, random_state=0)


def test_a_hook_given_to_fit_runs_after_the_estimators_own_and_is_no_parameter():
    calls, seen = [], []

    class Record(Hook):
        def on_epoch_end(self, fit, record):
            seen.append((record["epoch"], est.n_iter_, calls[-1]))

    est = GridCNNClassifier(**SMALL, max_epochs=2, callbacks=[lambda est, record: calls.append(record["epoch"])])
    est.fit(X, Y, hooks=[Record()])
    # after the estimator's callbacks, with the estimator's fitted state as of that epoch
    assert seen == [(1, 1, 1), (2, 2, 2)]
    assert "hooks" not in est.get_params()
    clone(est).fit(X, Y)  # a clone does not carry the hook along
    assert len(seen) == 2 and len(calls) == 4


def test_run_checkpoint_keeps_checkpoint_model_and_history_in_step(tmp_path):
    states, last = [], {}

    class Look(Hook):  # after the writer: what the run folder holds at the end of each epoch
        def on_epoch_end(self, fit, record):
            header, _ = read_checkpoint(tmp_path)
            rows = list(csv.DictReader((tmp_path / "history.csv").open()))
            states.append((gridcnn.load(tmp_path).n_iter_, header["done"], len(rows), float(rows[-1]["train_loss"])))
            last.update(copy.deepcopy(fit.model.state_dict()))

    est = GridCNNClassifier(**SMALL, max_epochs=40, lr=0.03, early_stopping=True, n_iter_no_change=1)
    est.fit(X, Y, hooks=[RunCheckpoint(tmp_path, est), Look()])
    n = est.n_iter_
    assert 1 < n < 40  # early stopping ended it: the best epoch is an earlier one
    assert states == [(e, e, e, pytest.approx(est.history_[e - 1]["train_loss"])) for e in range(1, n + 1)]
    # The fit's end wrote once more: the model folder holds the best epoch's weights, not the last epoch's.
    saved = gridcnn.load(tmp_path).model_.state_dict()
    assert all(torch.equal(saved[k], v.cpu()) for k, v in est.model_.state_dict().items())
    assert any(not torch.equal(saved[k], v) for k, v in last.items())
    assert len(list(csv.DictReader((tmp_path / "history.csv").open()))) == n


def test_a_checkpoint_no_fit_bound_says_how_to_use_it(tmp_path):
    model = torch.nn.Linear(4, 2)
    data = TensorSource(torch.zeros(8, 4), torch.zeros(8, dtype=torch.long))
    config = LoopConfig(epochs=1, batch_size=4, seed=0)
    with pytest.raises(gridcnn.GridCNNError, match=r"was not bound to a fit: pass it to GridCNNClassifier.fit\(hooks"):
        run_epochs(model, torch.optim.SGD(model.parameters(), lr=0.1), data, config, [Checkpoint(tmp_path / "c")])
    assert not (tmp_path / "c").exists()
