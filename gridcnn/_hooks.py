"""The hooks `GridCNNClassifier.fit` runs between epochs: the NaN guard, early stopping and user callbacks.

(The checkpoint hook lives with the checkpoint format in ``checkpoint.py``, the progress bar in ``_progress.py``.)
"""

from __future__ import annotations

import copy
import math

from ._fit_loop import FitState, Hook
from .exceptions import GridCNNError


class NanGuard(Hook):
    """Reject an epoch whose training loss is not finite: the loop keeps the previous epoch and the fit stops with
    an error a person can act on. First in the list, so no later hook (a checkpoint) sees the spoilt epoch."""

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        if not math.isfinite(record["train_loss"]):
            raise GridCNNError(
                f"The training loss became {record['train_loss']}. Lower lr (now {fit.optimizer.defaults['lr']}), "
                "standardise the inputs, or add batch_norm=True."
            )


class EarlyStopping(Hook):
    """Stop when the validation loss has not improved (by more than ``min_delta``) for ``patience`` epochs, and put
    back the best epoch's weights when the fit ends. Its best loss, best weights and patience count are its state,
    so a resumed fit stops where an uninterrupted one would."""

    name = "early_stopping"

    def __init__(self, patience: int, min_delta: float = 1e-4):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_weights, self.stale = math.inf, None, 0

    def on_fit_start(self, fit: FitState) -> None:
        fit.stop = fit.stop or self.stale >= self.patience  # resumed from a fit that early stopping had ended

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        if record["valid_loss"] < self.best_loss - self.min_delta:
            self.best_loss, self.stale = record["valid_loss"], 0
            self.best_weights = copy.deepcopy(fit.model.state_dict())
        else:
            self.stale += 1
        fit.stop = fit.stop or self.stale >= self.patience

    def on_fit_end(self, fit: FitState) -> None:
        if fit.completed and self.best_weights is not None:
            fit.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        return {"best_loss": self.best_loss if math.isfinite(self.best_loss) else None, "stale": self.stale,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
        self.stale, self.best_weights = state["stale"], state["best_weights"]


class Callbacks(Hook):
    """The estimator's ``callbacks``: each called as ``callback(estimator, record)`` after every epoch, with the
    estimator's ``history_`` and ``n_iter_`` as of that epoch."""

    def __init__(self, estimator, callbacks):
        self.estimator, self.callbacks = estimator, list(callbacks)

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        self.estimator.history_, self.estimator.n_iter_ = fit.history, len(fit.history)
        for callback in self.callbacks:
            callback(self.estimator, record)
