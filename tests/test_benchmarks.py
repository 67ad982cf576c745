"""benchmarks/run.py: the --quick run on a tiny subset completes and writes real results (CI's only benchmark).

No time is asserted (speed numbers belong in benchmarks/RESULTS.md); what is checked is that every model ran on
every data set, the numbers are accuracies, the CNN learns, and the JSON, the markdown and the chart are written.
"""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
BASELINES = {"gridcnn", "logreg", "svc_rbf", "hist_gb", "mlp"}
ACCURACY_HEADER = ("| data set | train / test | GridCNNClassifier | LogisticRegression | SVC (RBF) "
                   "| HistGradientBoosting | MLPClassifier | published |")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_benchmarks(args, cwd, pythonpath=()):
    """Run benchmarks/run.py in a subprocess from ``cwd`` (so nothing lands in the repository) on one thread."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, pythonpath), str(ROOT)]))
    proc = subprocess.run([sys.executable, str(RUN), "--threads", "1", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


@pytest.mark.slow
def test_quick_run_on_a_tiny_subset(tmp_path):
    out = tmp_path / "out"
    run_benchmarks(["--quick", "--max-train", "300", "--only", "digits,sequence", "--out", str(out)], tmp_path)
    results = json.loads((out / "results.json").read_text())

    assert list(results["datasets"]) == ["digits", "sequence"]
    for name, ds in results["datasets"].items():
        assert set(ds["models"]) == BASELINES, name
        assert ds["n_train"] == 300
        for model, r in ds["models"].items():
            assert 0.0 <= r["accuracy"] <= 1.0 and r["n_train"] <= 300, (name, model)
    digits = results["datasets"]["digits"]["models"]
    # 96.1-97.2% measured over four training seeds on these 300 digits; chance is 10%.
    assert digits["gridcnn"]["accuracy"] >= 0.90
    assert results["datasets"]["sequence"]["references"] == [["paper CNN", 0.94], ["paper MLP", 0.68]]

    speed = results["speed"]["MNIST-1D"]  # the sequence grids are the only speed set among digits and sequence
    assert speed["n_train"] == 300 and speed["grid_shape"] == [1, 1, 40]
    median = speed["median_s"]
    for trainer, times in speed["seconds"].items():  # the medians and ratios the report prints come from the times
        assert len(times) == speed["repeats"] and median[trainer] == pytest.approx(np.median(times)), trainer
    assert speed["ratios"]["gridcnn/hand"] == pytest.approx(median["gridcnn"] / median["hand"])
    if "skorch" in median:  # skorch is only in the bench extra
        assert speed["ratios"]["gridcnn/skorch"] == pytest.approx(median["gridcnn"] / median["skorch"])
    else:
        assert speed["skorch"].startswith("skorch not installed")

    assert results["logmel"]["max_db_diff"]["cpu"] < 0.01  # the adapter computes what librosa computes
    assert [r["suitable"] for r in results["suitability"]] == [True] * 4  # MNIST is a grid
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch_threads"] == 1

    md = (out / "results.md").read_text()
    assert ACCURACY_HEADER in md
    assert "| digits 8x8 | 300 / 360 |" in md and "| MNIST-1D (1x1x40) | 300 x 2 |" in md
    assert (out / "accuracy.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_without_skorch_and_filling_results_md(tmp_path):
    # A package named skorch that fails to import stands in for a machine without the bench extra.
    (tmp_path / "blocker" / "skorch").mkdir(parents=True)
    (tmp_path / "blocker" / "skorch" / "__init__.py").write_text("raise ImportError('not here')\n")
    out = tmp_path / "out"
    run_benchmarks(["--quick", "--max-train", "100", "--only", "sequence", "--out", str(out)], tmp_path,
                   pythonpath=[tmp_path / "blocker"])
    results = json.loads((out / "results.json").read_text())
    assert set(results["speed"]["MNIST-1D"]["median_s"]) == {"gridcnn", "hand"}
    assert "skorch not installed" in (out / "results.md").read_text()

    # Regenerating RESULTS.md keeps the hand-written text and replaces the run.py section, however often it runs.
    target = tmp_path / "doc" / "RESULTS.md"
    target.parent.mkdir()
    hand_written = "# Results\n\nHand-written notes.\n\n<!-- run.py:begin -->\nstale\n<!-- run.py:end -->\n\nTail.\n"
    target.write_text(hand_written)
    for _ in range(2):
        run_benchmarks(["--from-json", str(out / "results.json"), "--out", str(tmp_path / "again"),
                        "--results-md", str(target)], tmp_path)
    text = target.read_text()
    assert text.startswith("# Results\n\nHand-written notes.\n\n<!-- run.py:begin -->\n## Side by side")
    assert text.endswith("<!-- run.py:end -->\n\nTail.\n")
    assert "stale" not in text and text.count("<!-- run.py:begin -->") == 1
    assert "| MNIST-1D | 100 / 1,000 |" in text
    assert (target.parent / "accuracy.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow  # keras' import and five fits: about 20 s on a quiet machine
def test_keras_network_is_the_guides_and_every_trainer_learns():
    # benchmarks/keras_speed.py on 512 rows: the same 10,180-parameter network for every trainer, and a
    # "before" copy (this very package) timed in a subprocess; keras and skorch only where the bench extra is.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import keras_speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    net = keras_speed._module(np.zeros((1, 1, 28, 28), np.float32))
    assert sum(p.numel() for p in net.parameters()) == 6 * 4 + 6 + 1014 * 10 + 10  # Conv2D(6, 2), Dense(10)
    # The "Keras' initial weights" trainer: Glorot-uniform kernels and zero biases where torch draws Kaiming-uniform
    # (for the dense layer within 1 / sqrt(1014) = 0.031; Glorot's bound is sqrt(6 / 1024) = 0.077).
    keras_speed.GlorotInit().on_fit_start(types.SimpleNamespace(model=net))
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 2 and all(not m.bias.any() for m in layers)
    assert 1 / np.sqrt(1014) < layers[1].weight.abs().max() <= np.sqrt(6 / 1024)
    # Keras' training too: the estimator's defaults changed once under this benchmark and it measured them instead.
    params = keras_speed.estimator(1, 0).get_params()
    assert {k: params[k] for k in ("optimizer", "lr", "lr_schedule", "weight_decay", "augment_shift", "augment_flip",
                                   "validation_fraction", "batch_size")} == {
        "optimizer": "adam", "lr": 1e-3, "lr_schedule": "constant", "weight_decay": 0.0, "augment_shift": 0,
        "augment_flip": False, "validation_fraction": None, "batch_size": 32}
    result = keras_speed.compare(n=512, epochs=1, repeats=1, before=str(ROOT))
    assert {"gridcnn", "hand", "before"} <= set(result["median_s"])
    # Chance is 10%; after 16 Adam steps the five landed at 20-48% (each its own initial weights).
    assert all(a > 0.15 for a in result["accuracy"].values()), result["accuracy"]


@pytest.mark.slow
def test_defaults_run_on_unseen_data_writes_a_row_per_data_set(tmp_path):
    # benchmarks/defaults.py's unseen part end to end on tiny generated data, each fit cut to one epoch by the time
    # limit: the JSON it saves after each row and the markdown rows (a full run takes over an hour to reach its end).
    data, out = tmp_path / "unseen", tmp_path / "defaults.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "unseen_data.py"), str(data), "20"], check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "defaults.py"), "--unseen", str(data),
                           "--time-limit", "0.001", "--json", str(out)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = json.loads(out.read_text())["unseen"]
    assert [r["data"] for r in rows] == ["shapes", "sounds", "reviews.csv", "signals.csv", "table.csv"]
    assert [r["kind"] for r in rows] == ["image", "audio", "text", "sequence", "sequence"]
    for r in rows:
        assert 0 <= r["auto"] <= 1 and 0 <= r["baseline"] <= 1 and r["epochs"].startswith("1 of "), r
    assert rows[2]["baseline_name"] == "TF-IDF + LogisticRegression"
    assert sum(line.startswith(("| shapes", "| sounds", "| reviews", "| signals", "| table")) for line in
               proc.stdout.splitlines()) == 5
