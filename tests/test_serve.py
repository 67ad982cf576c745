"""gridcnn serve through FastAPI's TestClient: the API and its bad-request matrix for image, sound and text models."""

import asyncio
import io
import json
import logging

import numpy as np
import pytest

import gridcnn

pytest.importorskip("fastapi", reason="the serve extra (pip install 'gridcnn[serve]') is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from gridcnn.serve import create_app  # noqa: E402


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def digit_images(n=5):
    from sklearn.datasets import load_digits

    return np.round(load_digits().images[-n:] * 255 / 16).astype(np.uint8)


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def image_served(image_run):
    """(client, the same model loaded for reference, a good request, its expected labels)."""
    images = digit_images()
    model = gridcnn.load(image_run)
    return (TestClient(create_app(image_run), raise_server_exceptions=False), model,
            {"files": [("files", (f"{i}.png", png(a), "image/png")) for i, a in enumerate(images)]},
            model.predict(images).tolist())


@pytest.fixture(scope="module")
def audio_served(audio_model):
    folder, paths, _ = audio_model
    model = gridcnn.load(folder)
    clips = paths[:4]
    return (TestClient(create_app(folder), raise_server_exceptions=False), model,
            {"files": [("files", (p.split("/")[-1], open(p, "rb").read(), "audio/wav")) for p in clips]},
            model.predict(clips).tolist())


@pytest.fixture(scope="module")
def text_served(text_model):
    folder, texts, _ = text_model
    model = gridcnn.load(folder)
    sentences = ["the film was superb and funny .", "the film was dull and tedious, really", texts[3]]
    return (TestClient(create_app(folder), raise_server_exceptions=False), model,
            {"json": {"inputs": sentences}}, model.predict(sentences).tolist())


@pytest.fixture
def served(request):
    """kind -> the served model of that kind, built on first use (a fast-lane run never builds the text model)."""
    return {"image": lambda: request.getfixturevalue("image_served"),
            "audio": lambda: request.getfixturevalue("audio_served"),
            "text": lambda: request.getfixturevalue("text_served")}


# The text model reads MiniLM's 30,522 x 384 token table: the slow lane.
KINDS = ["image", "audio", pytest.param("text", marks=pytest.mark.slow)]


@pytest.mark.parametrize("kind", KINDS)
def test_health_model_and_page(served, kind):
    client, model, _, _ = served[kind]()
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    est = model.steps[-1][1]
    assert info["classes"] == est.classes_.tolist() and info["grid_shape"] == list(est.input_shape_)
    assert info["input_kind"] == {"image": "image", "audio": "spectrogram", "text": "embedding"}[kind]
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "://" not in response.text.replace("http://", "")  # no CDN
    assert "https://" not in page.text


def test_model_of_a_run_folder_has_its_recipe_and_test_metrics(served, image_run):
    info = served["image"]()[0].get("/model").json()
    metrics = json.loads((image_run / "metrics.json").read_text())
    assert info["metrics"]["accuracy"] == metrics["accuracy"] and info["recipe"]["estimator"]["max_epochs"] == 4
    assert info["image_size"] == [8, 8] and info["image_mode"] == "L"


@pytest.mark.parametrize("kind", KINDS)
def test_predict_answers_in_input_order_like_the_model(served, kind):
    client, model, request, expected = served[kind]()
    response = client.post("/predict", **request)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == expected
    for p in predictions:
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-4 and p["probabilities"][str(p["label"])] == max(
            p["probabilities"].values())


@pytest.mark.parametrize("kind", KINDS)
def test_json_grids_work_for_any_model_and_feature_maps_come_per_block(served, kind):
    client, model, _, _ = served[kind]()
    est = model.steps[-1][1]
    grids = np.random.default_rng(0).standard_normal((2, *est.input_shape_)).astype(np.float32)
    response = client.post("/predict?feature_maps=true", json={"inputs": grids.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = est.predict_proba(grids)
    got = np.array([[p["probabilities"][str(c)] for c in est.classes_] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    stages = body["feature_maps"]
    import torch

    blocks = [name for name, _ in est.model_.feature_maps(torch.from_numpy(grids[:1]))]
    assert [s["name"] for s in stages] == ["input", *blocks] and len(blocks) >= 1
    for stage in stages:
        c, h, w = stage["shape"]
        assert len(stage["maps"]) == c <= 8 and all(len(m) == h * w and 0 <= min(m) <= max(m) <= 255
                                                    for m in stage["maps"])


def corrupt(kind):
    return b"\x89PNG\r\n\x1a\n not really" if kind == "image" else b"RIFF\x00\x00WAVEfmt garbage"


BAD = {
    "no file": lambda k: dict(files={"other": ("x.txt", b"hello", "text/plain")}),
    "empty file": lambda k: dict(files=[("files", ("empty.bin", b"", "application/octet-stream"))]),
    "corrupt file": lambda k: dict(files=[("files", ("bad.bin", corrupt(k), "application/octet-stream"))]),
    "text for a file model": lambda k: dict(json={"inputs": ["a sentence"]}),
    "array of the wrong shape": lambda k: dict(json={"inputs": [[[0.0, 1.0], [1.0, 0.0]]]}),
    "array of strings and numbers": lambda k: dict(json={"inputs": [["a", 1]]}),
    "too many inputs": lambda k: dict(json={"inputs": ["word"] * 65}),
    "wrong content type": lambda k: dict(content=b"inputs=1", headers={"content-type": "text/plain"}),
    "malformed JSON": lambda k: dict(content=b'{"inputs": [1, 2', headers={"content-type": "application/json"}),
    "JSON without inputs": lambda k: dict(json={"input": [1]}),
    "empty inputs": lambda k: dict(json={"inputs": []}),
    "empty text": lambda k: dict(json={"inputs": ["  "]}),
}
EXPECTED = {  # (status, words in the message); by kind where the answer differs
    "no file": {"text": (415, "it cannot read uploaded files"),
                "*": (400, "send each file in a multipart field named 'files'")},
    "empty file": {"text": (415, "it cannot read uploaded files"), "*": (400, "File 'empty.bin' is empty")},
    "corrupt file": {"text": (415, "it cannot read uploaded files"), "image": (400, "'bad.bin' is not an image"),
                     "audio": (400, "'bad.bin' is not a sound file")},
    "text for a file model": {"text": (200, ""), "*": (400, "it got text")},
    "array of the wrong shape": {"*": (400, "Input 0 has shape [2, 2]; this model takes grids shaped")},
    "array of strings and numbers": {"*": (400, "Input 0 is not an array of numbers")},
    "too many inputs": {"*": (413, "65 inputs in one request; this server takes at most 64")},
    "wrong content type": {"*": (415, "takes multipart/form-data (files in the field 'files') or application/json")},
    "malformed JSON": {"*": (400, "The body is not valid JSON")},
    "JSON without inputs": {"*": (400, 'Expected a JSON object {"inputs": [...]}')},
    "empty inputs": {"*": (400, '"inputs" is empty')},
    "empty text": {"text": (400, "Input 0 is an empty text"), "*": (400, "it got text")},
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_requests_get_4xx_json_that_says_what_was_expected(served, kind, case):
    client, _, good, expected_labels = served[kind]()
    status, words = EXPECTED[case].get(kind, EXPECTED[case].get("*"))
    response = client.post("/predict", **BAD[case](kind))
    assert response.status_code == status, response.text
    if status != 200:
        assert set(response.json()) == {"error"} and words in response.json()["error"]
    # The server keeps serving.
    assert [p["label"] for p in client.post("/predict", **good).json()["predictions"]] == expected_labels


def test_upload_over_the_size_limit_gets_413(image_run):
    client = TestClient(create_app(image_run, max_upload_mb=0.01))
    big = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)  # ~14 kB as PNG, over 10 kB
    response = client.post("/predict", files=[("files", ("big.png", png(big), "image/png"))])
    assert response.status_code == 413
    assert "larger than this server's limit of 0.01 MB (gridcnn serve --max-upload-mb)" in response.json()["error"]
    small = client.post("/predict", files=[("files", ("d.png", png(digit_images(1)[0]), "image/png"))])
    assert small.status_code == 200


def test_too_many_files_and_a_malformed_multipart_body(served):
    client, _, good, _ = served["image"]()
    many = [("files", (f"{i}.png", png(digit_images(1)[0]), "image/png")) for i in range(70)]
    response = client.post("/predict", files=many)
    assert response.status_code == 413 and "this server takes at most 64" in response.json()["error"]
    broken = client.post("/predict", content=b"--xyz\r\nnot a part", headers={
        "content-type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code == 400 and set(broken.json()) == {"error"}


def test_a_failure_inside_is_logged_and_answered_500_without_internals(image_run, caplog, monkeypatch):
    app = create_app(image_run)

    def broken(X, feature_maps=False):
        raise RuntimeError("secret detail at /internal/path.py")

    monkeypatch.setattr(app.state.predictor, "predict", broken)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="gridcnn.serve"):
        response = client.post("/predict", json={"inputs": [np.zeros((1, 8, 8)).tolist()]})
    assert response.status_code == 500
    assert response.json() == {"error": "The server failed to answer this request; the details are in its log."}
    record = next(r for r in caplog.records if r.name == "gridcnn.serve")
    assert "POST /predict failed" in record.getMessage() and "secret detail" in str(record.exc_info[1])
    assert client.get("/health").status_code == 200


def test_inference_runs_off_the_event_loop(image_run, monkeypatch):
    app = create_app(image_run)
    predictor = app.state.predictor
    original, seen = predictor.predict, []

    def recording(X, feature_maps=False):
        try:
            asyncio.get_running_loop()
            seen.append("event loop")
        except RuntimeError:
            seen.append("worker thread")
        return original(X, feature_maps)

    monkeypatch.setattr(predictor, "predict", recording)
    assert TestClient(app).post("/predict", json={"inputs": [np.zeros((8, 8)).tolist()]}).status_code == 200
    assert seen == ["worker thread"]


def test_the_server_never_writes_into_the_run_folder(image_run, served):
    before = snapshot(image_run)
    client = TestClient(create_app(image_run), raise_server_exceptions=False)
    client.post("/predict", **served["image"]()[2])
    client.post("/predict", files=[("files", ("bad.png", b"nope", "image/png"))])
    client.get("/model")
    assert snapshot(image_run) == before


def test_serve_without_the_extra_says_what_to_install(image_run, monkeypatch):
    import sys

    from typer.testing import CliRunner

    from gridcnn.cli.commands import app

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(app, ["serve", str(image_run)])
    assert result.exit_code == 2
    assert "needs the packages fastapi, uvicorn and python-multipart (uvicorn is missing)" in result.output
    assert "pip install 'gridcnn[serve]'" in result.output


def test_gridcnn_serve_runs_uvicorn_on_the_given_port(image_run, tmp_path):
    """The command itself, as a user starts it: a process on 127.0.0.1 that answers, then stops when told to."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gridcnn", "serve", str(image_run), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.json() == {"status": "ok"}, (tmp_path / "server.log").read_text()
        response = httpx.post(f"http://127.0.0.1:{port}/predict", json={"inputs": [np.zeros((8, 8)).tolist()]})
        assert response.status_code == 200 and len(response.json()["predictions"]) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert f"on http://127.0.0.1:{port}" in (tmp_path / "server.log").read_text()


def test_batching_answers_concurrent_requests_as_alone_in_fewer_passes(image_run, monkeypatch):
    import httpx

    app = create_app(image_run, batching=True)
    est = app.state.predictor.engine
    original, calls = est.predict_proba, []

    def counting(grids):
        calls.append(len(grids))
        return original(grids)

    monkeypatch.setattr(est, "predict_proba", counting)
    images = digit_images(16)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(
                client.post("/predict", files=[("files", (f"{i}.png", png(a), "image/png"))])
                for i, a in enumerate(images)))
            bad = await client.post("/predict", files=[("files", ("x.png", b"not a png", "image/png"))])
        return answers, bad

    answers, bad = asyncio.run(main())
    expected = gridcnn.load(image_run).predict_proba(images)
    for answer, p in zip(answers, expected):
        got = answer.json()["predictions"][0]["probabilities"]
        np.testing.assert_allclose([got[str(c)] for c in range(10)], p, atol=1e-6)
    assert sum(calls) == 16 and len(calls) < 16  # some requests shared a pass through the network
    assert bad.status_code == 400 and "'x.png' is not an image" in bad.json()["error"]
