"""The estimator's ``callbacks`` parameter: plain functions called after every epoch."""

from __future__ import annotations

from gridcnn.training.loop import FitState, Hook


class Callbacks(Hook):
    """The estimator's ``callbacks``: each called as ``callback(estimator, record)`` after every epoch. The fit
    keeps the estimator's ``history_`` and ``n_iter_`` as of that epoch (a hook of its own, ahead of this one)."""

    def __init__(self, estimator, callbacks):
        self.estimator, self.callbacks = estimator, list(callbacks)

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        for callback in self.callbacks:
            callback(self.estimator, record)
