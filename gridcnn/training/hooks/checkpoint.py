"""Write the whole training state to a checkpoint file after every epoch (the format is `gridcnn.modelfile.checkpoint`)."""

from __future__ import annotations

from pathlib import Path

from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.checkpoint import save_checkpoint
from gridcnn.modelfile.codec import to_json
from gridcnn.training.loop import FitState, Hook


class Checkpoint(Hook):
    """Write the fit's state to ``path`` after every epoch, with the estimator's parameters and fitted state and a
    fingerprint of its training data, which the estimator's fit hands over (`bind`) before the first epoch: a
    resume checks them. Give it to rank 0 only."""

    def __init__(self, path):
        self.path = Path(path)
        self.estimator = self.data = None

    def bind(self, estimator: dict, data: dict) -> None:
        """Record which fit this is: ``estimator`` from `gridcnn.modelfile.codec.estimator_config` (without the
        history), ``data`` from `gridcnn.modelfile.checkpoint.data_fingerprint`."""
        to_json(estimator, "checkpoint")  # a parameter JSON cannot hold is refused before training, not after
        self.estimator, self.data = estimator, data

    def on_fit_start(self, fit: FitState) -> None:
        if self.estimator is None:
            raise GridCNNError(f"{type(self).__name__}({str(self.path)!r}) was not bound to a fit: pass it to "
                               "GridCNNClassifier.fit(hooks=[...]), which tells it the estimator and the data.")

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        save_checkpoint(self.path, fit.state_dict(), self.estimator, self.data)
