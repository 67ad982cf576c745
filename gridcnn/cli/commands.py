"""The ``gridcnn`` command line: thin typer commands over the library; the only module that prints.

A user's mistake prints one red line and exits 2 (usage: arguments, recipe) or 1 (data, training); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
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
        _leave_process_group()
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


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")):
    STATE["debug"] = STATE["debug"] or debug


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
    from gridcnn.training.distributed import is_main, world
    from gridcnn.workflow.run_folder import claim_run_dir
    from gridcnn.training.steps import resolve_device
    from gridcnn.workflow.recipes import read_recipe
    from gridcnn.workflow.runs import default_run_dir, fit_recipe

    main = is_main()
    with user_errors(USAGE):
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
            if recipe.is_file() and recipe.suffix.lower() in (".csv", ".tsv", ".parquet"):
                from gridcnn.workflow.auto import find_target, read_frame

                find_target(read_frame(recipe, header_only=True), recipe, target)  # a wrong --target: exit 2
            if recipe.is_file() and recipe.suffix.lower() == ".npy":
                from gridcnn.workflow.auto import find_labels

                find_labels(recipe, target)  # no labels file: exit 2
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
    if r is None:  # data without a recipe: choose one (a data problem, such as a refused table, exits 1)
        with user_errors(DATA):
            r = _auto(recipe, target, force, set_)
    with user_errors(USAGE):
        where = resolve_device(device or r.estimator.get("device", "auto"))
        # Rank 0 creates and locks the folder while the others wait for it (under --nproc, the workers lock it).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = claim_run_dir(out or default_run_dir(r), resume=resume is not None, overwrite=overwrite,
                                lock=nproc == 1, device=where)
        for w in caught:
            err_console.print(f"[bold yellow]Warning:[/] {escape(str(w.message))}", highlight=False, soft_wrap=True)
        out = run.path
    if nproc > 1:
        chosen = None
        if recipe is not None and _is_data(recipe):  # the workers run the recipe chosen here, not a choice of their own
            chosen = out / ".chosen-recipe.toml"  # not a run file: the workers' claim of the folder must not refuse it
            chosen.write_text(r.to_toml())
            recipe, set_ = chosen, []
        try:
            status = _launch(nproc, recipe, set_, out, device, resume, overwrite, time_limit)
        finally:
            if chosen is not None:  # the run folder keeps recipe.toml, written by the workers
                chosen.unlink(missing_ok=True)
        raise typer.Exit(status)
    if main:
        console.print(f"[bold]gridcnn fit[/] {escape(r.source)} -> {escape(str(out))}"
                      + (f" ({world()[1]} processes)" if world()[1] > 1 else ""))
    try:
        with user_errors(DATA):
            result = fit_recipe(r, run, device=device, resume=resume is not None, time_limit=limit,
                                on_stage=lambda s: console.print(f"[cyan]•[/] {escape(s)}"))
    except KeyboardInterrupt:
        if main:
            saved = (out / "checkpoint.safetensors").is_file()
            where = (f"the last finished epoch is saved in {out}; go on with: gridcnn fit --resume {out}" if saved
                     else "no epoch had finished")
            # Not wrapped: the resume command must survive a copy and paste whatever the path's length.
            err_console.print(f"[bold yellow]Interrupted:[/] {escape(where)}.", soft_wrap=True)
        STATE["interrupt_shown"] = True
        raise typer.Exit(130) from None
    finally:
        _leave_process_group()
    if main:
        _print_metrics(result)
        console.print(f"[green]Run folder:[/] {escape(result['run_dir'])}")


def _is_data(path: Path) -> bool:
    """Data given without a recipe: a folder, or a file that is not TOML (a recipe name has no suffix)."""
    suffix = path.suffix.lower()  # a folder named like a recipe is a mistaken recipe, not data
    return suffix != ".toml" and (path.is_dir() or suffix in (".csv", ".tsv", ".parquet", ".npz", ".npy"))


def _auto(path: Path, target, force: bool, overrides):
    """Choose a recipe for the data at ``path``, print the choices in one table, and return the recipe."""
    from gridcnn.workflow.auto import auto_recipe
    from gridcnn.workflow.recipes import parse_override, parse_recipe

    auto = auto_recipe(path, target=target, force=force)
    r = auto.recipe
    if overrides:
        raw = r.to_dict()
        for text in overrides:
            section, key, value = parse_override(text)
            raw.setdefault(section, {})[key] = value
        r = parse_recipe(raw, source=r.source)
    table = Table(title=f"gridcnn chose, for {path}")
    for col in ("", "choice", "why"):
        table.add_column(col)
    for what, choice, why in auto.choices:
        table.add_row(what, escape(choice), escape(why))
    console.print(table)
    return r


def _launch(nproc: int, recipe, set_, out, device, resume, overwrite=False, time_limit=None) -> int:
    """Run this same ``gridcnn fit`` under torchrun with ``nproc`` processes; return the exit status.

    torchrun runs in this process so that a failed worker, which has already printed its one-line error, ends
    with that worker's exit status instead of torchrun's traceback and failure report.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = ["--standalone", f"--nproc_per_node={nproc}", "-m", "gridcnn", *(["--debug"] if STATE["debug"] else [])]
    if resume is not None:
        args += ["fit", "--resume", str(resume)]
    else:
        args += ["fit", str(recipe), "--out", str(out), *[a for item in set_ for a in ("--set", item)]]
        args += ["--overwrite"] if overwrite else []
    args += ["--device", device] if device else []
    args += ["--time-limit", time_limit] if time_limit else []
    # Split the cores between the processes (torchrun would set one thread each and warn about it).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    if not STATE["debug"]:  # torch's elastic modules set their own logger levels: quieten each of them
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args(args))
    except ChildFailedError as exc:
        if STATE["debug"]:
            raise
        _, failure = exc.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1
    except (KeyboardInterrupt, SignalException):
        return 130
    return 0


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _print_metrics(metrics: dict) -> None:
    table = Table(title=f"Test accuracy {metrics['accuracy']:.4f} on {metrics['n_samples']} samples")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for label, m in metrics["per_class"].items():
        table.add_row(label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    console.print(table)


@app.command()
def evaluate(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    data: Optional[Path] = typer.Option(None, "--data", help="A class folder (its test/ when it has train/ and test/), "
                                        ".npz or .csv/.tsv/.parquet table (default: the run's test split)."),
    target: Optional[str] = typer.Option(None, "--target", help="The label column of a CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Metrics of a trained model on its recipe's test split or on given data.

    Example: gridcnn evaluate runs/audio-20261122-101500
    """
    from gridcnn.modelfile.persistence import load
    from gridcnn.workflow.recipes import load_split, read_recipe
    from gridcnn.workflow.runs import evaluate_model

    with user_errors(USAGE):
        model = load(run_or_model)
        if data is None:
            recipe_path = run_or_model / "recipe.toml"
            if not recipe_path.is_file():
                raise GridCNNError(f"{run_or_model} has no recipe.toml to find the test split in. Pass --data PATH.")
            recipe = read_recipe(recipe_path)
    with user_errors(DATA):
        if data is None:
            _, _, X, y = load_split(recipe)
        else:
            from gridcnn.data import load_path

            if target is None and (run_or_model / "recipe.toml").is_file():
                target = read_recipe(run_or_model / "recipe.toml").data.get("target")  # the column it was fitted on
            split = "test" if data.is_dir() and (data / "test").is_dir() and (data / "train").is_dir() else None
            X, y = load_path(str(data), split=split, target=target)
        metrics = evaluate_model(model, X, y)
    if as_json:
        console.print_json(json.dumps(metrics))
    else:
        _print_metrics(metrics)


@app.command()
def predict(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    inputs: list[str] = typer.Argument(..., help="Files or folders (sound, image, .npy); for text models, texts or .txt files."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
):
    """Predict the class of each input: one line per input with its label and probability.

    Example: gridcnn predict runs/audio-20261122-101500 clip.wav recordings/
    """
    from gridcnn.estimator.pipeline import split_pipeline
    from gridcnn.modelfile.persistence import load
    from gridcnn.cli.inputs import check_numbers, gather_inputs, name_rows

    with user_errors(USAGE):
        model = load(run_or_model)
        names, X = gather_inputs(model, inputs)
    with user_errors(DATA):
        from gridcnn.streaming import file_adapter, predict_files

        check_numbers(names, X)
        try:
            if file_adapter(model) is not None:  # image and sound files are decoded batch by batch, never all at once
                proba, names = predict_files(model, X)
            else:
                proba = model.predict_proba(X)
        except GridCNNError as exc:  # rows the network overflows on: named by their files
            raise name_rows(exc, names) from None
    classes = split_pipeline(model)[1].classes_
    for name, p in zip(names, proba):
        label, prob = classes[p.argmax()], float(p.max())
        if as_json:
            print(json.dumps({"input": name, "label": label.item() if hasattr(label, "item") else label,
                              "probability": round(prob, 6)}, allow_nan=False))
        else:
            console.print(escape(f"{name}\t{label}\t{prob:.4f}"), highlight=False, soft_wrap=True)


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
    from gridcnn.workflow.recipes import build_pipeline, load_split, read_recipe

    with user_errors(USAGE):
        r = read_recipe(recipe, set_)
    with user_errors(DATA):
        X_train, y_train, _, _ = load_split(r)
        model = build_pipeline(r)
        adapters, est = split_pipeline(model)
        from gridcnn.streaming import file_adapter, fit_adapter, is_file_list

        if file_adapter(model) is not None and is_file_list(X_train):  # fitted as a streamed fit fits it
            grids = fit_adapter(model.steps[0][1], X_train).transform(list(X_train[:2]))
        else:
            grids = model[:-1].fit(X_train, y_train).transform(X_train[:2]) if adapters else X_train[:2]
        shape = grid_shape(np.shape(grids), est.input_shape)
        n_classes = len(np.unique(y_train))
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


# -- export and serve (issue 16): a trained model used outside Python -------------------------------------------


@app.command()
def export(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    format_: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    out: Optional[Path] = typer.Option(None, "--out", help="The file to write (default RUN/model.onnx)."),
):
    """Write the model (its preprocessing included) as an ONNX graph, with a JSON sidecar beside it.

    Example: gridcnn export runs/image-20261122-101500 --out mnist.onnx
    """
    from gridcnn.export.onnx import check_format, check_output, export_onnx, require_onnx
    from gridcnn.modelfile.persistence import load

    with user_errors(USAGE):
        check_format(format_)
        target = check_output(out or run_or_model / "model.onnx")
        require_onnx()
        model = load(run_or_model, device="cpu")
    with user_errors(DATA):
        onnx_path, json_path = export_onnx(model, target)
    console.print(f"[green]Wrote[/] {escape(str(onnx_path))} and {escape(str(json_path))}", soft_wrap=True)


@app.command()
def serve(
    run_or_model: Path = typer.Argument(..., help="A run folder or a model folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", min=0.001, help="Largest request body (413 above)."),
    max_inputs: int = typer.Option(64, "--max-inputs", min=1, help="Most inputs in one request."),
    batching: bool = typer.Option(False, "--batching/--no-batching",
                                  help="Run requests that arrive while the network is busy as one batch."),
    engine: str = typer.Option("auto", "--engine",
                               help="auto (onnxruntime where the export extra is installed, else torch), "
                                    "onnxruntime or torch."),
):
    """Serve the model: POST /predict, GET /health, GET /model, and a page at / to try it in a browser.

    Example: gridcnn serve runs/image-20261122-101500 --port 8000
    """
    from gridcnn.serve import create_app, require_serve

    with user_errors(USAGE):
        require_serve()
        application = create_app(run_or_model, max_upload_mb=max_upload_mb, max_inputs=max_inputs,
                                 batching=batching, engine=engine)
    import uvicorn

    console.print(f"[bold]gridcnn serve[/] {escape(str(run_or_model))} on http://{host}:{port} "
                  f"(engine: {application.state.predictor.engine.name})", soft_wrap=True)
    uvicorn.run(application, host=host, port=port, log_level="info")


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
