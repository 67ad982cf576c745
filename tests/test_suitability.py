"""The suitability checker: tables are rejected with their evidence, grids accepted, and the tests are calibrated."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy import stats
from sklearn import datasets as skd

from gridcnn.exceptions import GridCNNError
from gridcnn.suitability import (
    SuitabilityReport,
    check_suitability,
    load_check_data,
    plot_suitability,
    quick_check,
)


def grouped_table(n=1000, n_groups=10, size=5, r=0.6, seed=0):
    """Contiguous groups of ``size`` columns (an int or one size per group) sharing one factor each."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, n_groups))
    sizes = np.broadcast_to(size, n_groups)
    X = np.sqrt(r) * np.repeat(factors, sizes, axis=1) + np.sqrt(1 - r) * rng.normal(size=(n, sizes.sum()))
    return X, factors


@pytest.fixture(scope="module")
def mnist():
    from gridcnn.data import load_dataset

    X, y = load_dataset("mnist", split="test")
    return X[:3000], y[:3000]


@pytest.fixture(scope="module")
def mnist1d():
    from gridcnn.data import load_dataset

    return load_dataset("mnist1d")


@pytest.fixture(scope="module")
def spoken_digits():
    from gridcnn.data import load_dataset

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed, so there are no spoken-digit clips")
    return load_dataset("spoken_digits", voices=5, takes=2)


# -- tables are rejected -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "make_classification", "make_classification_unshuffled"])
def test_tables_are_rejected(name):
    X = {
        "iris": lambda: skd.load_iris().data,
        "wine": lambda: skd.load_wine().data,
        "breast_cancer": lambda: skd.load_breast_cancer().data,
        # Informative, then redundant (linear combinations of them), then noise columns, in that order.
        "make_classification": lambda: skd.make_classification(
            1000, 20, n_informative=5, n_redundant=5, random_state=0)[0],
        "make_classification_unshuffled": lambda: skd.make_classification(
            1000, 20, n_informative=5, n_redundant=5, shuffle=False, random_state=0)[0],
    }[name]()
    report = check_suitability(X, random_state=0)
    assert isinstance(report, SuitabilityReport)
    assert not report.suitable
    assert [a.ordered for a in report.axes] == [False]
    assert "HistGradientBoostingClassifier" in report.recommendation
    assert "mean |correlation|" in " ".join(report.evidence)


def test_iris_is_too_short_to_order():
    report = check_suitability(skd.load_iris().data, random_state=0)
    assert report.evidence[0].startswith("Only 4 columns: even a perfect order could not be told apart from chance")


@pytest.mark.parametrize("size", [2, 5, 10])
def test_adjacent_groups_of_correlated_columns_are_no_grid(size):
    X, _ = grouped_table(n_groups=50 // size, size=size, r=0.6 if size < 10 else 0.15)
    axis = check_suitability(X, random_state=0).axes[0]
    # Neighbours really are more alike than random pairs: the naive test would call this a grid ...
    assert axis.p_value < 0.01 and axis.z > 5
    # ... but keeping the groups together explains it: the grouped null finds the groups and keeps the dependence.
    assert axis.grouped_p_value > 0.05
    assert axis.n_groups == 50 // size
    assert not axis.ordered
    report = check_suitability(X, random_state=0)
    assert "contiguous groups of related columns" in report.evidence[0]
    assert "pass them (y, or --target)" in report.recommendation


def test_groups_of_unequal_sizes_are_no_grid():
    # At alpha = 0.05 about one table in twenty such tables passes for a grid; this one must not.
    sizes = [7, 8, 3, 2, 7, 7, 5, 2, 7, 5, 2, 2]
    X, _ = grouped_table(n_groups=len(sizes), size=sizes)
    report = check_suitability(X, random_state=0)
    assert not report.suitable and report.axes[0].n_groups == len(sizes)


@pytest.mark.slow
def test_grouped_columns_with_labels_fail_the_model_test():
    X, factors = grouped_table(n=900, n_groups=10, size=5)
    y = (factors[:, 1] - factors[:, 6] > 0).astype(int)  # the label reads two groups far apart
    report = check_suitability(X, y, random_state=0)
    axis = report.axes[0]
    assert axis.decided_by == "model"
    assert not axis.ordered and not report.suitable
    model = report.model
    assert model.n_samples == 900 and model.cv == 3
    # The task is learnable; it is the order that adds nothing beyond the groups.
    assert model.cnn_accuracy > 0.8 and model.mlp_accuracy > 0.8
    assert axis.model_gain < 0.02
    assert any("model test finds no grid" in e for e in report.evidence)


def test_a_csv_with_a_non_numeric_column_is_tabular(tmp_path, mnist1d):
    import pandas as pd

    # The numeric columns are MNIST-1D signals, a real sequence; the city column alone makes it a table.
    X, y = mnist1d
    frame = pd.DataFrame(X[:500], columns=[f"x{i}" for i in range(X.shape[1])])
    frame.insert(20, "city", np.random.default_rng(0).choice(["Oslo", "Lima", "Pune"], 500))
    frame["label"] = y[:500]
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    X_read, y_read, notes = load_check_data(path, target="label")
    assert list(y_read) == list(y[:500]) and "city" in X_read.columns and "label" not in X_read.columns
    assert notes[0] == "Read 500 rows x 42 columns from mixed.csv."
    report = check_suitability(X_read, random_state=0, model="never")
    assert not report.suitable and report.non_numeric == ("city",)
    assert report.evidence[0].startswith("Column 'city' is not numeric")


@pytest.mark.slow
def test_a_mixed_table_from_csv_is_rejected(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    age = rng.integers(18, 90, n)
    frame = pd.DataFrame({
        "age": age, "income": 800 * age + rng.normal(0, 9000, n), "children": rng.poisson(1.5, n),
        "married": rng.random(n) < 0.5, "score": rng.normal(size=n), "visits": rng.poisson(4, n),
        "balance": rng.lognormal(8, 1, n), "tenure": rng.integers(0, 30, n), "churn": rng.integers(0, 2, n),
    })
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    X, y, _ = load_check_data(path, target="churn")
    report = check_suitability(X, y, random_state=0)
    assert not report.suitable and report.non_numeric == ()


# -- grids are accepted ------------------------------------------------------------------------------------------


def test_digits_flat_and_8x8_are_grids():
    X = skd.load_digits().data
    flat = check_suitability(X, random_state=0)
    assert flat.suitable and [a.name for a in flat.axes] == ["columns"]
    assert "1 x L sequence" in flat.recommendation
    for square in (check_suitability(X.reshape(-1, 8, 8), random_state=0),
                   check_suitability(X, layout=(8, 8), random_state=0)):
        assert square.suitable and [(a.name, a.ordered) for a in square.axes] == [("rows", True), ("columns", True)]
        assert "square kernels" in square.recommendation


def test_mnist1d_is_a_sequence(mnist1d):
    report = check_suitability(mnist1d[0], random_state=0)
    axis = report.axes[0]
    assert report.suitable and axis.ordered and axis.decided_by == "locality"
    assert axis.z > 10 and axis.grouped_z > 5
    # Dependence is far above the shuffled band next door and falls to it a few steps away.
    assert axis.dependence[0] > axis.null_high[0] + 0.3
    assert axis.dependence[8] < axis.dependence[0] / 3


def test_mnist_images_are_grids(mnist):
    report = check_suitability(mnist[0], random_state=0)
    assert report.suitable and all(a.ordered for a in report.axes)
    assert report.grid_shape == (1, 28, 28) and report.n_samples == 2000


@pytest.mark.slow
def test_spectrograms_of_spoken_digits_are_grids(spoken_digits):
    from gridcnn.adapters.audio.adapter import SpectrogramGrid

    grids = SpectrogramGrid(device="cpu").fit_transform(spoken_digits[0])
    report = check_suitability(grids, random_state=0)
    assert report.suitable and [(a.name, a.ordered) for a in report.axes] == [("rows", True), ("columns", True)]


@pytest.mark.slow
def test_token_rows_are_ordered_but_embedding_columns_are_not():
    from gridcnn.adapters.text.adapter import EmbeddingGrid
    from gridcnn.data import load_dataset

    reviews, _ = load_dataset("movie_reviews")
    grids = EmbeddingGrid(device="cpu").fit_transform(list(reviews[:300]))
    report = check_suitability(grids, random_state=0)
    assert report.suitable and [(a.name, a.ordered) for a in report.axes] == [("rows", True), ("columns", False)]
    assert report.axes[1].length == 384 and report.axes[1].p_value > 0.05
    assert "Rows are ordered, columns are not" in report.recommendation
    assert "kernel_size=(3, 'full')" in report.recommendation


# -- the same grids with their columns shuffled are rejected ------------------------------------------------------


def _shuffle(X, axis, seed=1):
    return np.take(X, np.random.default_rng(seed).permutation(X.shape[axis]), axis=axis)


def test_shuffled_sequences_are_rejected(mnist1d):
    for X in (mnist1d[0], skd.load_digits().data):
        report = check_suitability(_shuffle(X, 1), random_state=0)
        assert not report.suitable and report.axes[0].p_value > 0.05


@pytest.mark.parametrize("which", ["digits", "mnist", "spectrogram"])
def test_shuffled_grids_are_rejected_axis_by_axis(which, mnist, request):
    if which == "digits":
        X = skd.load_digits().images
    elif which == "mnist":
        X = mnist[0]
    else:
        from gridcnn.adapters.audio.adapter import SpectrogramGrid

        X = SpectrogramGrid(device="cpu").fit_transform(request.getfixturevalue("spoken_digits")[0])
    both = check_suitability(_shuffle(_shuffle(X, -1), -2), random_state=0)
    assert not both.suitable and not any(a.ordered for a in both.axes)
    # Columns shuffled, rows kept: the rows are still ordered, so the advice is a kernel spanning the width.
    rows_only = check_suitability(_shuffle(X, -1), random_state=0)
    assert rows_only.suitable and [a.ordered for a in rows_only.axes] == [True, False]
    assert "kernel_size=(3, 'full')" in rows_only.recommendation
    columns_only = check_suitability(_shuffle(X, -2), random_state=0)
    assert [a.ordered for a in columns_only.axes] == [False, True]
    assert "X.swapaxes(-1, -2)" in columns_only.recommendation


def test_p_values_are_uniform_on_permuted_data(mnist1d):
    X = mnist1d[0][:1000]
    reports = [
        check_suitability(_shuffle(X, 1, seed), random_state=seed, n_permutations=199, max_samples=500, model="never")
        for seed in range(100)
    ]
    p = np.array([r.axes[0].p_value for r in reports])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.4 < p.mean() < 0.6
    assert np.mean(p < 0.05) <= 0.10
    # Requiring both tests makes a false "suitable" rarer still than alpha.
    assert np.mean([r.suitable for r in reports]) <= 0.05


# -- the model stage ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_model_stage_finds_that_order_helps_on_mnist1d(mnist1d):
    X, y = mnist1d
    report = check_suitability(X, y, random_state=0, model="always", max_samples=1000)
    axis, model = report.axes[0], report.model
    assert axis.decided_by == "model" and axis.ordered and report.suitable
    # The MNIST-1D pattern: a CNN loses much of its accuracy when positions are shuffled, and beats an MLP.
    assert model.cnn_accuracy > model.shuffled_accuracy["columns"] + 0.05
    assert model.cnn_accuracy > model.mlp_accuracy + 0.05
    assert axis.model_p_value < 0.001


def test_model_stage_explains_why_it_did_not_run():
    X, factors = grouped_table(n=300)
    y = np.arange(300) % 150  # two samples per class: too few for 3 folds
    report = check_suitability(X, y, random_state=0)
    assert report.model is None and not report.suitable
    assert "at least 3 samples of every class" in " ".join(report.evidence)


# -- reports, plots, determinism, quick check ---------------------------------------------------------------------


def test_reports_are_deterministic_and_json_ready():
    import json

    X = skd.load_wine().data
    first, second = (check_suitability(X, random_state=3).to_dict() for _ in range(2))
    assert first == second
    assert json.loads(json.dumps(first))["axes"][0]["name"] == "columns"
    assert check_suitability(X, random_state=4).to_dict() != first


def test_quick_check_screens_without_labels(mnist1d):
    assert not quick_check(skd.load_wine().data).suitable
    report = quick_check(mnist1d[0])
    assert report.suitable and report.model is None and report.n_samples == 500


def test_plot_draws_dependence_against_distance(tmp_path, mnist):
    from PIL import Image

    report = check_suitability(mnist[0][:1000], random_state=0)
    axis = report.axes[0]
    assert len(axis.distances) == len(axis.dependence) == len(axis.null_low) == len(axis.null_high) == 16
    assert len(axis.grouped_profile) == 16 and np.isfinite(axis.grouped_profile).all()
    assert np.all(axis.null_low <= axis.null_profile_mean) and np.all(axis.null_profile_mean <= axis.null_high)
    path = plot_suitability(report, tmp_path / "check.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (840, 340)


def test_missing_values_are_filled_and_noted():
    X = skd.load_digits().data.copy()
    X[::7, 30] = np.nan
    report = check_suitability(X, random_state=0)
    assert report.suitable
    assert report.evidence[-1] == "257 missing or infinite values were filled with the mean of their cell."


def test_channels_last_layout(mnist):
    rgb = np.repeat(mnist[0][:500, :, :, None], 3, axis=3)
    report = check_suitability(rgb, layout="HWC", random_state=0)
    assert report.grid_shape == (3, 28, 28) and report.suitable


# -- loading files -------------------------------------------------------------------------------------------------


def test_load_npy_and_npz(tmp_path):
    X, y = skd.load_digits(return_X_y=True)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "d.npz", X=X, labels=y)
    X1, y1, _ = load_check_data(tmp_path / "x.npy")
    assert np.array_equal(X1, X) and y1 is None
    X2, y2, notes = load_check_data(tmp_path / "d.npz")
    assert np.array_equal(X2, X) and np.array_equal(y2, y)
    assert notes == ["Read X of shape (1797, 64) from d.npz and labels from labels."]
    with pytest.raises(GridCNNError, match="has no array 'lables'. Did you mean 'labels'?"):
        load_check_data(tmp_path / "d.npz", target="lables")
    with pytest.raises(GridCNNError, match="target=.y. names a table column or an .npz array"):
        load_check_data(tmp_path / "x.npy", target="y")


def test_load_errors_say_what_to_do(tmp_path):
    (tmp_path / "t.csv").write_text("sepal,petal,species\n1,2,a\n3,4,b\n")
    with pytest.raises(GridCNNError, match="has no column 'specie'. Did you mean 'species'\\? Its columns: sepal, petal, species."):
        load_check_data(tmp_path / "t.csv", target="specie")
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(GridCNNError, match="expected a .csv, .tsv, .npy, .npz or .parquet file, or a folder"):
        load_check_data(tmp_path / "t.xlsx")
    (tmp_path / "t.parquet").write_text("")  # Parquet is read (gridcnn[parquet]); an empty file is refused
    with pytest.raises(GridCNNError, match=r"t.parquet' is empty \(0 bytes\)"):
        load_check_data(tmp_path / "t.parquet")
    with pytest.raises(GridCNNError, match="does not exist"):
        load_check_data(tmp_path / "missing.csv")


def test_load_folder_of_images(tmp_path, mnist):
    from PIL import Image

    images, labels = mnist
    for i in range(200):
        folder = tmp_path / str(labels[i])
        folder.mkdir(exist_ok=True)
        Image.fromarray((images[i] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    X, y, notes = load_check_data(tmp_path)
    assert X.shape == (200, 1, 28, 28) and sorted(set(y)) == sorted({str(v) for v in labels[:200]})
    assert notes[0].startswith("Found 200 image files in ")
    assert check_suitability(X, random_state=0).suitable


def test_load_folder_of_sound_files(tmp_path, spoken_digits):
    paths, labels = spoken_digits
    for path, label in zip(paths, labels):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        shutil.copy(path, tmp_path / str(label))
    X, y, notes = load_check_data(tmp_path)
    assert X.shape[:2] == (len(paths), 1) and len(y) == len(paths)
    assert "rows are time, columns frequency" in notes[-1]
    assert check_suitability(X, random_state=0).suitable


# -- usage errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 2}, "The 'alpha' parameter of check_suitability must be a float in the range \\(0.0, 1.0\\). Got 2 instead."),
    ({"model": "alway"}, "Did you mean 'always'\\?"),
    ({"layout": "chw"}, "Did you mean 'CHW'\\?"),
    ({"layout": (7, 7)}, "layout=\\(7, 7\\) cannot hold a sample of shape \\(64,\\)"),
    ({"layout": "HW"}, "Expected X of shape \\(n, L\\), \\(n, H, W\\) or \\(n, C, H, W\\); got shape \\(1797, 64\\) for layout 'HW'"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises(GridCNNError, match=message):
        check_suitability(skd.load_digits().data, **kwargs)


def test_input_errors():
    X = skd.load_digits().data
    with pytest.raises(GridCNNError, match="got shape \\(1797,\\)"):
        check_suitability(X[:, 0])
    with pytest.raises(GridCNNError, match="y must have one label per sample, shape \\(1797,\\); got shape \\(10,\\)"):
        check_suitability(X, np.zeros(10))
    with pytest.raises(GridCNNError, match="X must hold numbers; got an array of dtype <U1"):
        check_suitability(np.full((20, 5), "a"))
    with pytest.raises(GridCNNError, match="X has 5 samples; the check needs at least 10"):
        check_suitability(X[:5])
