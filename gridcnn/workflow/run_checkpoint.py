"""The hook that keeps a run folder current while it trains: after every epoch, the checkpoint, the model and the
history, so a run that is interrupted or fails keeps its last finished epoch in all three."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from gridcnn.modelfile import persistence
from gridcnn.modelfile.codec import write_tmp
from gridcnn.training.hooks.checkpoint import Checkpoint
from gridcnn.training.loop import FitState

CHECKPOINT = "checkpoint.safetensors"
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr", "time")


def write_history(history: list[dict], path: Path) -> None:
    """One row per epoch, written whole (temporary file, then rename)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    write_tmp(path, text.getvalue().encode()).replace(path)


class RunCheckpoint(Checkpoint):
    """The run folder's one writer during a fit: ``RUN/checkpoint.safetensors`` (to resume from), then ``RUN/model``
    (the fitted ``model``, a pipeline or an estimator) and ``RUN/history.csv``, after every epoch and once more
    when the fit ends (early stopping may have put back an earlier epoch's weights). Give it to rank 0 only, in
    ``fit(hooks=[...])`` of the estimator inside ``model``."""

    def __init__(self, run: Path, model):
        super().__init__(Path(run) / CHECKPOINT)
        self.run, self.model = Path(run), model

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        super().on_epoch_end(fit, record)  # first: a model newer than its checkpoint could not be resumed exactly
        self._write_model(fit)

    def on_fit_end(self, fit: FitState) -> None:
        if fit.completed:  # an interrupted fit keeps what its last finished epoch wrote
            self._write_model(fit)

    def _write_model(self, fit: FitState) -> None:
        persistence.save(self.model, self.run / "model")
        write_history(fit.history, self.run / "history.csv")
