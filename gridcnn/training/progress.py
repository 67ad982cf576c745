"""The rich progress bar that ``verbose=1`` shows during ``fit`` (epoch, batch, loss, validation accuracy, ETA)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gridcnn.training.loop import FitState, Hook


class ProgressBar(Hook):
    """One bar over all batches of all epochs, its text updated at each batch and epoch end."""

    def __init__(self, batches_per_epoch: int, console=None):
        self.batches = batches_per_epoch
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val acc {task.fields[val]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = None

    def on_fit_start(self, fit: FitState) -> None:
        self._progress.__enter__()
        epochs = fit.config.epochs
        self._task = self._progress.add_task(
            "fit", total=epochs * self.batches, completed=fit.done * self.batches, epoch=fit.done + 1, epochs=epochs,
            loss="-", val="-",
        )

    def on_batch_end(self, fit: FitState, batch: int) -> None:
        if batch == 1:  # a time limit may have re-planned the epochs since the bar began
            epochs = fit.config.epochs
            self._progress.update(self._task, total=epochs * self.batches, epochs=epochs)
        self._progress.update(self._task, completed=fit.done * self.batches + batch, epoch=fit.done + 1)

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        val = record.get("valid_accuracy")
        self._progress.update(
            self._task, loss=f"{record['train_loss']:.4f}", val="-" if val is None else f"{val:.4f}"
        )

    def on_fit_end(self, fit: FitState) -> None:
        if self._task is not None:
            self._progress.__exit__(None, None, None)


class decode_progress:
    """A bar over the files of the first decoding pass (a grid cache being built); does nothing when disabled.

    Used as ``with decode_progress(n, "Decoding") as bar: bar(k)`` after each k files.
    """

    def __init__(self, total: int, description: str, enabled: bool = True):
        self.total, self.description, self.enabled = total, description, enabled
        self._progress = self._task = None

    def __enter__(self):
        if self.enabled:
            self._progress = Progress(
                TextColumn(f"[bold]{self.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), transient=False,
            ).__enter__()
            self._task = self._progress.add_task("decode", total=self.total)
        return self

    def __call__(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=done)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
