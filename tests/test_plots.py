"""The run folder's pictures say what a person needs: each test catches the figure before it is saved and reads it."""

import numpy as np
import pytest

from gridcnn import GridCNNClassifier
from gridcnn.workflow import figures, network_plots, plots


@pytest.fixture
def caught(monkeypatch):
    """The figures the plots would save, by file name."""
    figs = {}

    def keep(fig, path, tight=True):
        figs[path.name] = fig
        fig.canvas.draw()  # layout and text as they would be in the file

    monkeypatch.setattr(plots, "save", keep)
    monkeypatch.setattr(network_plots, "save", keep)
    return figs


def texts_of(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text") and o.get_text()))


def test_confusion_matrix_has_counts_rates_accuracy_and_a_scale_from_zero(caught, tmp_path):
    plots.plot_confusion([[5, 1], [1, 3]], ["cat", "dog"], tmp_path / "cm.png")
    fig = caught["cm.png"]
    counts, rates = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert fig._suptitle.get_text() == "accuracy 80.00% on 10 test samples"
    assert counts.images[0].norm.vmin == 0 and counts.images[0].norm.vmax == 5
    assert rates.images[0].norm.vmin == 0 and rates.images[0].norm.vmax == 1
    np.testing.assert_allclose(rates.images[0].get_array(), [[5 / 6, 1 / 6], [1 / 4, 3 / 4]])
    cells = {t.get_text() for t in rates.texts}
    assert cells == {"83%", "17%", "25%", "75%"}


def test_training_curves_are_linear_with_whole_epochs_and_accuracy_beside(caught, tmp_path):
    history = [{"epoch": e, "train_loss": 2.5 / e, "train_accuracy": 0.3 + 0.1 * e, "valid_loss": 2.6 / e,
                "valid_accuracy": 0.25 + 0.1 * e} for e in range(1, 8)]
    plots.plot_history(history, tmp_path / "curves.png")
    loss, accuracy = caught["curves.png"].axes
    assert loss.get_yscale() == "linear" and loss.get_ylim()[0] == 0
    ticks = [t for t in loss.get_xticks() if 1 <= t <= 7]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert accuracy.get_ylabel() == "accuracy" and accuracy.get_ylim() == (0, 1.01)
    assert "validation 95.0%" in accuracy.get_title() and len(accuracy.lines) == 2


def test_colour_filters_are_drawn_in_colour(caught, tmp_path):
    X = np.random.default_rng(0).random((12, 3, 8, 8), dtype=np.float32)
    est = GridCNNClassifier(filters=[4], hidden=[8], max_epochs=1, random_state=0).fit(X, np.arange(12) % 2)
    plots.plot_filters(est.model_, tmp_path / "filters.png", modality="image")
    images = [ax.images[0].get_array() for ax in caught["filters.png"].axes if ax.images]
    assert len(images) == 4 and all(a.shape == (3, 3, 3) for a in images)
    w = est.model_.branches[0].block1.conv.weight.detach().numpy()
    np.testing.assert_allclose(images[0], np.clip(0.5 + np.moveaxis(w[0], 0, -1) / (2 * np.abs(w[0]).max()), 0, 1),
                               rtol=1e-6)


def test_spectrogram_examples_run_time_across_with_their_labels(caught, tmp_path):
    X = np.random.default_rng(0).random((12, 1, 20, 6), dtype=np.float32)  # 20 frames x 6 bands
    est = GridCNNClassifier(filters=[4], hidden=[8], max_epochs=1, random_state=0, modality="audio").fit(
        X, np.arange(12) % 2)
    plots.plot_feature_maps(est.model_, X[0], tmp_path / "maps.png", modality="audio", true=1, predicted=0,
                            probability=0.7)
    fig = caught["maps.png"]
    example = fig.axes[0]
    assert example.get_title(loc="left") == "test example: true 1, predicted 0 (p=0.70)"
    assert example.images[0].get_array().shape == (6, 20) and example.get_xlabel() == "time →"
    assert "block1: 4 maps of 10x3" in texts_of(fig)


def test_explain_draws_grad_cam_over_each_example(caught, tmp_path):
    X = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    y = np.arange(12) % 2
    est = GridCNNClassifier(filters=[4], hidden=[8], max_epochs=1, random_state=0).fit(X, y)
    plots.plot_explain(est.model_, X[:4], tmp_path / "explain.png", modality="image", classes=est.classes_,
                       y_true=y[:4])
    fig = caught["explain.png"]
    assert fig._suptitle.get_text().endswith("Grad-CAM on block1")
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 4 and all(len(ax.images) == 2 for ax in drawn)  # the example, the heatmap over it
    heat = drawn[0].images[1].get_array()
    from gridcnn.backbone.explain import grad_cam

    np.testing.assert_allclose(heat, figures.heat_rgba(grad_cam(est.model_, X[:1]).heatmaps[0]), atol=1e-6)


def test_text_filters_name_the_ngrams_they_answer(caught, tmp_path, one_thread):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_explain import keyword_grids

    X, y, where = keyword_grids(400, seed=1)
    est = GridCNNClassifier(architecture="kim", filters=4, max_epochs=10, lr=0.01, modality="text",
                            random_state=0).fit(X, y)
    tokens = [[("GOOD" if y[i] else "BAD") if t == where[i] else f"w{t}" for t in range(16)] for i in range(len(y))]
    plots.plot_filters(est.model_, tmp_path / "filters.png", modality="text", grids=X, tokens=tokens)
    lines = [line for line in texts_of(caught["filters.png"]).splitlines() if "-gram filter" in line]
    assert len(lines) == 12  # 3 branches x 4 filters
    assert lines[0].startswith("branch1.block1  3-gram filter 1:") and lines[-1].startswith("branch3.block1  5-gram")
    # Filters learned the keywords: most name one in their strongest n-gram.
    assert np.mean([("GOOD" in line.split("·")[0]) or ("BAD" in line.split("·")[0]) for line in lines]) >= 0.5
