"""fastai's ``fine_tune`` in the loop: the first ``freeze_epochs`` epochs train the head only, then every layer."""

from __future__ import annotations

from gridcnn.training.loop import FitState, Hook


class FineTune(Hook):
    """Freeze the network's body (`GridCNN.freeze_body`) while fewer than ``freeze_epochs`` epochs of this fit are
    done, and unfreeze it after.

    Which phase a fit is in follows from the epochs done alone, so the hook keeps no state of its own: a fit resumed
    from a checkpoint on either side of the boundary freezes (or not) exactly as the uninterrupted one did. Frozen
    parameters get no gradient, so the optimiser leaves them (and their weight decay) alone; with
    ``keep_statistics`` their batch-norm layers also stay in eval mode, normalising with ImageNet's statistics.
    """

    def __init__(self, freeze_epochs: int, keep_statistics: bool = True):
        self.freeze_epochs = int(freeze_epochs)
        self.keep_statistics = keep_statistics

    def _set(self, fit: FitState) -> None:
        fit.model.freeze_body(fit.done < self.freeze_epochs, keep_statistics=self.keep_statistics)

    def on_fit_start(self, fit: FitState) -> None:
        self._set(fit)

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        self._set(fit)

    def on_fit_end(self, fit: FitState) -> None:
        fit.model.freeze_body(False)  # the fitted model is a plain network again (predict, warm starts, export)
