"""What a hostile user found (issue 25): inputs that made NaN answers, 500s or Python advice for a person. Each test
asserts the status or exit code, the words, and that the server keeps serving (or that nothing was written)."""

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.cli.commands import app

pytest.importorskip("fastapi", reason="the serve extra (pip install 'gridcnn[serve]') is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from gridcnn.serve import create_app  # noqa: E402

runner = CliRunner()
X8 = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)


def overflowing(shape, n=1):
    """Finite grids a float32 network overflows on: +-3e38 at random (sums reach +-inf, and inf - inf is NaN)."""
    return (3e38 * np.random.default_rng(1).choice([-1.0, 1.0], (n, *shape))).astype(np.float32)


@pytest.fixture(scope="module")
def grid_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    model = GridCNNClassifier(filters=4, hidden=8, max_epochs=1, random_state=0).fit(X8, np.arange(20) % 2)
    model.save(root / "model")
    return model, root / "model"


# -- NaN answers ------------------------------------------------------------------------------------------------


def test_predict_proba_refuses_rows_it_overflows_on_and_names_them(grid_model):
    model, _ = grid_model
    X = np.concatenate([X8[:2], overflowing((8, 8), 2)])
    with pytest.raises(GridCNNError, match=r"^Input 2 \(and 1 more of 4: \[3\]\) gives no answer: GridCNNClassifier's "
                       r"output for it is not a finite number \(it overflows float32\): its largest value is 3e\+38, "
                       r"and values that large .* Scale the input as the training data was scaled") as info:
        model.predict_proba(X)
    assert info.value.rows == [2, 3]
    with pytest.raises(GridCNNError, match="gives no answer"):
        model.predict(X)
    proba = model.predict_proba(X[:2] * 1e30)  # huge but not overflowing: an answer, and never NaN
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1)


def test_gridcnn_predict_names_the_file_and_never_prints_nan(grid_model, tmp_path):
    _, folder = grid_model
    np.save(tmp_path / "ok.npy", X8[0])
    np.save(tmp_path / "huge.npy", overflowing((8, 8))[0])
    big = np.zeros((8, 8)); big[2, 3] = 1e300  # float64 beyond float32
    np.save(tmp_path / "big.npy", big)
    nan = np.zeros((3, 8, 8), np.float32); nan[1, 4, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    before = sorted(tmp_path.rglob("*"))
    for args, words in (
        (["ok.npy", "huge.npy"], "Error: Input '{tmp}/huge.npy' gives no answer: GridCNNClassifier's output for it is "
                                 "not a finite number"),
        (["big.npy"], "Error: Input '{tmp}/big.npy' holds 1e+300 at [2, 3] (1 such value(s)): a grid's cells must be "
                      "finite numbers float32 can hold (|x| < 3.4e38). Replace them (np.nan_to_num)"),
        (["nan.npy", "--json"], "Error: Input '{tmp}/nan.npy[1]' holds nan at [4, 5] (1 such value(s))"),
    ):
        result = runner.invoke(app, ["predict", str(folder), *[str(tmp_path / a) if a.endswith(".npy") else a
                                                                for a in args]])
        assert result.exit_code == 1, result.output
        assert words.format(tmp=tmp_path) in result.output.replace("\n", "")
        assert "nan\t" not in result.output and "NaN" not in result.output and "Traceback" not in result.output
    assert sorted(tmp_path.rglob("*")) == before
    good = runner.invoke(app, ["predict", str(folder), str(tmp_path / "ok.npy"), "--json"])
    assert good.exit_code == 0 and 0 < json.loads(good.output)["probability"] <= 1


def serve(request, kind):
    """(kind, a client of the session's image or sound model, its grid shape)."""
    folder = request.getfixturevalue("image_run") if kind == "image" else request.getfixturevalue("audio_model")[0]
    c = TestClient(create_app(folder), raise_server_exceptions=False)
    return kind, c, c.get("/model").json()["grid_shape"]


@pytest.fixture(params=["image", "audio"])
def client(request):
    return serve(request, request.param)


def test_the_server_refuses_grids_the_network_overflows_on_with_4xx(client):
    kind, c, shape = client
    good = np.zeros(shape).tolist()
    answer = c.post("/predict", json={"inputs": [good, overflowing(tuple(shape))[0].tolist()]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("Input 1 gives no answer") and "3e+38" in answer.json()["error"]
    assert c.post("/predict", json={"inputs": [good]}).status_code == 200  # and keeps serving


def test_deeply_nested_json_is_a_4xx(client):
    _, c, _ = client
    for body in ('{"inputs": ' + "[" * 5000 + "]" * 5000 + "}", '{"a": ' * 5000 + "1" + "}" * 5000,
                 '{"inputs": [' + "[" * 900 + "1" + "]" * 900 + "]}"):
        answer = c.post("/predict", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and set(answer.json()) == {"error"}, answer.text
    deep = c.post("/predict", content='{"inputs": ' + "[" * 5000 + "]" * 5000 + "}",
                  headers={"content-type": "application/json"})
    assert "nests JSON arrays or objects too deeply" in deep.json()["error"]
    huge_int = c.post("/predict", content='{"inputs": [[' + "1" + "0" * 400 + "]]}",
                      headers={"content-type": "application/json"})
    assert huge_int.status_code == 400, huge_int.text
    assert c.get("/health").status_code == 200


def test_head_is_answered_like_get(client):
    _, c, _ = client
    for path in ("/", "/health", "/model"):
        assert c.head(path).status_code == 200, path
        assert c.head(path).content == b""


def tiff(array):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="TIFF")
    return buffer.getvalue()


def wav(samples, rate=8000):
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


UPLOADS = {  # kind, file, what the answer says (advice for a person, not for a Python caller)
    "NaN TIFF": ("image", lambda: tiff(np.full((8, 8), np.nan, np.float32)),
                 "File 'x' cannot be used: some of its pixels are NaN or infinite. Send it as an 8-bit PNG or JPEG"),
    "float TIFF above 1": ("image", lambda: tiff(np.full((8, 8), 3e38, np.float32)),
                           "File 'x' cannot be used: it is a floating-point image with pixel values from 3e+38 to 3e+38, "
                           "outside [0, 1]. Send it as an 8-bit PNG or JPEG (or a 16-bit PNG), or a floating-point TIFF"),
    "32-bit TIFF": ("image", lambda: tiff((np.arange(64).reshape(8, 8) * 2300).astype(np.int32)),
                    "File 'x' cannot be used: it is a 32-bit image with pixel values from 0 to 144900."),
    "NaN WAV": ("audio", lambda: wav(np.full(2000, np.nan)),
                "File 'x' cannot be used: some of its samples are NaN or infinite. Send a clip with samples in [-1, 1]"),
    "infinite WAV": ("audio", lambda: wav(np.where(np.arange(2000) == 7, np.inf, 0.1)), "some of its samples are NaN or"),
    "NaN WAV at another rate": ("audio", lambda: wav(np.full(11025, np.nan), 44100),  # not resampled: librosa refuses NaN
                                "File 'x' cannot be used: some of its samples are NaN or infinite. Send a clip"),
    "3e38 WAV": ("audio", lambda: wav(np.full(2000, 3e38)),
                 "File 'x' cannot be used: its samples reach 3e+38, far outside [-1, 1], too loud to analyse."),
}


@pytest.mark.parametrize("case", UPLOADS)
def test_uploads_a_model_cannot_use_get_advice_for_a_person(request, case):
    kind, data, words = UPLOADS[case]
    _, c, _ = serve(request, kind)
    answer = c.post("/predict", files=[("files", ("x", data(), "application/octet-stream"))])
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert words in error
    for python in ("X[", "on_error", "np.", "scale=", "Clip 0"):
        assert python not in error
    assert c.get("/health").status_code == 200


def test_a_batched_request_the_network_overflows_on_fails_alone(image_run):
    import httpx

    application = create_app(image_run, batching=True)
    shape = tuple(application.state.predictor.grid_shape)

    async def main():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*(
                c.post("/predict", json={"inputs": [(overflowing(shape)[0] if i == 3 else np.zeros(shape)).tolist()]})
                for i in range(8)))

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [200] * 3 + [400] + [200] * 4
    assert "gives no answer" in answers[3].json()["error"]



# -- --overwrite deletes only a run's own files; export never replaces a file silently ----------------------------

DIGITS = """[data]
name = "digits"
test_fraction = 0.25

[estimator]
filters = 4
hidden = 8
max_epochs = 1
random_state = 0
"""


def tree(root):
    """Every path under ``root`` with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("name, content, why", [
    ("model/mine.txt", "my notes", "it holds no gridcnn model (no config.json of format gridcnn-model)"),
    ("model", "a file named model", "it is not a model folder"),
    ("history.csv", "day,steps\n1,9000\n", "it is not a training history (no epoch column first)"),
    ("errors.png", "not a picture", "it is not a PNG picture"),
    ("metrics.json", '{"steps": 1}', "it is not a run's metrics (no accuracy in it)"),
    ("recipe.toml", '[tool.black]\nline-length = 88\n', "it is not a gridcnn recipe (no [data] section)"),
    ("checkpoint.safetensors", "\0" * 100, "it is not a gridcnn checkpoint"),
])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, name, content, why, overwrite):
    (tmp_path / "d.toml").write_text(DIGITS)
    out = tmp_path / "mine"
    (out / name).parent.mkdir(parents=True)
    (out / name).write_text(content)
    (out / "notes.txt").write_text("keep me")
    before = tree(tmp_path)
    result = runner.invoke(app, ["fit", str(tmp_path / "d.toml"), "--out", str(out), *overwrite])
    assert result.exit_code == 2, result.output
    top = name.split("/")[0]
    assert (f"{out} holds {top}{'/' if (out / top).is_dir() else ''}, which gridcnn did not write: {why}. A fit writes "
            f"its own {top} there, so it leaves this folder alone (--overwrite deletes only a run's own files): choose "
            f"another --out, or move {out / top} away first.") in result.output.replace("\n", "")
    assert tree(tmp_path) == before


def test_overwrite_replaces_a_run_and_keeps_what_the_user_added(tmp_path):
    (tmp_path / "d.toml").write_text(DIGITS)
    out = tmp_path / "run"
    assert runner.invoke(app, ["fit", str(tmp_path / "d.toml"), "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["export", str(out)]).exit_code == 0
    (out / "model" / "mine.txt").write_text("mine")
    (out / "notes.txt").write_text("notes")
    (out / "model.json.bak").write_text("a copy I made")
    old = (out / "model" / "model.safetensors").stat().st_mtime_ns
    result = runner.invoke(app, ["fit", str(tmp_path / "d.toml"), "--out", str(out), "--overwrite",
                                 "--set", "estimator.max_epochs=2"])
    assert result.exit_code == 0, result.output
    assert (out / "model" / "mine.txt").read_text() == "mine" and (out / "notes.txt").read_text() == "notes"
    assert (out / "model.json.bak").read_text() == "a copy I made"
    assert not (out / "model.onnx").exists() and not (out / "model.json").exists()  # the old model's export: stale
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns != old
    assert len(gridcnn.load(out).history_) == 2


def test_export_never_replaces_a_file_silently(grid_model, tmp_path):
    _, folder = grid_model
    keep = tmp_path / "keep.onnx"
    keep.write_text("my own file")
    before = tree(tmp_path)
    result = runner.invoke(app, ["export", str(folder), "--out", str(keep)])
    assert result.exit_code == 2, result.output
    assert (f"{keep} exists; gridcnn export does not replace files unless asked. Pass --overwrite to replace it, or "
            "choose another --out.") in result.output.replace("\n", "")
    assert tree(tmp_path) == before

    (tmp_path / "data.json").write_text('{"mine": true}')  # the sidecar's name, but a user's file
    before = tree(tmp_path)
    result = runner.invoke(app, ["export", str(folder), "--out", str(tmp_path / "data.onnx"), "--overwrite"])
    assert result.exit_code == 2, result.output
    assert (f"{tmp_path / 'data.json'} exists and was not written by gridcnn export (it is not a gridcnn sidecar), but "
            "exporting to data.onnx writes its own data.json there.") in result.output.replace("\n", "")
    assert tree(tmp_path) == before

    result = runner.invoke(app, ["export", str(folder), "--out", str(keep), "--overwrite"])  # asked: replaced
    assert result.exit_code == 0, result.output
    assert keep.read_bytes() != b"my own file" and json.loads(keep.with_suffix(".json").read_text())["format"] == "gridcnn-onnx"
    again = runner.invoke(app, ["export", str(folder), "--out", str(keep)])
    assert again.exit_code == 2 and "Pass --overwrite to replace them (keep.onnx, keep.json)" in again.output.replace("\n", "")
    assert runner.invoke(app, ["export", str(folder), "--out", str(keep), "--overwrite"]).exit_code == 0


# -- serve: a port in use, a damaged metrics.json -----------------------------------------------------------------


def test_serve_on_a_port_in_use_is_one_line(grid_model):
    import socket

    _, folder = grid_model
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", str(folder), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert (f"Error: Cannot listen on 127.0.0.1:{port}: Address already in use (another server, or another gridcnn "
            "serve, uses that port). Choose another --port, or stop it.") in result.output.replace("\n", "")
    assert "Traceback" not in result.output and "INFO" not in result.output
    result = runner.invoke(app, ["serve", str(folder), "--host", "no-such-host.invalid"])
    assert result.exit_code == 2 and "Cannot listen on --host no-such-host.invalid" in result.output, result.output


@pytest.mark.parametrize("damage", [lambda t: t[:50], lambda t: "[1, 2]", lambda t: "\xff\xfe"])
def test_a_damaged_metrics_json_leaves_the_metrics_out_and_serves(image_run, tmp_path, caplog, damage):
    import logging
    import shutil

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    (run / "metrics.json").write_text(damage((image_run / "metrics.json").read_text()))
    with caplog.at_level(logging.WARNING, logger="gridcnn.serve"):
        c = TestClient(create_app(run), raise_server_exceptions=False)
    assert f"{run / 'metrics.json'} cannot be read (" in caplog.text and "/model leaves the test metrics out" in caplog.text
    described = c.get("/model").json()
    assert described["metrics"] is None and described["recipe"]["data"]["name"] == "digits"
    assert c.post("/predict", json={"inputs": [np.zeros((8, 8)).tolist()]}).status_code == 200
