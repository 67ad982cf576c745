"""``gridcnn fit``: read the recipe (or choose one for data given without one), claim the run folder, and train it
with `gridcnn.workflow.runs.fit_recipe`, here or in ``--nproc`` processes (`gridcnn.cli.launch`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from gridcnn.cli.app import (DATA, STATE, USAGE, app, console, err_console, leave_process_group, print_metrics,
                             user_errors)
from gridcnn.exceptions import GridCNNError


@app.command()
def fit(
    recipe: Optional[Path] = typer.Argument(
        None, help="A recipe file (or a shipped recipe's name, such as audio), or your data: a class folder of images "
        "or sound files, a .csv/.tsv/.parquet table, an .npz, or an .npy of samples (labels: y.npy beside it)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set estimator.max_epochs=3 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<recipe>-<timestamp>)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps; overrides the recipe."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Go on from this run folder's last finished epoch."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train with N processes (DDP) on this machine via torchrun."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run that --out holds (refused otherwise)."),
    target: Optional[str] = typer.Option(None, "--target", help="Data tables: the label column (default: one named "
                                         "like a label); an .npy of samples: its labels' .npy file."),
    time_limit: Optional[str] = typer.Option(None, "--time-limit", help="Stop after the last epoch that fits in this "
                                             "time: 90s, 10m, 1h30m."),
    force: bool = typer.Option(False, "--force", help="Data tables: train even when the suitability check finds no "
                               "order in the columns."),
):
    """Train from a recipe, or from data with no recipe, and write a run folder (model, recipe, metrics, history,
    plots, checkpoint).

    Examples: gridcnn fit recipes/image.toml --set estimator.max_epochs=2 --out runs/try;
    gridcnn fit photos/ --time-limit 10m (then gridcnn fit RUN/recipe.toml repeats it)
    """
    # Imported here, before any user_errors: a Ctrl-C inside an import can leave a half-initialised module whose
    # next use fails (scipy's RecursionError), which user_errors would report as a bug; out here it is an interrupt.
    import gridcnn.training.distributed  # noqa: F401
    import gridcnn.training.steps  # noqa: F401
    import gridcnn.workflow.recipes  # noqa: F401
    import gridcnn.workflow.run_folder  # noqa: F401
    import gridcnn.workflow.runs  # noqa: F401

    with user_errors(USAGE):
        r, out, limit = _request(recipe, set_, out, resume, nproc, target, force, time_limit)
    if r is None:  # data without a recipe: choose one (a data problem, such as a refused table, exits 1)
        with user_errors(DATA):
            r = _auto(recipe, target, force, set_)
    with user_errors(USAGE):
        run = _claim(r, out, device, resume is not None, overwrite, lock=nproc == 1)
    if nproc > 1:
        from gridcnn.cli.launch import launch_fit

        chosen = r if recipe is not None and _is_data(recipe) else None  # the workers run the recipe chosen here
        raise typer.Exit(launch_fit(nproc, recipe, set_, run.path, device, resume, overwrite, time_limit, chosen))
    _train(r, run, device, resume is not None, limit)


def _request(recipe, set_, out, resume, nproc, target, force, time_limit):
    """Check the arguments (each mistake exits 2) and return (the recipe, or None for data given without one; the
    run folder asked for; the time limit in seconds)."""
    from gridcnn.training.distributed import world
    from gridcnn.workflow.recipes import read_recipe

    if nproc > 1 and world()[1] > 1:
        raise GridCNNError("--nproc starts torchrun itself; under torchrun already, leave --nproc out.")
    if resume is not None:
        if recipe is not None or set_ or out is not None:
            raise GridCNNError(
                "--resume RUN continues that run with its own recipe and folder; drop the RECIPE argument, --set "
                "and --out (or start a new run without --resume)."
            )
        if not (resume / "recipe.toml").is_file():
            raise GridCNNError(f"{resume} is not a run folder (it has no recipe.toml). Pass the folder gridcnn fit wrote.")
        from gridcnn.modelfile.checkpoint import read_checkpoint

        read_checkpoint(resume)  # before loading data: is there an epoch to go on from?
        r, out = read_recipe(resume / "recipe.toml"), resume
    elif recipe is None:
        raise GridCNNError("gridcnn fit needs a RECIPE (such as recipes/audio.toml), or --resume RUN.")
    elif _is_data(recipe):
        if not recipe.exists():
            raise GridCNNError(f"{recipe} does not exist. Give a recipe (.toml), a class folder, a .csv/.tsv/.parquet "
                               "table, an .npz file or an .npy of samples.")
        if recipe.is_file():  # a wrong or ambiguous --target, or no labels at all: exit 2, from the header
            from gridcnn.data.reader import label_source

            label_source(recipe, target, required=True)
        r = None
    else:
        if target is not None or force:
            raise GridCNNError("--target and --force are for data given without a recipe; a recipe sets "
                               "data.target itself (--set data.target=COLUMN).")
        r = read_recipe(recipe, set_)
    limit = None
    if time_limit is not None:
        from gridcnn.training.hooks.time_limit import parse_duration

        limit = parse_duration(time_limit)
    return r, out, limit


def _is_data(path: Path) -> bool:
    """Data given without a recipe: a folder, or a file that is not TOML (a recipe name has no suffix)."""
    suffix = path.suffix.lower()  # a folder named like a recipe is a mistaken recipe, not data
    return suffix != ".toml" and (path.is_dir() or suffix in (".csv", ".tsv", ".parquet", ".npz", ".npy"))


def _auto(path: Path, target, force: bool, overrides):
    """Choose a recipe for the data at ``path``, print the choices in one table, and return the recipe."""
    from gridcnn.workflow.auto import auto_recipe, training_choice
    from gridcnn.workflow.recipes import parse_override, parse_recipe

    auto = auto_recipe(path, target=target, force=force)
    r, choices = auto.recipe, list(auto.choices)
    if overrides:
        raw, given = r.to_dict(), []
        for text in overrides:
            section, key, value = parse_override(text)
            raw.setdefault(section, {})[key] = value
            given.append((section, key, value))
        r = parse_recipe(raw, source=r.source)
        # The table shows what will run: the training row as overridden, and each override on a row of its own.
        keys = {k for s, k, _ in given if s == "estimator"}
        choices = [training_choice(r.estimator, keys) if what == "training" else (what, choice, why)
                   for what, choice, why in choices]
        choices += [("--set", f"{s}.{k}={v!r}" if isinstance(v, str) else f"{s}.{k}={v}", "given on the command line")
                    for s, k, v in given]
    table = Table(title=f"gridcnn chose, for {path}")
    for col in ("", "choice", "why"):
        table.add_column(col)
    for what, choice, why in choices:
        table.add_row(what, escape(choice), escape(why))
    console.print(table)
    return r


def _claim(r, out, device, resume: bool, overwrite: bool, lock: bool):
    """The run folder, claimed: rank 0 creates and locks it while the others wait for it (under --nproc, the
    workers lock it); its warnings (a stale lock taken over) print as one yellow line each."""
    from gridcnn.training.steps import resolve_device
    from gridcnn.workflow.run_folder import claim_run_dir
    from gridcnn.workflow.runs import default_run_dir

    where = resolve_device(device or r.estimator.get("device", "auto"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = claim_run_dir(out or default_run_dir(r), resume=resume, overwrite=overwrite, lock=lock, device=where)
    for w in caught:
        err_console.print(f"[bold yellow]Warning:[/] {escape(str(w.message))}", highlight=False, soft_wrap=True)
    return run


def _train(r, run, device, resume: bool, limit) -> None:
    """Train in this process (one rank of several under torchrun); Ctrl-C says how to go on from the last epoch."""
    from gridcnn.training.distributed import is_main, world
    from gridcnn.workflow.runs import CHECKPOINT, fit_recipe

    main, out = is_main(), run.path
    if main:
        console.print(f"[bold]gridcnn fit[/] {escape(r.source)} -> {escape(str(out))}"
                      + (f" ({world()[1]} processes)" if world()[1] > 1 else ""))
    try:
        with user_errors(DATA):
            result = fit_recipe(r, run, device=device, resume=resume, time_limit=limit,
                                on_stage=lambda s: console.print(f"[cyan]•[/] {escape(s)}"))
    except KeyboardInterrupt:
        if main:
            saved = (out / CHECKPOINT).is_file()
            where = (f"the last finished epoch is saved in {out}; go on with: gridcnn fit --resume {out}" if saved
                     else "no epoch had finished")
            # Not wrapped: the resume command must survive a copy and paste whatever the path's length.
            err_console.print(f"[bold yellow]Interrupted:[/] {escape(where)}.", soft_wrap=True)
        STATE["interrupt_shown"] = True
        raise typer.Exit(130) from None
    finally:
        leave_process_group()
    if main:
        print_metrics(result)
        console.print(f"[green]Run folder:[/] {escape(result['run_dir'])}")
