"""ONNX export: the graph (preprocessing included) gives onnxruntime the probabilities torch gives, per modality."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.cli.commands import app

ort = pytest.importorskip("onnxruntime", reason="the export extra (pip install 'gridcnn[export]') is not installed")
from gridcnn.export.onnx import export_onnx  # noqa: E402

runner = CliRunner()


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_parity(torch_proba, onnx_proba, classes):
    """The issue's bar: the same probabilities within 1e-5 and the same labels."""
    assert onnx_proba.shape == torch_proba.shape
    assert np.abs(onnx_proba - torch_proba).max() <= 1e-5
    np.testing.assert_array_equal(np.asarray(classes)[onnx_proba.argmax(1)], np.asarray(classes)[torch_proba.argmax(1)])


def digits_uint8():
    from sklearn.datasets import load_digits

    images = load_digits().images  # 0..16
    return np.round(images * 255 / 16).astype(np.uint8)


def test_image_graph_scales_pixels_and_matches_torch(image_run, tmp_path):
    result = runner.invoke(app, ["export", str(image_run), "--out", str(tmp_path / "digits.onnx")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "digits.json").read_text())
    assert meta["input"] == {"name": "image", "dtype": "uint8", "shape": ["batch", 8, 8, 1]}
    assert meta["opset"] == 13 and meta["input_kind"] == "image" and meta["grid_shape"] == [1, 8, 8]
    assert "divide by 255" in " ".join(meta["preprocessing"]["in_graph"])
    model = gridcnn.load(image_run)
    X = digits_uint8()[-360:]
    proba = session(tmp_path / "digits.onnx").run(None, {"image": X[..., None]})[0]
    assert_parity(model.predict_proba(X), proba, meta["classes"])
    assert (np.asarray(meta["classes"])[proba.argmax(1)] == load_digits_target()[-360:]).mean() > 0.8


def load_digits_target():
    from sklearn.datasets import load_digits

    return load_digits().target


def test_batch_axis_is_dynamic(image_run, tmp_path):
    path, _ = export_onnx(gridcnn.load(image_run), tmp_path / "m.onnx")
    s = session(path)
    assert s.get_inputs()[0].shape[0] == "batch"
    for n in (1, 3, 64):
        assert s.run(None, {"image": digits_uint8()[:n, ..., None]})[0].shape == (n, 10)


def test_audio_graph_computes_log_mel_from_waveforms(audio_model, tmp_path):
    import soundfile as sf

    folder, paths, labels = audio_model
    onnx_path, json_path = export_onnx(folder, tmp_path / "tones.onnx")
    meta = json.loads(json_path.read_text())
    assert meta["opset"] == 17 and meta["input"]["shape"] == ["batch", "length"]
    assert any("STFT" in step for step in meta["preprocessing"]["in_graph"])
    proto = __import__("onnx").load(str(onnx_path))
    assert "STFT" in {node.op_type for node in proto.graph.node}  # the front end is in the graph, not outside
    model = gridcnn.load(folder)
    # Clips are 0.3 s and the model reads 0.25 s: the graph crops, as the adapter does; shorter clips are padded.
    waves = [sf.read(p, dtype="float32")[0] for p in paths]
    s = session(onnx_path)
    rate = np.array([8000], dtype=np.int64)
    proba = np.concatenate([s.run(None, {"waveform": w[None], "sample_rate": rate})[0] for w in waves])
    assert_parity(model.predict_proba(paths), proba, meta["classes"])
    short = waves[0][:1000]
    assert np.abs(s.run(None, {"waveform": short[None], "sample_rate": rate})[0] - model.predict_proba([short])).max() <= 1e-5


def test_audio_graph_refuses_a_clip_at_another_sample_rate(audio_model, tmp_path):
    """Samples at 44.1 kHz read as 8 kHz are a different sound (a 440 Hz tone becomes 80 Hz): the graph must refuse
    them, not answer. The sidecar says which rate it takes; resampled first, the clip gets the model's answer."""
    import librosa
    import soundfile as sf

    folder, paths, _ = audio_model
    result = runner.invoke(app, ["export", str(folder), "--out", str(tmp_path / "tones.onnx")])
    assert result.exit_code == 0, result.output
    assert ("The graph takes waveform float32 ['batch', 'length']; sample_rate int64 [1] = 8000; any other "
            "sample_rate is refused") in result.output.replace("\n", " ")
    meta = json.loads((tmp_path / "tones.json").read_text())
    assert meta["format_version"] == 2 and meta["sample_rate"]["hz"] == 8000
    assert "refused" in meta["sample_rate"]["other_rates"]
    assert meta["inputs"] == [
        {"name": "waveform", "dtype": "float32", "shape": ["batch", "length"]},
        {"name": "sample_rate", "dtype": "int64", "shape": [1], "value": 8000,
         "otherwise": "refused: onnxruntime raises, naming the node sample_rate_must_be_8000"}]
    s = session(tmp_path / "tones.onnx")
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [
        ("waveform", "tensor(float)", ["batch", "length"]), ("sample_rate", "tensor(int64)", [1])]
    model = gridcnn.load(folder)
    clip_8k = sf.read(paths[0], dtype="float32")[0]
    clip_44k = librosa.resample(clip_8k, orig_sr=8000, target_sr=44100, res_type="soxr_hq")
    wav_44k = tmp_path / "clip44k.wav"
    sf.write(wav_44k, clip_44k, 44100, subtype="FLOAT")
    for wrong in (44100, 16000, 7999):
        with pytest.raises(Exception, match="sample_rate_must_be_8000"):
            s.run(None, {"waveform": clip_44k[None], "sample_rate": np.array([wrong], np.int64)})
    with pytest.raises(Exception, match="sample_rate"):  # leaving the rate out is refused too
        s.run(None, {"waveform": clip_44k[None]})
    # The right rate: the graph's probabilities are the model's, for the clip at 8 kHz and for the 44.1 kHz file
    # resampled as the sidecar says (the adapter resamples the file the same way).
    rate = np.array([meta["sample_rate"]["hz"]], np.int64)
    assert_parity(model.predict_proba([clip_8k]), s.run(None, {"waveform": clip_8k[None], "sample_rate": rate})[0],
                  meta["classes"])
    back = librosa.resample(sf.read(wav_44k, dtype="float32")[0], orig_sr=44100, target_sr=8000)
    assert_parity(model.predict_proba([str(wav_44k)]), s.run(None, {"waveform": back[None], "sample_rate": rate})[0],
                  meta["classes"])
    # The server resamples the same upload itself: its answer is the graph's for the resampled clip.
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gridcnn.serve import create_app

    answer = TestClient(create_app(folder)).post("/predict", files=[("files", ("clip44k.wav", wav_44k.read_bytes(),
                                                                               "audio/wav"))])
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"][0]["probabilities"]
    graph = s.run(None, {"waveform": back[None], "sample_rate": rate})[0][0]
    assert max(abs(served[str(c)] - p) for c, p in zip(meta["classes"], graph)) <= 1e-5 + 1e-6  # 6 decimals
    # What the refusal prevents: the 44.1 kHz samples fed as if they were 8 kHz give another distribution.
    misread = s.run(None, {"waveform": clip_44k[None], "sample_rate": rate})[0]
    assert np.abs(misread - model.predict_proba([clip_8k])).max() > 0.05


def test_readme_lines_run_a_wav_file_with_onnxruntime_and_numpy_alone(audio_model, tmp_path):
    import wave

    import soundfile as sf

    folder, paths, _ = audio_model
    onnx_path, json_path = export_onnx(folder, tmp_path / "model.onnx")
    model = gridcnn.load(folder)
    for file_rate in (8000, 22050):  # the model's rate, and one the README's lines resample from
        clip = tmp_path / f"clip{file_rate}.wav"
        x8k = sf.read(paths[1], dtype="float32")[0]
        sf.write(clip, x8k if file_rate == 8000 else __import__("librosa").resample(x8k, orig_sr=8000,
                                                                                    target_sr=file_rate),
                 file_rate, subtype="PCM_16")
        # The README's lines:
        meta = json.load(open(json_path))
        with wave.open(str(clip)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
            rate = w.getframerate()
        if rate != meta["sample_rate"]["hz"]:  # the graph refuses other rates: resample first
            import librosa

            x, rate = librosa.resample(x, orig_sr=rate, target_sr=meta["sample_rate"]["hz"]), meta["sample_rate"]["hz"]
        feeds = {"waveform": x[None], "sample_rate": np.array([rate], dtype=np.int64)}
        proba = ort.InferenceSession(str(onnx_path)).run(None, feeds)[0]
        print(meta["classes"][proba.argmax()])

        assert meta["classes"][proba.argmax()] == model.predict([str(clip)])[0]
        assert np.abs(proba - model.predict_proba([str(clip)])).max() <= 1e-5


@pytest.mark.slow  # MiniLM's 30,522 x 384 token table goes into the graph: a 47 MB export
def test_text_graph_looks_up_tokens_from_the_shipped_tokenizer(text_model, tmp_path):
    from tokenizers import Tokenizer

    folder, texts, labels = text_model
    onnx_path, json_path = export_onnx(folder, tmp_path / "reviews.onnx")
    meta = json.loads(json_path.read_text())
    assert meta["input"] == {"name": "token_ids", "dtype": "int64", "shape": ["batch", "length"]}
    assert meta["files"] == ["tokenizer.json"] and "tokenize" in meta["preprocessing"]["outside_graph"][0]
    model = gridcnn.load(folder)
    max_tokens = model.steps[0][1].max_tokens_
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))  # truncates to max_tokens, never pads
    new = ["the film was " * 20 + "superb", "the film was superb and funny .", "the film was dull and tedious, really",
           "awful", *texts[:20]]
    ids = [tokenizer.encode(t).ids for t in new]
    assert len(ids[0]) == max_tokens and ids[0][-1] == 102  # cut to max_tokens with [SEP] last, as the adapter does
    batch = np.full((len(ids), max(map(len, ids))), -1, dtype=np.int64)
    for i, row in enumerate(ids):
        batch[i, : len(row)] = row
    proba = session(onnx_path).run(None, {"token_ids": batch})[0]
    assert_parity(model.predict_proba(new), proba, meta["classes"])


def test_sequence_and_bare_grid_models_export(tmp_path):
    from sklearn.pipeline import make_pipeline

    from gridcnn.adapters import SequenceGrid

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2, 24)).astype(np.float32) * 3 + 1
    y = np.arange(40) % 2
    X[y == 1, 0, 8:12] += 4
    seq = make_pipeline(SequenceGrid(), GridCNNClassifier(filters=4, kernel_size=3, hidden=8, max_epochs=2,
                                                          random_state=0)).fit(X, y)
    path, _ = export_onnx(seq, tmp_path / "seq.onnx")
    assert_parity(seq.predict_proba(X), session(path).run(None, {"signal": X})[0], [0, 1])
    grids = rng.random((30, 1, 6, 6)).astype(np.float32)
    bare = GridCNNClassifier(filters=4, hidden=8, max_epochs=1, random_state=0).fit(grids, np.arange(30) % 3)
    path, json_path = export_onnx(bare, tmp_path / "bare.onnx")
    assert json.loads(json_path.read_text())["input"]["name"] == "grid"
    assert_parity(bare.predict_proba(grids), session(path).run(None, {"grid": grids})[0], [0, 1, 2])


def test_export_of_a_folder_without_a_model_says_what_is_missing(tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path} is not a gridcnn model folder: expected config.json and model.safetensors" in result.output
    assert "Traceback" not in result.output


def test_unknown_format_suggests_onnx(image_run):
    result = runner.invoke(app, ["export", str(image_run), "--format", "onx"])
    assert result.exit_code == 2
    assert "Unknown export format 'onx'. Did you mean 'onnx'? Formats: onnx." in result.output


def test_missing_extra_says_how_to_install(image_run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    result = runner.invoke(app, ["export", str(image_run)])
    assert result.exit_code == 2
    assert "needs the packages onnx and onnxruntime (onnxruntime is missing)" in result.output
    assert "pip install 'gridcnn[export]'" in result.output


def test_contextual_minilm_is_refused_with_the_alternative():
    from gridcnn.adapters import EmbeddingGrid
    from gridcnn.export.onnx import frontend

    adapter = EmbeddingGrid(embedding="minilm", max_tokens=8)
    adapter.max_tokens_, adapter.embedding_dim_ = 8, 384  # fitted as far as the export reads it
    with pytest.raises(GridCNNError, match="gridcnn exports static lookups only. Train with embedding='minilm-static'"):
        frontend(adapter, GridCNNClassifier())
