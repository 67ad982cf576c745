"""Every label array `fit` accepts saves and loads: the model file keeps its classes exactly, and a text model trained
from a CSV (labels as pandas' object array) is read back by predict, evaluate, export, serve and gridcnn.load."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.cli.commands import app

X = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
I = np.arange(20) % 2
runner = CliRunner()
LABELS = {  # every kind of y that fit accepts
    "int": I, "negative int": I - 5, "uint8": I.astype(np.uint8), "uint64 above int64": I.astype(np.uint64) + 2**63,
    "int beyond float": I + 2**62, "bool": I.astype(bool), "float": I.astype(float) - 1.0, "float16": I.astype(np.float16),
    "str": np.array(["cat", "dog"])[I], "mixed-length str": np.array(["a", "a much longer label, é ü 中"])[I],
    "empty str": np.array(["", "x"])[I], "object str (pandas)": pd.Series(np.array(["cat", "dog"])[I]).to_numpy(),
    "pandas string dtype": pd.Series(np.array(["x", "y"])[I], dtype="string"),
    "pandas category": pd.Series(np.array(["x", "y"])[I], dtype="category"),
    "object np.str_": np.array([np.str_("a"), np.str_("b")], dtype=object)[I],
    "list of str": list(np.array(["p", "q"])[I]), "nullable Int64": pd.Series(I, dtype="Int64"),
    "three classes": np.array(["z", "a", "m"])[np.arange(20) % 3],
}


def tiny():
    return GridCNNClassifier(filters=4, hidden=8, max_epochs=1, random_state=0)


@pytest.mark.parametrize("kind", LABELS)
def test_every_label_kind_saves_and_loads(tmp_path, kind):
    model = tiny().fit(X, LABELS[kind])
    model.save(tmp_path / "m")
    back = gridcnn.load(tmp_path / "m")
    assert back.classes_.tolist() == model.classes_.tolist()
    assert back.classes_.dtype.kind in "biufU"  # never object: the schema refuses that
    assert back.predict(X).tolist() == model.predict(X).tolist()
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("y, message", [
    (np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")[I], "y holds dates (datetime64[D]); a classifier's "
     "labels must be text, ints or bools, which a model file keeps exactly. Pass y.astype(str)."),
    (np.array(["a\0", "b"], dtype=object)[I], "y holds a label ending in a NUL character ('a\\x00')"),
])
def test_labels_a_model_file_cannot_keep_are_refused_by_fit(tmp_path, y, message):
    with pytest.raises(GridCNNError, match=re.escape(message)):
        tiny().fit(X, y)


def test_a_label_no_dtype_keeps_is_refused_at_save_without_blaming_the_file(tmp_path):
    model = tiny().fit(X, I)
    model.classes_ = np.array([1, 2**70], dtype=object)  # no int64 holds it; fit refuses such y, this is the last guard
    with pytest.raises(GridCNNError, match=r"This model's labels cannot be written to a model file: 1180591620717411303424 "
                       r"\(int, classes_ of dtype object\)"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m" / "config.json").exists()


def write_topics(path, n=60):
    rng = np.random.default_rng(0)
    words = {"sport": ["goal", "match", "team", "score"], "food": ["bread", "cheese", "soup", "cake"],
             "tech": ["chip", "code", "robot", "laptop"]}
    topics = [list(words)[i % 3] for i in range(n)]
    pd.DataFrame({"text": [" ".join(rng.choice(words[t], 4)) for t in topics], "topic": topics}).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_a_text_model_trained_from_a_csv_is_read_back_by_every_command(tmp_path):
    from fastapi.testclient import TestClient

    from gridcnn.serve import create_app

    data, run = write_topics(tmp_path / "topics.csv"), tmp_path / "run"
    fit = runner.invoke(app, ["fit", str(data), "--target", "topic", "--out", str(run), "--set", "estimator.max_epochs=2"])
    assert fit.exit_code == 0, fit.output
    assert json.loads((run / "model" / "config.json").read_text())["estimator"]["classes_dtype"] == "<U5"
    model = gridcnn.load(run)
    assert model.classes_.tolist() == ["food", "sport", "tech"]
    predicted = runner.invoke(app, ["predict", str(run), "a goal for the team", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output.splitlines()[0])["label"] == model.predict(["a goal for the team"])[0]
    scored = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert scored.exit_code == 0 and json.loads(scored.output)["accuracy"] == json.loads(
        (run / "metrics.json").read_text())["accuracy"], scored.output
    exported = runner.invoke(app, ["export", str(run)])
    assert exported.exit_code == 0 and (run / "model.onnx").is_file(), exported.output
    with TestClient(create_app(run)) as client:
        answer = client.post("/predict", json={"inputs": ["cheese soup and cake"]})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] in model.classes_.tolist(), answer.text
