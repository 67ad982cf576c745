"""The server's engine (issue 24): onnxruntime where it is installed, torch otherwise, the same answers from both,
and a row's answer that does not depend on the requests it shares the network with."""

import asyncio
import io
import logging
import shutil
import sys

import numpy as np
import pytest

import gridcnn

pytest.importorskip("fastapi", reason="the serve extra (pip install 'gridcnn[serve]') is not installed")
pytest.importorskip("onnxruntime", reason="the export extra (pip install 'gridcnn[export]') is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from gridcnn import GridCNNClassifier, GridCNNError  # noqa: E402
from gridcnn.export.onnx import parts  # noqa: E402
from gridcnn.serve import create_app  # noqa: E402
from gridcnn.serve._engine import OnnxEngine, TorchEngine  # noqa: E402


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def digits_uint8(n=None):
    from sklearn.datasets import load_digits

    images = np.round(load_digits().images * 255 / 16).astype(np.uint8)
    return images if n is None else images[-n:]


def upload(images):
    return {"files": [("files", (f"{i}.png", png(a), "image/png")) for i, a in enumerate(images)]}


def real_inputs(kind, request):
    """(the loaded model, real inputs its adapter reads) for each modality of the shared test models."""
    if kind == "image":
        run = request.getfixturevalue("image_run")
        return gridcnn.load(run, device="cpu"), digits_uint8()
    if kind == "audio":
        folder, paths, _ = request.getfixturevalue("audio_model")
        return gridcnn.load(folder, device="cpu"), paths
    folder, texts, _ = request.getfixturevalue("text_model")
    return gridcnn.load(folder, device="cpu"), texts


@pytest.mark.parametrize("kind", ["image", "audio", pytest.param("text", marks=pytest.mark.slow)])
def test_onnxruntime_engine_gives_torchs_probabilities_on_real_rows(kind, request):
    model, inputs = real_inputs(kind, request)
    adapter, est = parts(model)
    grids = adapter.transform(inputs)
    expected = est.predict_proba(grids)
    got = OnnxEngine(est).predict_proba(grids)
    assert got.shape == expected.shape == (len(inputs), len(est.classes_))
    assert np.abs(got - expected).max() <= 1e-5
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-12)


def test_model_says_which_engine_and_both_answer_alike(image_run):
    images = digits_uint8(6)
    answers = {}
    for engine in ("auto", "onnxruntime", "torch"):
        client = TestClient(create_app(image_run, engine=engine))
        answers[engine] = client.post("/predict", **upload(images)).json()["predictions"]
        assert client.get("/model").json()["engine"] == {"auto": "onnxruntime"}.get(engine, engine)
    expected = gridcnn.load(image_run).predict_proba(images)
    for engine, predictions in answers.items():
        got = np.array([[p["probabilities"][str(c)] for c in range(10)] for p in predictions])
        np.testing.assert_allclose(got, expected, atol=2e-6, err_msg=engine)  # the answer rounds to 6 decimals


def test_without_onnxruntime_the_server_uses_torch_or_says_what_to_install(image_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the export extra were not installed
    app = create_app(image_run)
    assert TestClient(app).get("/model").json()["engine"] == "torch"
    assert isinstance(app.state.predictor.engine, TorchEngine)
    with pytest.raises(GridCNNError, match=r"onnxruntime is missing\). Install them with: pip install 'gridcnn\[export\]'"):
        create_app(image_run, engine="onnxruntime")


def test_unknown_engine_suggests_the_closest(image_run):
    with pytest.raises(GridCNNError, match="Unknown engine 'onnx'. Did you mean 'onnxruntime'?"):
        create_app(image_run, engine="onnx")


def test_a_stale_model_onnx_beside_the_model_is_named_and_not_served(image_run, tmp_path, caplog):
    """`gridcnn export RUN` writes RUN/model.onnx; a model saved after it makes that file stale. The server never
    reads it (it exports its graph from the weights it loaded), and says that the file is stale."""
    import os

    from typer.testing import CliRunner

    from gridcnn.cli.commands import app as cli

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    assert CliRunner().invoke(cli, ["export", str(run)]).exit_code == 0
    with caplog.at_level(logging.WARNING, logger="gridcnn.serve"):
        create_app(run)
    assert not [r for r in caplog.records if "stale" in r.getMessage()]  # fresh: nothing to say
    weights = run / "model" / "model.safetensors"
    old = weights.stat().st_mtime - 60
    os.utime(run / "model.onnx", (old, old))  # exported a minute before the model was saved
    # A stale file that would answer differently: the server's answers must still be the model's.
    (run / "model.onnx").write_bytes(b"not the graph of this model")
    os.utime(run / "model.onnx", (old, old))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gridcnn.serve"):
        client = TestClient(create_app(run))
    [record] = [r for r in caplog.records if "stale" in r.getMessage()]
    assert str(run / "model.onnx") in record.getMessage() and f"gridcnn export {run}" in record.getMessage()
    assert client.get("/model").json()["engine"] == "onnxruntime"
    images = digits_uint8(4)
    labels = [p["label"] for p in client.post("/predict", **upload(images)).json()["predictions"]]
    assert labels == gridcnn.load(image_run).predict(images).tolist()


@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_a_rows_probabilities_do_not_depend_on_the_rows_beside_it(image_run, engine):
    """Engine level, at full precision: a row alone, and among 1, 7, 32 and 200 others, anywhere in the batch."""
    app = create_app(image_run, engine=engine)
    predictor = app.state.predictor
    grids = predictor.grids(list(_pil(digits_uint8(201))))
    alone = np.concatenate([predictor.engine.predict_proba(grids[i : i + 1]) for i in (0, 5, 100, 200)])
    for n in (2, 8, 33, 201):
        together = predictor.engine.predict_proba(grids[:n])
        for j, i in enumerate((0, 5, 100, 200)):
            if i < n:
                np.testing.assert_array_equal(together[i], alone[j], err_msg=f"row {i} among {n}")


@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_the_server_answers_a_digit_alike_alone_in_a_request_and_batched(image_run, engine):
    """Through HTTP: one digit alone; inside a request of 9 files; and among 15 concurrent requests that the
    batching server runs through the network together. The answers are equal, not close."""
    import httpx

    images = digits_uint8(16)
    app = create_app(image_run, engine=engine, batching=True)
    sizes = []
    original = app.state.predictor.engine.predict_proba

    def counting(grids):
        sizes.append(len(grids))
        return original(grids)

    app.state.predictor.engine.predict_proba = counting

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alone = await client.post("/predict", **upload(images[:1]))
            inside = await client.post("/predict", **upload(images[:9]))
            crowd = await asyncio.gather(*(client.post("/predict", **upload(images[i : i + 1])) for i in range(16)))
        return alone, inside, crowd

    alone, inside, crowd = asyncio.run(main())
    first = alone.json()["predictions"][0]
    assert inside.json()["predictions"][0] == first
    assert crowd[0].json()["predictions"][0] == first
    assert [r.json()["predictions"][0] for r in crowd[:9]] == inside.json()["predictions"]
    assert max(sizes) > 1  # some concurrent requests did share a pass


def _pil(images):
    from PIL import Image

    return (Image.fromarray(a) for a in images)


@pytest.mark.slow
def test_a_text_server_answers_its_first_requests_arriving_together(text_model):
    """Eight requests at once to a fresh text server: each loads the tokenizer on first use, and two threads
    importing transformers at the same time used to see a half-initialised module (a 500 for some of them)."""
    import subprocess

    folder, texts, _ = text_model
    code = f"""
import threading
import gridcnn
from gridcnn.serve._predictor import Predictor
predictor = Predictor(gridcnn.load({str(folder)!r}, device="cpu"))
failed, start = [], threading.Barrier(8)
def ask(i):
    start.wait()
    try:
        predictor.predict(predictor.from_json([{texts[:8]!r}[i]]))
    except Exception as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(failed)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_a_model_fitted_on_rows_without_channels_is_served_by_either_engine(engine):
    # Fitted on (n, 4, 4): the server's grids are (n, 1, 4, 4), which the estimator's own predict_proba refuses as
    # a different layout; the torch engine failed at start-up (warm-up) and on every request.
    from fastapi.testclient import TestClient

    X = np.random.default_rng(0).random((8, 4, 4)).astype(np.float32)
    model = GridCNNClassifier(filters=2, hidden=4, max_epochs=1, random_state=0, check_input="off").fit(X, np.arange(8) % 2)
    client = TestClient(create_app(model, engine=engine))
    got = client.post("/predict", json={"inputs": X[:3].tolist()})
    assert got.status_code == 200, got.text
    proba = [[p["probabilities"][c] for c in ("0", "1")] for p in got.json()["predictions"]]
    np.testing.assert_allclose(proba, model.predict_proba(X[:3]), atol=1e-6)
