"""What every ``gridcnn`` command shares: the typer app, the consoles, and the edge where a user's mistake becomes
one red line and an exit status: 2 (usage: arguments, recipe) or 1 (data, training); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

import typer
from rich.console import Console
from typer.core import TyperOption
from rich.markup import escape
from rich.table import Table

from gridcnn.exceptions import GridCNNError

app = typer.Typer(
    help="Classify anything that is a grid.\n\nExample: gridcnn fit recipes/audio.toml --set estimator.max_epochs=3",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# typer's rich help prints a type after every option, plain flags included ("--overwrite <bool>"), which reads as
# if the flag took a value; its plain help leaves flags bare, and so does this.
_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag or self.count else _display_type(self, ctx=ctx)

console = Console()
err_console = Console(stderr=True)
STATE = {"debug": bool(os.environ.get("GRIDCNN_DEBUG"))}
USAGE, DATA = 2, 1


@contextlib.contextmanager
def user_errors(code: int = DATA):
    """Turn a user's mistake into one red line and exit ``code``; with --debug, let the traceback through."""
    from gridcnn.training.distributed import OtherRankFailed

    try:
        yield
    except OtherRankFailed:
        # Rank 0 prints the one line; give it time to, and to exit first, so torchrun stops this process and names
        # rank 0's failure as the cause (a launcher that does not stop it lets it exit after the pause). Leave the
        # process group first: once rank 0 closed its connections, a waiting rank still in the group was seen
        # to abort (SIGABRT) under load before rank 0 had exited, and torchrun then named that as the cause.
        leave_process_group()
        time.sleep(10)
        raise typer.Exit(code) from None
    except (GridCNNError, ValueError, OSError) as exc:
        if STATE["debug"]:
            raise
        message = str(exc) if isinstance(exc, GridCNNError) else f"{type(exc).__name__}: {exc}"
        err_console.print(f"[bold red]Error{_rank_tag()}:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None
    except Exception as exc:  # a bug of ours, not the user's: still one line, and how to report it
        if STATE["debug"]:
            raise
        err_console.print(
            f"[bold red]Error{_rank_tag()}:[/] {escape(f'{type(exc).__name__}: {exc}')} (this looks like a gridcnn bug: run "
            "again with gridcnn --debug ... and report the traceback)", highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _rank_tag() -> str:
    """" (rank N)" under torchrun, so each process's error says whose it is."""
    from gridcnn.training.distributed import world

    rank, size, _ = world()
    return f" (rank {rank})" if size > 1 else ""


def _print_version(asked: bool) -> None:
    if asked:
        from gridcnn import __version__

        console.print(f"gridcnn {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _options(ctx: typer.Context,
             debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
             version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print gridcnn's version and exit.")):
    STATE["debug"] = STATE["debug"] or debug
    if not STATE["debug"]:
        _one_line_warnings(ctx)
    _show_progress_logs(ctx)


class _StageLines(logging.Handler):
    """gridcnn's own log lines at INFO and above (a data set being built on first use) as the command's stage lines."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[cyan]  ·[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


def _show_progress_logs(ctx: typer.Context) -> None:
    logger = logging.getLogger("gridcnn")
    handler, level = _StageLines(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)

    def remove():
        logger.removeHandler(handler)
        logger.setLevel(level)

    ctx.call_on_close(remove)


def _one_line_warnings(ctx: typer.Context) -> None:
    """Print each warning as one yellow line for the command's run: Python's own form names the file and line that
    warned, which for a person is someone else's source (sklearn's, for a skipped file)."""
    import warnings

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        err_console.print(f"[bold yellow]Warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)

    warnings.showwarning = show
    ctx.call_on_close(lambda: setattr(warnings, "showwarning", previous))


def leave_process_group() -> None:
    """Leave torchrun's process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def print_metrics(metrics: dict) -> None:
    """The test accuracy and a per-class table, as `gridcnn fit` and `gridcnn evaluate` show them."""
    table = Table(title=f"Test accuracy {metrics['accuracy']:.4f} on {metrics['n_samples']} samples")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, m in metrics["per_class"].items():
        table.add_row(label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    console.print(table)
