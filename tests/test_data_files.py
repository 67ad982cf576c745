"""The one data reader: `gridcnn fit`, `evaluate` and `check` read a file the same way (label column, .npz keys)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from gridcnn.cli.commands import app
from gridcnn.data import DataFile, load_path, read_data
from gridcnn.exceptions import GridCNNError
from gridcnn.workflow.recipes import load_split, parse_recipe
from gridcnn.suitability import load_check_data

RNG = np.random.default_rng(0)
X = RNG.random((40, 12)).astype(np.float32)
Y = np.arange(40) % 2


def write_csv(path, label="label", sep=","):
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    frame[label] = Y
    frame.to_csv(path, index=False, sep=sep)
    return path


@pytest.mark.parametrize("name, sep", [("t.csv", ","), ("t.tsv", "\t")])
def test_fit_and_check_take_the_same_label_column(tmp_path, name, sep):
    path = write_csv(tmp_path / name, label="target", sep=sep)
    X_fit, y_fit = load_path(path)
    X_check, y_check, notes = load_check_data(path)
    np.testing.assert_array_equal(y_fit, Y)
    np.testing.assert_array_equal(y_check, Y)
    np.testing.assert_allclose(X_fit, X, rtol=1e-6)
    assert list(X_check.columns) == [f"c{i}" for i in range(12)]  # the label column is not a feature in either
    assert "Column 'target' holds the labels." in notes


@pytest.mark.parametrize("key", ["y", "labels", "target"])
def test_an_npz_that_check_reads_trains_too(tmp_path, key):
    # Before one reader, `check` accepted y/labels/target arrays but `fit` only "y".
    path = tmp_path / "d.npz"
    np.savez(path, X=X, **{key: Y})
    X_fit, y_fit = load_path(path)
    X_check, y_check, _ = load_check_data(path)
    np.testing.assert_array_equal(y_fit, y_check)
    np.testing.assert_array_equal(X_fit, X_check)
    recipe = parse_recipe({"data": {"path": str(path), "test_fraction": 0.25}, "estimator": {}})
    X_train, y_train, X_test, y_test = load_split(recipe)
    assert (len(X_train), len(X_test)) == (30, 10) and sorted([*y_train, *y_test]) == sorted(Y)


def test_target_names_the_label_array_or_column_everywhere(tmp_path):
    np.savez(tmp_path / "d.npz", X=X, kind=Y, other=Y + 5)
    _, y = load_path(tmp_path / "d.npz", target="other")
    assert y.tolist() == (Y + 5).tolist()
    with pytest.raises(GridCNNError, match="has no array 'kinds'. Did you mean 'kind'?"):
        load_path(tmp_path / "d.npz", target="kinds")
    write_csv(tmp_path / "t.csv", label="species")
    with pytest.raises(GridCNNError, match="has no column 'specie'. Did you mean 'species'?"):
        load_check_data(tmp_path / "t.csv", target="specie")
    with pytest.raises(GridCNNError, match="has no column 'specie'. Did you mean 'species'?"):
        load_path(tmp_path / "t.csv", target="specie")


def test_npz_splits(tmp_path):
    np.savez(tmp_path / "s.npz", X_train=X[:30], y_train=Y[:30], X_test=X[30:], y_test=Y[30:])
    X_test, y_test = load_path(tmp_path / "s.npz", split="test")
    np.testing.assert_array_equal(X_test, X[30:])
    np.testing.assert_array_equal(y_test, Y[30:])
    with pytest.raises(GridCNNError, match="has no array 'X_valid' for split='valid'"):
        load_path(tmp_path / "s.npz", split="valid")
    write_csv(tmp_path / "t.csv")
    with pytest.raises(GridCNNError, match="split='test' picks the test/ folder of class folders, or the arrays X_test and y_test of an .npz"):
        load_path(tmp_path / "t.csv", split="test")


def test_training_needs_labels_and_numbers(tmp_path):
    np.save(tmp_path / "x.npy", X)
    data = read_data(tmp_path / "x.npy")
    assert isinstance(data, DataFile) and data.kind == "array" and data.y is None
    with pytest.raises(GridCNNError, match=r"x.npy holds samples but where are the labels\? No y.npy or labels.npy \(or another "
                       r"label name\) beside it. Name the labels' own .npy file"):
        load_path(tmp_path / "x.npy")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(GridCNNError, match=r"t.csv: which column holds the labels\? None is named like one \(label, labels, target, "
                       r"targets, class, y, ...\). Name it \(--target NAME on the command line.*columns: a, b\."):
        load_path(tmp_path / "t.csv")
    (tmp_path / "n.csv").write_text("a,b,y\n1,x,0\n2,z,1\n")
    assert read_data(tmp_path / "n.csv").X.columns.tolist() == ["a", "b"]  # check sees the text column ...
    with pytest.raises(GridCNNError, match=r"columns \['b'\] are not numeric"):  # ... fit refuses it
        load_path(tmp_path / "n.csv")


def test_folders_are_one_kind_of_file(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / label / "x.png")
    data = read_data(tmp_path)
    assert data.kind == "image" and data.y.tolist() == ["a", "b"] and all(p.endswith("x.png") for p in data.X)
    (tmp_path / "b" / "clip.wav").write_bytes(b"")
    with pytest.raises(GridCNNError, match=r"mixes 2 image files and 1 sound files \(such as x.png and clip.wav\); keep one kind per data folder"):
        read_data(tmp_path)
    with pytest.raises(GridCNNError, match="a folder's labels are its subfolder names"):
        read_data(tmp_path, target="label")


def test_evaluate_reads_data_with_the_same_reader(tmp_path):
    from gridcnn import GridCNNClassifier

    model = GridCNNClassifier(filters=4, hidden=8, max_epochs=1, random_state=0, check_input="off").fit(X, Y)
    model.save(tmp_path / "m")
    np.savez(tmp_path / "d.npz", X=X, labels=Y)  # "labels", not "y": evaluate used to refuse it
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "m"), "--data", str(tmp_path / "d.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert '"n_samples": 40' in result.output
