"""fastai's ``fine_tune`` in the loop: the first ``freeze_epochs`` epochs train the head only, then every layer; and
the pretrained body's batch-norm statistics kept for the whole fit when asked."""

from __future__ import annotations

from gridcnn.training.loop import FitState, Hook


class FineTune(Hook):
    """Freeze the network's body (`GridCNN.freeze_body`) while fewer than ``freeze_epochs`` epochs of this fit are
    done, and unfreeze it after.

    Which phase a fit is in follows from the epochs done alone, so the hook keeps no state of its own: a fit resumed
    from a checkpoint on either side of the boundary freezes (or not) exactly as the uninterrupted one did. Frozen
    parameters get no gradient, so the optimiser leaves them (and their weight decay) alone; with
    ``keep_statistics`` their batch-norm layers also stay in eval mode, normalising with ImageNet's statistics.
    With ``keep_after`` they stay in eval mode once the body trains too (`GridCNN.keep_statistics`).
    """

    def __init__(self, freeze_epochs: int, keep_statistics: bool = True, keep_after: bool = False):
        self.freeze_epochs = int(freeze_epochs)
        self.keep_statistics = keep_statistics
        self.keep_after = keep_after

    def _set(self, fit: FitState) -> None:
        frozen = fit.done < self.freeze_epochs
        fit.model.freeze_body(frozen, keep_statistics=self.keep_statistics)
        if not frozen and self.keep_after:
            fit.model.keep_statistics(True)

    def on_fit_start(self, fit: FitState) -> None:
        self._set(fit)

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        self._set(fit)

    def on_fit_end(self, fit: FitState) -> None:
        fit.model.freeze_body(False)  # the fitted model is a plain network again (predict, warm starts, export)
