"""Commands that look before training: ``gridcnn check`` (is the data a grid?), ``gridcnn summary`` (the network
a recipe builds), and the listings ``gridcnn datasets`` and ``gridcnn recipes``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from gridcnn.cli.app import DATA, USAGE, app, console, user_errors


SHAPE_SAMPLE = 256  # inputs the adapter learns the grid's shape from in `summary`


@app.command()
def summary(
    recipe: Path = typer.Argument(..., help="A recipe file."),
    set_: list[str] = typer.Option([], "--set", help="Override a key (repeatable)."),
):
    """The network's layers, output shapes and parameters for the recipe's grid shape, without training.

    Example: gridcnn summary recipes/image.toml --set estimator.architecture=lenet5
    """
    import numpy as np

    from gridcnn.estimator.pipeline import grid_shape, split_pipeline
    from gridcnn.workflow.recipes import at_most, build_pipeline, load_split, read_recipe

    with user_errors(USAGE):
        r = read_recipe(recipe, set_)
    with user_errors(DATA):
        X_train, y_train, _, _ = load_split(r)
        n_classes = len(np.unique(y_train))
        model = build_pipeline(r)
        adapters, est = split_pipeline(model)
        # Only the grid's shape is needed: the adapter learns it (a clip length, a token count, a picture size) from
        # a seeded sample, as a streamed fit does, instead of from every file (16 s of the audio recipe's 2,400 clips).
        X_sample, y_sample = at_most(X_train, y_train, SHAPE_SAMPLE, r.data.get("random_state", 0))
        grids = model[:-1].fit(X_sample, y_sample).transform(X_sample[:2]) if adapters else X_train[:2]
        shape = grid_shape(np.shape(grids), est.input_shape)
        s = est.summary(shape, n_classes)
    table = Table(title=f"{r.source}: grid {shape} (C, H, W), {n_classes} classes")
    table.add_column("Layer")
    table.add_column("Output shape (H, W, C)")
    table.add_column("Params", justify="right")
    for name, out_shape, params in s.rows:
        table.add_row(name, str(out_shape), f"{params:,}")
    console.print(table)
    console.print(f"Total params: {s.total_params:,}")


@app.command()
def check(
    data: Path = typer.Argument(..., help="A CSV, .npy, .npz, or a folder of images or sound files."),
    target: Optional[str] = typer.Option(None, "--target", help="The label column of a CSV."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write neighbour dependence against distance to this PNG."),
    random_state: int = typer.Option(0, "--random-state", help="Seed of the permutation tests."),
):
    """Does the data have grid structure a CNN can use? Exit 0 suitable, 1 rejected, 2 usage error.

    Example: gridcnn check customers.csv --target churned --plot check.png
    """
    from gridcnn.suitability import check_suitability, load_check_data, plot_suitability

    with user_errors(USAGE):
        X, y, notes = load_check_data(data, target=target)
    with user_errors(USAGE):  # exit 1 means "rejected": any mistake in the input is a usage error here
        report = check_suitability(X, y, random_state=random_state)
        if plot is not None:
            plot_suitability(report, plot)
    verdict = "[bold green]SUITABLE[/]: grid structure found" if report.suitable else "[bold red]REJECTED[/]: no grid structure"
    console.print(f"{escape(str(data))}: {verdict}")
    table = Table()
    for col in ("axis", "ordered", "|corr| at 1", "shuffled", "z", "p", "grouped p"):
        table.add_column(col, justify="left" if col == "axis" else "right")
    for ax in report.axes:
        table.add_row(
            f"{ax.name} ({ax.length})", "[green]yes[/]" if ax.ordered else "[red]no[/]", f"{ax.statistic:.3f}",
            f"{ax.null_mean:.3f}", f"{ax.z:.1f}", f"{ax.p_value:.3g}", f"{ax.grouped_p_value:.3g}",
        )
    console.print(table)
    for line in [*notes, *report.evidence]:
        console.print(f"• {escape(line)}", highlight=False)
    console.print(f"[bold]Recommendation:[/] {escape(report.recommendation)}", highlight=False)
    if plot is not None:
        console.print(f"Plot written to {plot}")
    raise typer.Exit(0 if report.suitable else 1)


@app.command()
def datasets():
    """List the data sets recipes can name."""
    from gridcnn.data import DATASETS

    table = Table(title="Data sets")
    for col in ("name", "modality", "splits", "adapter", "description"):
        table.add_column(col)
    for name in DATASETS:
        info = DATASETS.get(name)
        table.add_row(name, info.modality, ", ".join(info.splits) or "-", info.adapter or "-", info.description)
    console.print(table)


@app.command()
def recipes():
    """List the shipped recipes."""
    from gridcnn.workflow.recipes import RECIPES_DIR

    table = Table(title="Shipped recipes: gridcnn fit recipes/NAME.toml (or NAME)")
    table.add_column("recipe")
    table.add_column("what it trains")
    for path in sorted(RECIPES_DIR.glob("*.toml")):
        first = next((l.lstrip("# ").strip() for l in path.read_text().splitlines() if l.startswith("#")), "")
        table.add_row(f"recipes/{path.name}", first)
    console.print(table)
