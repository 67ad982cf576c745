"""``gridcnn evaluate`` and ``gridcnn predict``: a trained model on labelled data, and on new inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from gridcnn.cli.app import DATA, USAGE, app, console, print_metrics, user_errors
from gridcnn.exceptions import GridCNNError


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
    from gridcnn.cli.inputs import check_known_labels
    from gridcnn.estimator.pipeline import split_pipeline
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
        elif not (data.exists() or data.is_symlink()):  # a missing path is a slip in the command: exit 2, as for others
            raise GridCNNError(f"--data {data} does not exist. Give a class folder, or a .npz, .npy, .csv, .tsv or "
                               ".parquet file with labels.")
    with user_errors(DATA):
        if data is None:
            _, _, X, y = load_split(recipe)
        else:
            from gridcnn.data import load_path
            from gridcnn.data.reader import given_split
            from gridcnn.data.tables import TABLE_SUFFIXES

            if target is None and data.suffix.lower() in TABLE_SUFFIXES and (run_or_model / "recipe.toml").is_file():
                target = read_recipe(run_or_model / "recipe.toml").data.get("target")  # the column it was fitted on
            X, y = load_path(str(data), split="test" if given_split(data) else None, target=target)
            check_known_labels(y, split_pipeline(model)[1].classes_, data)
        metrics = evaluate_model(model, X, y)
    if as_json:
        console.print_json(json.dumps(metrics))
    else:
        print_metrics(metrics)


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
    from gridcnn.cli.inputs import check_numbers, for_person, gather_inputs

    with user_errors(USAGE):
        model = load(run_or_model)
        names, X = gather_inputs(model, inputs)
    with user_errors(DATA):
        from gridcnn.streaming import file_adapter, predict_files

        check_numbers(names, X)
        adapter = file_adapter(model)
        try:
            if adapter is not None:  # image and sound files are decoded batch by batch, never all at once
                proba, names = predict_files(model, X)
            else:
                proba = model.predict_proba(X)
        except GridCNNError as exc:  # a file it cannot use, or rows the network overflows on: named by their files
            raise for_person(exc, adapter, names) from None
    classes = split_pipeline(model)[1].classes_
    for name, p in zip(names, proba):
        label, prob = classes[p.argmax()], float(p.max())
        if as_json:
            print(json.dumps({"input": name, "label": label.item() if hasattr(label, "item") else label,
                              "probability": round(prob, 6)}, allow_nan=False))
        else:
            console.print(escape(f"{name}\t{label}\t{prob:.4f}"), highlight=False, soft_wrap=True)
