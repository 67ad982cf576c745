"""The ``gridcnn`` command line: thin typer commands over the library, one module per group of commands, and the
only package that prints.

`gridcnn.cli.app` holds the typer ``app`` and the one-red-line error edge; importing the modules below registers
their commands on it, in the order ``gridcnn --help`` lists them.
"""

from __future__ import annotations

from gridcnn.cli import fit  # noqa: F401  (each import registers its commands, in the order --help lists them)
from gridcnn.cli import evaluate  # noqa: F401
from gridcnn.cli import inspection  # noqa: F401
from gridcnn.cli import deploy  # noqa: F401
from gridcnn.cli.app import STATE, app, err_console

__all__ = ["app", "main", "STATE"]


def main() -> None:
    """Entry point of the ``gridcnn`` script and ``python -m gridcnn``.

    typer ends a command interrupted by Ctrl-C with exit 130 and no word; one interrupted before `fit` trains (or in
    another command) says so in one line, as Ctrl-C during training does.
    """
    try:
        app()
    except SystemExit as exc:
        if exc.code == 130 and not STATE.get("interrupt_shown"):
            err_console.print("[bold yellow]Interrupted[/] while starting; nothing was trained.", soft_wrap=True)
        raise
