"""Early stopping on the validation loss, restoring the best epoch's weights."""

from __future__ import annotations

import copy
import math

from gridcnn.training.loop import FitState, Hook


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
