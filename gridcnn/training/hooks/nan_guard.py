"""Stop a fit whose training loss stopped being finite, with an error a person can act on."""

from __future__ import annotations

import math

from gridcnn.exceptions import GridCNNError
from gridcnn.training.loop import FitState, Hook


class NanGuard(Hook):
    """Reject an epoch whose training loss is not finite: the loop keeps the previous epoch and the fit stops with
    an error a person can act on. First in the list, so no later hook (a checkpoint) sees the spoilt epoch."""

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        if not math.isfinite(record["train_loss"]):
            raise GridCNNError(
                f"The training loss became {record['train_loss']}. Lower lr (now {fit.optimizer.defaults['lr']}), "
                "standardise the inputs, or add batch_norm=True."
            )
