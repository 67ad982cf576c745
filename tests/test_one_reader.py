"""Every way of giving data by path reads it the same way: ``gridcnn fit PATH`` (zero-config), a recipe's
``[data] path``, ``gridcnn check`` and ``gridcnn evaluate --data`` agree on the labels, the rows and the columns,
for every kind of path (issue 23, part 2: before, zero-config had its own label rule and .npz keys)."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from gridcnn.cli.commands import app

runner = CliRunner()
RNG = np.random.default_rng(0)
N = 24  # rows of every table and array: two classes of 12


def _signals():
    """Two classes of ordered 1 x 16 signals (slow and fast waves): a table the suitability check accepts."""
    t = np.arange(16)
    y = np.arange(N) % 2
    X = np.sin(2 * np.pi * t / np.where(y, 4, 12)[:, None] + RNG.uniform(0, 6, (N, 1))) + RNG.normal(0, .1, (N, 16))
    return X.astype(np.float32), np.where(y, "fast", "slow")


def _table(path, sep=","):
    X, y = _signals()
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(16)])
    frame.insert(3, "Label", y)  # not last, not lower case: found by name, any case, wherever it stands
    if path.suffix == ".parquet":
        pytest.importorskip("pyarrow")
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep=sep, index=False)
    return {"rows": N, "label": "Label", "classes": {"fast", "slow"}}


def _images(root, parts=(None,), n=6):
    for part in parts:
        for label, corner in (("dark", 40), ("light", 220)):
            folder = root / part / label if part else root / label
            folder.mkdir(parents=True)
            for i in range(n if part != "test" else n // 2):
                pixels = RNG.integers(0, 30, (8, 8)).astype(np.uint8) + np.uint8(corner)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def make(kind, tmp_path):
    """The data of one kind of path, and what every command must find in it."""
    if kind == "image folder":
        path = _images(tmp_path / "pictures")
        return path, {"rows": 12, "classes": {"dark", "light"}}
    if kind == "train/test folders":
        path = _images(tmp_path / "split", parts=("train", "test"))
        return path, {"rows": 12 + 6, "test_rows": 6, "classes": {"dark", "light"}}
    if kind == "sound folder":
        root = tmp_path / "sounds"
        t = np.arange(2000) / 8000
        for label, freq in (("low", 300), ("high", 1500)):
            (root / label).mkdir(parents=True)
            for i in range(6):
                sf.write(root / label / f"{i}.wav", (0.5 * np.sin(2 * np.pi * (freq + 30 * i) * t)).astype(np.float32),
                         8000)
        return root, {"rows": 12, "classes": {"low", "high"}}
    if kind in ("csv", "tsv", "parquet"):
        path = tmp_path / f"signals.{kind}"
        return path, _table(path, sep="\t" if kind == "tsv" else ",")
    X, y = _signals()
    if kind == "npz":
        path = tmp_path / "grids.npz"
        np.savez(path, data=X.reshape(N, 4, 4), labels=y)  # data/labels: the reader's other names, any case
        return path, {"rows": N, "label": "labels", "classes": {"fast", "slow"}}
    if kind == "npz splits":
        path = tmp_path / "splits.npz"
        np.savez(path, X_train=X[:16].reshape(16, 4, 4), y_train=y[:16], X_test=X[16:].reshape(8, 4, 4), y_test=y[16:])
        return path, {"rows": N, "test_rows": 8, "classes": {"fast", "slow"}}
    assert kind == "npy + labels"
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "X.npy", X.reshape(N, 4, 4))
    np.save(tmp_path / "arrays" / "labels.npy", y)
    return tmp_path / "arrays" / "X.npy", {"rows": N, "label": "labels.npy", "classes": {"fast", "slow"}}


# The folders of one split: `gridcnn check` runs its small-CNN test on their grids (minutes on a loaded machine).
KINDS = [pytest.param("image folder", marks=pytest.mark.slow), "train/test folders",
         pytest.param("sound folder", marks=pytest.mark.slow), "csv", "tsv", "parquet", "npz", "npz splits",
         "npy + labels"]
TINY = ["--set", "estimator.max_epochs=1", "--set", "estimator.filters=4", "--set", "estimator.hidden=8"]


@pytest.mark.parametrize("kind", KINDS)
def test_fit_recipe_check_and_evaluate_read_a_path_alike(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, expect = make(kind, tmp_path)
    tables = kind in ("csv", "tsv", "parquet")

    # 1. gridcnn fit PATH: zero-config (tables of numbers pass the suitability check; --force keeps the test short)
    auto = runner.invoke(app, ["fit", str(path), "--out", "auto", *TINY, *(["--force"] if tables else [])])
    assert auto.exit_code == 0, auto.output
    chosen = tomllib.loads((tmp_path / "auto" / "recipe.toml").read_text())
    fitted = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert set(fitted["labels"]) == expect["classes"]
    assert fitted["n_train"] + fitted["n_samples"] == expect["rows"]  # every row, once
    if "test_rows" in expect:  # data given already split: the test split is the test, all of it
        assert fitted["n_samples"] == expect["test_rows"]
    else:  # 20% held out, stratified
        assert fitted["n_samples"] == int(np.ceil(expect["rows"] * 0.2))
    if tables:
        assert chosen["data"]["target"] == expect["label"]

    # 2. the same path in a recipe of one's own: the same rows and labels, read by the same reader
    data = {"path": str(path), **({"test_split": "test"} if "test_rows" in expect else {})}
    recipe = {"data": data, "estimator": {"max_epochs": 1, "filters": 4, "hidden": 8, "random_state": 0}}
    if "adapter" in chosen:
        recipe["adapter"] = chosen["adapter"]
    import tomli_w

    (tmp_path / "mine.toml").write_text(tomli_w.dumps(recipe))
    own = runner.invoke(app, ["fit", "mine.toml", "--out", "own"])
    assert own.exit_code == 0, own.output
    mine = json.loads((tmp_path / "own" / "metrics.json").read_text())
    assert set(mine["labels"]) == expect["classes"]
    assert (mine["n_train"], mine["n_samples"]) == (fitted["n_train"], fitted["n_samples"])

    # 3. gridcnn check PATH: every row, the same label entry
    checked = runner.invoke(app, ["check", str(path)])
    assert checked.exit_code in (0, 1), checked.output  # suitable or not, it read the data
    said = " ".join(checked.output.split())
    if tables:
        assert f"Read {expect['rows']} rows x 17 columns" in said
        assert f"Column '{expect['label']}' holds the labels" in said
    elif kind in ("image folder", "sound folder"):
        assert f"Found {expect['rows']} " in said and "in 2 class folders" in said
    elif "test_rows" in expect:
        n_test = expect["test_rows"]
        assert f"Read the train and test splits together ({expect['rows'] - n_test} + {n_test})" in said
    else:
        assert f"Labels: {expect['rows']} from labels.npy" in said if kind == "npy + labels" else \
            "and labels from labels" in said

    # 4. gridcnn evaluate RUN --data PATH: the whole data set (its test split when it has one), the same classes
    scored = runner.invoke(app, ["evaluate", "auto", "--data", str(path), "--json"])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.output)
    assert metrics["n_samples"] == expect.get("test_rows", expect["rows"])
    assert set(metrics["labels"]) == expect["classes"]


def test_two_columns_named_like_labels_are_refused_alike_until_one_is_named(tmp_path, monkeypatch):
    # Before: `fit data.csv` trained on 'label' while `check data.csv` checked 'y'.
    monkeypatch.chdir(tmp_path)
    X, y = _signals()
    frame = pd.DataFrame(X, columns=[f"t{i}" for i in range(16)]).assign(y=np.arange(N) % 3, label=y)
    frame.to_csv(tmp_path / "both.csv", index=False)
    (tmp_path / "both.toml").write_text(f'[data]\npath = "{tmp_path / "both.csv"}"\n\n[estimator]\nmax_epochs = 1\n')
    said = "columns 'y' and 'label' are all named like labels, so which holds them is ambiguous"
    runs = {"fit PATH": (["fit", "both.csv"], 2), "recipe": (["fit", "both.toml", "--out", "r"], 1),
            "check": (["check", "both.csv"], 2)}
    for what, (args, code) in runs.items():
        result = runner.invoke(app, args)
        assert result.exit_code == code and said in " ".join(result.output.split()), (what, result.output)
    # Named, every command takes the same column.
    fit = runner.invoke(app, ["fit", "both.csv", "--target", "label", "--force", "--out", "run", *TINY])
    assert fit.exit_code == 0, fit.output
    assert set(json.loads((tmp_path / "run" / "metrics.json").read_text())["labels"]) == {"fast", "slow"}
    checked = runner.invoke(app, ["check", "both.csv", "--target", "label"])
    assert "Column 'label' holds the labels" in " ".join(checked.output.split())
    scored = runner.invoke(app, ["evaluate", "run", "--data", "both.csv", "--json"])  # the run's column, by default
    assert scored.exit_code == 0, scored.output
    assert set(json.loads(scored.output)["labels"]) == {"fast", "slow"}
    assert not (tmp_path / "r" / "model").exists()  # the refused recipe trained nothing
