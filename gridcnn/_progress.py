"""The rich progress bar that ``verbose=1`` shows during ``fit`` (epoch, batch, loss, validation accuracy, ETA)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class FitProgress:
    """One bar over all batches of all epochs, its text updated at each batch and epoch end."""

    def __init__(self, epochs: int, batches_per_epoch: int, done: int = 0, console=None):
        self.epochs, self.batches, self.done = epochs, batches_per_epoch, done
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

    def __enter__(self):
        self._progress.__enter__()
        self._task = self._progress.add_task(
            "fit", total=self.epochs * self.batches, completed=self.done * self.batches, epoch=self.done + 1,
            epochs=self.epochs, loss="-", val="-",
        )
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def batch(self, epoch: int, batch: int) -> None:
        """Called after each batch of ``epoch`` (counted from 0, including epochs done before a resume)."""
        self._progress.update(self._task, completed=epoch * self.batches + batch, epoch=epoch + 1)

    def epoch_end(self, record: dict) -> None:
        """Called with the epoch's history record."""
        val = record.get("valid_accuracy")
        self._progress.update(
            self._task, loss=f"{record['train_loss']:.4f}", val="-" if val is None else f"{val:.4f}"
        )


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
