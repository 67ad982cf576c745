"""The bad-input matrix: every user mistake gets one message that says what was expected, what came, and the fix.

Python API cases assert the exception type and message; CLI cases assert the exit code (2 usage, 1 data), the
message, and that no traceback is shown.
"""

import json
import re

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.adapters import EmbeddingGrid, ImageGrid, SpectrogramGrid, get_adapter
from gridcnn.backbone import get_preset
from gridcnn.cli import app
from gridcnn.datasets import load_dataset
from gridcnn.streaming import StreamedGrids

X8 = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
Y8 = np.arange(20) % 2


def clf(**kw):
    return GridCNNClassifier(**{"filters": 4, "hidden": 8, "max_epochs": 1, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    model = clf().fit(X8, Y8)
    path = tmp_path_factory.mktemp("model") / "m"
    model.save(path)
    return model, path


API_CASES = [
    ("NaN values", lambda: clf().fit(np.where(X8 > 0.99, np.nan, X8), Y8), ValueError, "Input X contains NaN"),
    ("inf values", lambda: clf().fit(np.where(X8 > 0.99, np.inf, X8), Y8), ValueError, "Input X contains infinity"),
    ("wrong rank", lambda: clf().fit(X8[..., None, None], Y8), GridCNNError,
     "X must be 2-D (n, L), 3-D (n, H, W) or 4-D (n, C, H, W). Got a 5-D array of shape (20, 8, 8, 1, 1)."),
    ("1-D X", lambda: clf().fit(np.zeros(20), Y8), ValueError, "Expected 2D array, got 1D array instead"),
    ("empty X", lambda: clf().fit(X8[:0], Y8[:0]), ValueError, "Found array with 0 sample(s)"),
    ("one class", lambda: clf().fit(X8, np.ones(20)), GridCNNError,
     "GridCNNClassifier needs at least 2 classes, but y holds 1 class only: 1.0. Add examples of another class."),
    ("length mismatch", lambda: clf().fit(X8, Y8[:-1]), ValueError,
     "Found input variables with inconsistent numbers of samples: [20, 19]"),
    ("no labels", lambda: clf().fit(X8, None), GridCNNError, "GridCNNClassifier requires y to be passed, but the target y is None."),
    ("grid too small", lambda: clf(kernel_size=9, padding=0).fit(X8, Y8), GridCNNError,
     "Grid 8x8 is too small for the convolution of block 1 (kernel 9x9, stride 1, padding 0)"),
    ("zero epochs", lambda: clf(max_epochs=0).fit(X8, Y8), GridCNNError,
     "The 'max_epochs' parameter of GridCNNClassifier must be an int in the range [1, inf) or a str among {'auto'}. "
     "Got 0 instead."),
    ("negative batch", lambda: clf(batch_size=-8).fit(X8, Y8), GridCNNError, "The 'batch_size' parameter"),
    ("zero lr", lambda: clf(lr=0.0).fit(X8, Y8), GridCNNError, "The 'lr' parameter of GridCNNClassifier must be a float in the range (0.0, inf)"),
    ("dropout above 1", lambda: clf(dropout=1.5).fit(X8, Y8), GridCNNError, "The 'dropout' parameter"),
    ("zero filters", lambda: clf(filters=[0, 4]).fit(X8, Y8), GridCNNError, "filters of block 1 must be a positive int. Got 0 instead."),
    ("misspelt pool", lambda: clf(pool="avrg").fit(X8, Y8), GridCNNError, "Got 'avrg' instead. Did you mean 'avg'?"),
    ("misspelt architecture", lambda: clf(architecture="lenet").fit(X8, Y8), GridCNNError, "Did you mean 'lenet5'?"),
    ("misspelt optimizer", lambda: clf(optimizer="adamm").fit(X8, Y8), GridCNNError, "Did you mean 'adam'?"),
    ("summary before fit", lambda: GridCNNClassifier().summary(), GridCNNError,
     "summary() before fit needs input_shape=(channels, height, width)."),
    ("unknown preset", lambda: get_preset("lenet-5"), GridCNNError, "Unknown preset 'lenet-5'. Did you mean 'lenet5'?"),
    ("unknown adapter", lambda: get_adapter("spectogram"), GridCNNError, "Unknown adapter 'spectogram'. Did you mean 'spectrogram'?"),
    ("unknown dataset", lambda: load_dataset("mnsit"), GridCNNError, "Unknown dataset 'mnsit'. Did you mean 'mnist'?"),
    ("unknown split", lambda: load_dataset("mnist", split="tst"), GridCNNError, "Dataset 'mnist' has no split 'tst'. Did you mean 'test'?"),
    ("input_shape mismatch", lambda: clf(input_shape=(7, 7)).fit(X8.reshape(20, 64), Y8), GridCNNError,
     "input_shape=(7, 7) does not fit rows of 64 values (X has shape (20, 64)). Give (height, width) or "
     "(channels, height, width) whose product is 64."),
    ("predict before fit", lambda: clf().predict(X8), NotFittedError, "This GridCNNClassifier instance is not fitted yet"),
    ("empty text", lambda: EmbeddingGrid(embedding="minilm-static").fit(["good film", "  "]), GridCNNError,
     "Document 1 is empty or only whitespace"),
    ("non-string text", lambda: EmbeddingGrid(embedding="minilm-static").fit(["good film", 3]), GridCNNError, "Document 1"),
    ("misspelt image mode", lambda: ImageGrid(mode="gray").fit(X8), GridCNNError, "Did you mean 'L'?"),
    ("misspelt precision", lambda: clf(precision="bf61").fit(X8, Y8), GridCNNError,
     "Got 'bf61' instead. Did you mean 'bf16'?"),
    ("resume from nothing", lambda: clf().fit(X8, Y8, resume_from="no-such.safetensors"), GridCNNError,
     "No checkpoint at no-such.safetensors."),
    ("stream through an unfitted adapter", lambda: StreamedGrids(["a.png"], ImageGrid()), GridCNNError,
     "The ImageGrid given to StreamedGrids is not fitted. Fit it first on some of the files"),
    ("stream through a non-file adapter", lambda: StreamedGrids(["a.txt"], get_adapter("sequence")), GridCNNError,
     "Streaming decodes files through an image or spectrogram adapter; got SequenceGrid ('sequence')"),
    ("stream of one path", lambda: StreamedGrids("folder", ImageGrid().fit(X8)), GridCNNError,
     "StreamedGrids takes a list of file paths; got one path 'folder'. For a class folder, use"),
    ("negative stream workers", lambda: StreamedGrids(["a.png"], ImageGrid().fit(X8), num_workers=-1), GridCNNError,
     "num_workers must be an int >= 0. Got -1 instead."),
    ("streamed labels of another length", lambda: clf().fit(StreamedGrids(["a.png", "b.png"], ImageGrid().fit(X8)),
                                                            [0]), GridCNNError,
     "y must hold one label per file of the StreamedGrids: it has 2 files and y has shape (1,)."),
    ("checkpoint in a missing folder", lambda: clf(checkpoint="no-such-folder/c.safetensors").fit(X8, Y8), GridCNNError,
     "checkpoint='no-such-folder/c.safetensors': the folder no-such-folder does not exist. Create it, or choose another path."),
]


@pytest.mark.parametrize("make, error, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_mistakes(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_unavailable_device():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(GridCNNError, match=re.escape("device 'cuda' was asked for, but this machine has no CUDA GPU")):
        clf(device="cuda").fit(X8, Y8)


def test_labels_unseen_when_training_goes_on(fitted):
    with pytest.raises(GridCNNError, match=re.escape("y holds labels not seen when the network was built: [7]")):
        fitted[0].partial_fit(X8[:2], np.array([7, 7]))


def test_predict_with_another_grid_size(fitted):
    with pytest.raises(GridCNNError, match=re.escape(
            "X has grids of shape (1, 6, 6), but this GridCNNClassifier was fitted on grids of shape (1, 8, 8)")):
        fitted[0].predict(np.zeros((2, 1, 6, 6), np.float32))


def test_corrupt_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(GridCNNError, match=re.escape(f"Could not read {str(bad)!r} as an image")):
        ImageGrid().fit([str(bad)])


def test_corrupt_audio_names_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(GridCNNError, match=re.escape(f"Clip 0 ({str(bad)!r}) cannot be used: it cannot be decoded")):
        SpectrogramGrid().fit([str(bad)])


def test_model_file_from_another_version(fitted, tmp_path):
    _, path = fitted
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = 99
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    with pytest.raises(GridCNNError, match=re.escape("was written in model format version 99")):
        gridcnn.load(other)


def test_model_config_missing_fitted_state_is_refused(fitted, tmp_path):
    _, path = fitted
    config = json.loads((path / "config.json").read_text())
    del config["estimator"]["spec"]
    other = tmp_path / "damaged"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    with pytest.raises(GridCNNError, match=re.escape("config.json lacks spec in its estimator section")):
        gridcnn.load(other)


def test_tampered_weights_are_refused(fitted, tmp_path):
    _, path = fitted
    other = tmp_path / "tampered"
    other.mkdir()
    (other / "config.json").write_text((path / "config.json").read_text())
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (other / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(GridCNNError, match=re.escape("does not match its config (SHA-256 differs)")):
        gridcnn.load(other)


def test_folder_without_a_model(tmp_path):
    with pytest.raises(GridCNNError, match=re.escape(f"{tmp_path} is not a gridcnn model folder")):
        gridcnn.load(tmp_path)


# -- the command line ------------------------------------------------------------------------------------------

runner = CliRunner()
RECIPE = """# tiny
[data]
name = "digits"
test_fraction = 0.25

[estimator]
filters = 4
max_epochs = 1
random_state = 0
"""


@pytest.fixture
def files(tmp_path, fitted):
    (tmp_path / "good.toml").write_text(RECIPE)
    (tmp_path / "syntax.toml").write_text(RECIPE.replace('name = "digits"', "name = digits"))
    (tmp_path / "key.toml").write_text(RECIPE.replace("filters = 4", "filter = 4"))
    (tmp_path / "type.toml").write_text(RECIPE.replace("max_epochs = 1", 'max_epochs = "one"'))
    (tmp_path / "dataset.toml").write_text(RECIPE.replace('"digits"', '"digitz"'))
    (tmp_path / "preset.toml").write_text(RECIPE + 'architecture = "kimm"\n')
    (tmp_path / "adapter.toml").write_text(RECIPE.replace("[estimator]", '[adapter]\nname = "imagee"\n\n[estimator]'))
    (tmp_path / "section.toml").write_text(RECIPE + "\n[outptu]\ndir = 'x'\n")
    (tmp_path / "stream.toml").write_text(RECIPE.replace("test_fraction", 'stream = "yes"\ntest_fraction'))
    (tmp_path / "stream-arrays.toml").write_text(RECIPE.replace("test_fraction", "stream = true\ntest_fraction"))
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n1,x,0\n2,y,1\n3,z,0\n4,w,1\n5,v,0\n6,u,1\n")
    (tmp_path / "csv.toml").write_text(RECIPE.replace('name = "digits"', f'path = "{table}"'))
    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((fitted[1] / "config.json").read_text())
    config["format_version"] = 0
    (old / "config.json").write_text(json.dumps(config))
    (old / "model.safetensors").write_bytes((fitted[1] / "model.safetensors").read_bytes())
    (tmp_path / "file").write_text("")
    for run in ("fresh", "damaged"):  # run folders whose first epoch never finished, or whose checkpoint is damaged
        (tmp_path / run).mkdir()
        (tmp_path / run / "recipe.toml").write_text(RECIPE)
    (tmp_path / "damaged" / "checkpoint.safetensors").write_bytes(b"\x00" * 100)
    _data_mistakes(tmp_path)
    return {"tmp": tmp_path, "model": fitted[1]}


def _data_mistakes(tmp_path):
    """Data given to `gridcnn fit PATH` without a recipe, each wrong in one way."""
    from PIL import Image

    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("")
    for name in ("mixed/a/x.png", "mixed/b/y.wav", "oneclass/a/x.png", "oneclass/a/y.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png"):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
        else:
            (tmp_path / name).write_bytes(b"RIFF")
    (tmp_path / "nolabel.csv").write_text("height,width,colour\n1,2,3\n4,5,6\n")
    (tmp_path / "labelled.csv").write_text("height,species\n1,a\n2,b\n")
    (tmp_path / "table.parquet").write_bytes(b"PAR1")


CLI_CASES = [
    ("bad TOML", ["fit", "{tmp}/syntax.toml"], 2, "not valid TOML: Invalid value (at line 3, column 8)"),
    ("unknown key", ["fit", "{tmp}/key.toml"], 2, "estimator.filter: GridCNNClassifier has no parameter 'filter'. Did you mean 'filters'?"),
    ("wrong type", ["fit", "{tmp}/type.toml"], 2, "estimator.max_epochs: The 'max_epochs' parameter of GridCNNClassifier must be an int"),
    ("unknown dataset", ["fit", "{tmp}/dataset.toml"], 2, "data.name: Unknown dataset 'digitz'. Did you mean 'digits'?"),
    ("unknown preset", ["fit", "{tmp}/preset.toml"], 2, "Got 'kimm' instead. Did you mean 'kim'?"),
    ("unknown adapter", ["fit", "{tmp}/adapter.toml"], 2, "adapter.name: Unknown adapter 'imagee'. Did you mean 'image'?"),
    ("unknown section", ["fit", "{tmp}/section.toml"], 2, "[outptu]: unknown section. Did you mean 'output'?"),
    ("bad stream value", ["fit", "{tmp}/stream.toml"], 2, 'data.stream: must be true, false or "auto". Got \'yes\' instead.'),
    ("stream of arrays", ["fit", "{tmp}/stream-arrays.toml", "--out", "{tmp}/run"], 1,
     "[data] stream = true streams image or sound files through an [adapter] named image or spectrogram; these data "
     "are not a list of files."),
    ("missing recipe", ["fit", "{tmp}/nothing.toml"], 2, "Recipe file '{tmp}/nothing.toml' does not exist."),
    ("bad override", ["fit", "{tmp}/good.toml", "--set", "estimator.max_epochs"], 2, "--set takes section.key=value"),
    ("unwritable output", ["fit", "{tmp}/good.toml", "--out", "{tmp}/file/run"], 2, "Cannot write the run folder"),
    ("non-numeric column", ["fit", "{tmp}/csv.toml", "--out", "{tmp}/run"], 1, "columns ['b'] are not numeric"),
    ("run without model", ["evaluate", "{tmp}"], 2, "is not a gridcnn model folder"),
    ("model from another version", ["evaluate", "{tmp}/old"], 2, "was written in model format version 0"),
    ("missing input", ["predict", "{model}", "{tmp}/none.npy"], 2, "Input '{tmp}/none.npy': this model takes grids from .npy files"),
    ("missing data to check", ["check", "{tmp}/none.csv"], 2, "does not exist"),
    ("fit without recipe", ["fit"], 2, "gridcnn fit needs a RECIPE (such as recipes/audio.toml), or --resume RUN."),
    ("resume a non-run", ["fit", "--resume", "{tmp}/old"], 2, "{tmp}/old is not a run folder (it has no recipe.toml)"),
    ("resume with a recipe", ["fit", "{tmp}/good.toml", "--resume", "{tmp}/fresh"], 2,
     "--resume RUN continues that run with its own recipe and folder; drop the RECIPE argument"),
    ("resume before an epoch", ["fit", "--resume", "{tmp}/fresh"], 2,
     "No checkpoint at {tmp}/fresh/checkpoint.safetensors. A run folder gets checkpoint.safetensors after its first"),
    ("damaged checkpoint", ["fit", "--resume", "{tmp}/damaged"], 2, "is not a readable gridcnn checkpoint"),
    ("empty data folder", ["fit", "{tmp}/empty"], 1, "{tmp}/empty holds no image or sound files (1 other file(s))"),
    ("images mixed with sounds", ["fit", "{tmp}/mixed"], 1, "{tmp}/mixed mixes 1 image and 1 sound files"),
    ("one class only", ["fit", "{tmp}/oneclass"], 1, "has one class only ('a', 2 files): a classifier needs at least 2"),
    ("table without a label column", ["fit", "{tmp}/nolabel.csv"], 2,
     "which column holds the labels? None is named like one (label, labels, target, class, y, ...). Pass --target "
     "COLUMN (target=COLUMN in Python); columns: height, width, colour."),
    ("misspelt --target", ["fit", "{tmp}/labelled.csv", "--target", "specie"], 2,
     "has no column 'specie'. Did you mean 'species'?"),
    ("malformed --time-limit", ["fit", "{tmp}/labelled.csv", "--target", "species", "--time-limit", "ten minutes"], 2,
     "--time-limit takes a duration such as 90s, 10m, 1h30m or a number of seconds. Got 'ten minutes' instead."),
]


@pytest.mark.parametrize("args, code, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_mistakes(files, args, code, message):
    result = runner.invoke(app, [a.format(**files) for a in args])
    assert result.exit_code == code, result.output
    assert message.format(**files) in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1


def test_parquet_without_pyarrow_says_how_to_install_it(files, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if pyarrow were not installed
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    result = runner.invoke(app, ["fit", str(files["tmp"] / "table.parquet")])
    assert result.exit_code == 2, result.output
    assert 'needs pyarrow. Install it: pip install pyarrow (or: pip install "gridcnn[parquet]").' in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_disk_full_keeps_what_was_written(files, monkeypatch):
    import errno

    import gridcnn.persistence as persistence

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(persistence.Path, "write_bytes", full)  # the weights file is the first byte-write
    out = files["tmp"] / "run"
    result = runner.invoke(app, ["fit", str(files["tmp"] / "good.toml"), "--out", str(out)])
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert (out / "recipe.toml").is_file()  # written before training: the run can be repeated as it was


def test_matrix_has_at_least_30_cases():
    assert len(API_CASES) + len(CLI_CASES) + 9 >= 36
