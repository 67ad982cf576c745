"""Write the whole training state to a checkpoint file after every epoch (the format is `gridcnn.modelfile.checkpoint`)."""

from __future__ import annotations

from pathlib import Path

from gridcnn.modelfile.checkpoint import save_checkpoint
from gridcnn.modelfile.codec import to_json
from gridcnn.training.loop import FitState, Hook


class Checkpoint(Hook):
    """Write the fit's state to ``path`` after every epoch (rank 0 only), with the estimator's fitted state
    (``estimator``, from `serialization.estimator_config`) and the data fingerprint (``data``)."""

    def __init__(self, path, estimator: dict, data: dict):
        self.path, self.estimator, self.data = Path(path), estimator, data
        to_json(estimator, "checkpoint")  # a parameter JSON cannot hold is refused before training, not after

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        save_checkpoint(self.path, fit.state_dict(), self.estimator, self.data)
