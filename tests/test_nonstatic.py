"""Kim's non-static text CNN: EmbeddingGrid(output="ids") feeds token ids to a GridCNNClassifier(embedding=...)
whose first layer is the pretrained table, trained with the network."""

import json

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

import gridcnn
from gridcnn import GridCNNClassifier
from gridcnn.training.loop import Hook
from gridcnn.adapters.text.adapter import EmbeddingGrid, embedding_table
from gridcnn.modelfile.persistence import save

VOCABULARY = ["good", "bad", "film", "the", "great", "awful", "was", "and", "fun", "dull", "unused"]
MATRIX = np.random.default_rng(0).standard_normal((len(VOCABULARY), 6)).astype(np.float32)
TEXTS = ["the film was good and fun", "the film was bad and dull", "great fun", "awful , dull film",
         "good film", "bad film"] * 4
LABELS = np.array([1, 0, 1, 0, 1, 0] * 4)


def kim(**kw):
    return GridCNNClassifier(**{"architecture": "kim", "filters": 4, "kernel_size": (2, "full"), "max_epochs": 3,
                                "lr": 0.01, "random_state": 0, "device": "cpu", **kw})


class FirstWeights(Hook):
    """Keeps a copy of the token table as the fit starts, before any step."""

    def on_fit_start(self, fit):
        self.table = fit.model.embed.embedding.weight.detach().clone()


def test_ids_number_the_rows_the_vectors_come_from():
    ids = EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids").fit_transform(TEXTS[:2])
    vectors = EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8).fit_transform(TEXTS[:2])
    assert ids.shape == (2, 1, 8, 1) and ids.dtype == np.float32
    # Row 0 is padding (and the unknown ","), row i + 1 the vocabulary's row i: the vectors grid, looked up.
    table = np.concatenate([np.zeros((1, 6), np.float32), embedding_table((VOCABULARY, MATRIX))])
    np.testing.assert_array_equal(table[ids[:, 0, :, 0].astype(int)], vectors[:, 0])


def test_network_starts_from_the_table_and_trains_it_while_static_stays_untouched():
    static = make_pipeline(EmbeddingGrid(embedding="minilm-static"), kim()).fit(TEXTS, LABELS)
    before = static.predict_proba(TEXTS)
    table = embedding_table("minilm-static").copy()
    hook = FirstWeights()
    model = make_pipeline(EmbeddingGrid(embedding="minilm-static", output="ids"),
                          kim(embedding="minilm-static", callbacks=[hook])).fit(TEXTS, LABELS)
    start, end = hook.table, model[-1].model_.embed.embedding.weight.detach()
    assert torch.equal(start[1:], torch.from_numpy(table)) and not start[0].any()  # row 0: padding, zeros
    seen = np.unique(model[0].transform(TEXTS)).astype(int)
    unseen = np.setdiff1d(np.arange(len(start)), seen)
    assert not torch.equal(end[seen[1:]], start[seen[1:]])  # the training texts' tokens were fine-tuned ...
    assert torch.equal(end[unseen], start[unseen]) and not end[0].any()  # ... the others and padding were not
    # The static path: no table in its network, the shared pretrained table unchanged, the same predictions.
    assert "embed" not in dict(static[-1].model_.named_children()) and static[-1].spec_.embedding is None
    np.testing.assert_array_equal(embedding_table("minilm-static"), table)
    np.testing.assert_array_equal(static.predict_proba(TEXTS), before)


def test_before_training_the_network_computes_what_the_static_one_does():
    ids = EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids").fit(TEXTS)
    vectors = EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8).fit(TEXTS)
    nonstatic = kim(embedding=(VOCABULARY, MATRIX))._resolve_spec((1, 8, 1))
    plain = kim()._resolve_spec((1, 8, 6))
    torch.manual_seed(0)
    a = nonstatic.build((1, 8, 1), 2)
    torch.manual_seed(0)
    b = plain.build((1, 8, 6), 2)
    gridcnn.adapters.text.token_table.load_pretrained(a, (VOCABULARY, MATRIX))
    with torch.no_grad():
        got = a.eval()(torch.from_numpy(ids.transform(TEXTS)))
        want = b.eval()(torch.from_numpy(vectors.transform(TEXTS)))
    assert torch.equal(got, want)  # same initial convolutions: the table draws no random numbers


def test_save_and_load_keep_the_fine_tuned_table(tmp_path):
    model = make_pipeline(EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids"),
                          kim(embedding=(VOCABULARY, MATRIX))).fit(TEXTS, LABELS)
    save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["estimator"]["spec"]["embedding"] == [len(VOCABULARY) + 1, 6]
    again = gridcnn.load(tmp_path / "m", device="cpu")
    new = ["good fun", "dull , bad", "never seen words"]
    np.testing.assert_array_equal(again.predict_proba(TEXTS + new), model.predict_proba(TEXTS + new))
    assert torch.equal(again[-1].model_.embed.embedding.weight, model[-1].model_.embed.embedding.weight)


def test_static_model_files_do_not_change(tmp_path):
    model = make_pipeline(EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8), kim()).fit(TEXTS, LABELS)
    save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "embedding" not in config["estimator"]["spec"]  # the spec a static network always wrote
    from safetensors.numpy import load_file

    assert not any("embed" in k for k in load_file(tmp_path / "m" / "model.safetensors"))


def test_onnx_export_takes_token_ids_and_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from gridcnn.export.onnx import export_onnx

    model = make_pipeline(EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids"),
                          kim(embedding=(VOCABULARY, MATRIX))).fit(TEXTS, LABELS)
    onnx_path, json_path = export_onnx(model, tmp_path / "text.onnx")
    meta = json.loads(json_path.read_text())
    assert meta["input"] == {"name": "token_ids", "dtype": "int64", "shape": ["batch", "length"]}
    assert "network's own 6-wide table" in meta["preprocessing"]["in_graph"][2]
    vocab = json.loads((tmp_path / "vocabulary.json").read_text())
    texts = ["the film was good and fun", "awful , dull film", "good " * 12, "great"]
    rows = [[vocab.get(w, -1) for w in t.split()][:8] for t in texts]  # what the sidecar tells a caller to do
    batch = np.full((len(rows), max(map(len, rows))), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"token_ids": batch})[0]
    want = model.predict_proba(texts)
    assert np.abs(got - want).max() <= 1e-5
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))


def test_served_text_model_answers(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gridcnn.serve import create_app

    model = make_pipeline(EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids"),
                          kim(embedding=(VOCABULARY, MATRIX))).fit(TEXTS, LABELS)
    save(model, tmp_path / "m")
    client = TestClient(create_app(gridcnn.load(tmp_path / "m", device="cpu")))
    answer = client.post("/predict", json={"inputs": ["good fun", "bad , dull"]})
    assert answer.status_code == 200, answer.text
    want = model.predict_proba(["good fun", "bad , dull"])
    got = [[p["probabilities"][str(c)] for c in (0, 1)] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_recipe_turns_it_on_with_the_adapters_output():
    from gridcnn.workflow.recipes import Recipe, build_pipeline

    recipe = Recipe(data={"name": "movie_reviews"}, adapter={"name": "embedding", "embedding": "minilm-static",
                                                             "output": "ids"}, estimator={"architecture": "kim"})
    pipe = build_pipeline(recipe)
    assert pipe[-1].embedding == "minilm-static" and pipe[-1].modality == "text"


def test_resume_equals_an_uninterrupted_fit(tmp_path):
    # The table's optimiser group (its own rate, no decay) and its dropout survive a checkpoint bit for bit.
    ids = EmbeddingGrid(embedding=(VOCABULARY, MATRIX), max_tokens=8, output="ids").fit_transform(TEXTS)
    params = dict(embedding=(VOCABULARY, MATRIX), max_epochs=4, lr_schedule="onecycle", batch_size=8)
    whole = kim(**params).fit(ids, LABELS)

    def stop_after_2(est, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        kim(**params, checkpoint=ckpt, callbacks=[stop_after_2]).fit(ids, LABELS)
    resumed = kim(**params, checkpoint=ckpt).fit(ids, LABELS, resume_from=ckpt)
    a, b = resumed.model_.state_dict(), whole.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [g["lr"] for g in resumed.optimizer_.param_groups] == [g["lr"] for g in whole.optimizer_.param_groups]


@pytest.mark.slow
def test_text_recipe_reaches_kims_non_static_number(one_thread):
    from gridcnn.workflow.recipes import build_pipeline, load_split, read_recipe

    recipe = read_recipe("text")
    X_train, y_train, X_test, y_test = load_split(recipe)
    model = build_pipeline(recipe).fit(X_train, y_train)
    # Seeds 0-4 of the shipped recipe (400 maps): 81.30-81.95%, mean 81.61% (seed 0, this one: 81.89%); with Kim's
    # 100 maps 80.72-80.95%; static 80.07-80.72% over seeds 0-5.
    assert model.score(X_test, y_test) >= 0.81  # above every seed of the 100-map recipe
