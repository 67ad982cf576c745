"""Grad-CAM points where the evidence is: models trained where only one place carries the class must light it up.

Each check would fail by chance: a heatmap that is flat, random or fixed puts about a quarter of its mass in the right
quarter of the grid (a token weight peaks at the right token about 1 time in 16).
"""

import numpy as np
import pytest
import torch

from gridcnn import GridCNNClassifier
from gridcnn.backbone.explain import grad_cam

SIZE, PATCH = 16, 6
CORNERS = {"top-left": (0, 0), "top-right": (0, SIZE - PATCH), "bottom-left": (SIZE - PATCH, 0),
           "bottom-right": (SIZE - PATCH, SIZE - PATCH)}


def corner_grids(corner: str, n: int, seed: int):
    """Noise everywhere; in one corner a horizontal bar, a vertical bar or a diagonal (the class), anywhere in the
    patch. The other three corners hold only noise of the same brightness range."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.6, (n, 1, SIZE, SIZE)).astype(np.float32)
    y = np.arange(n) % 3
    r0, c0 = CORNERS[corner]
    for i, label in enumerate(y):
        patch = np.zeros((PATCH, PATCH), np.float32)
        k = rng.integers(1, PATCH - 1)
        if label == 0:
            patch[k, 1:-1] = 1
        elif label == 1:
            patch[1:-1, k] = 1
        else:
            np.fill_diagonal(patch[1:-1, 1:-1], 1)
        X[i, 0, r0:r0 + PATCH, c0:c0 + PATCH] = np.maximum(X[i, 0, r0:r0 + PATCH, c0:c0 + PATCH], patch)
    return X, y


def quarter_mass(heatmaps: np.ndarray, corner: str) -> np.ndarray:
    """Share of each heatmap's mass above its median (the even glow noise gets everywhere) in the quarter of the
    grid that holds ``corner``."""
    heatmaps = np.maximum(heatmaps - np.median(heatmaps, axis=(1, 2), keepdims=True), 0)
    half = SIZE // 2
    r, c = (0 if CORNERS[corner][0] == 0 else half), (0 if CORNERS[corner][1] == 0 else half)
    return heatmaps[:, r:r + half, c:c + half].sum((1, 2)) / np.maximum(heatmaps.sum((1, 2)), 1e-12)


@pytest.mark.parametrize("corner", list(CORNERS))
def test_grad_cam_lights_up_the_corner_that_carries_the_class(corner, one_thread):
    X, y = corner_grids(corner, 480, seed=1)
    Xt, yt = corner_grids(corner, 90, seed=2)
    est = GridCNNClassifier(filters=[8, 16], hidden=[32], max_epochs=12, augment_shift=0, random_state=0).fit(X, y)
    assert est.score(Xt, yt) > 0.9  # it learned the corner; otherwise there is nothing to explain
    explained = grad_cam(est.model_, Xt)
    np.testing.assert_array_equal(explained.targets, est.predict(Xt))  # the predicted class, by default
    np.testing.assert_allclose(explained.probabilities, est.predict_proba(Xt), atol=1e-5)
    # Grad-CAM keeps only positive evidence: a class the network recognises by what is absent (no bar of the
    # other kinds) gets an empty map. Most examples must have a map, and nearly every map must sit in the corner.
    speaks = explained.heatmaps.max((1, 2)) > 0
    share = quarter_mass(explained.heatmaps[speaks], corner)
    assert speaks.mean() >= 0.7
    assert np.mean(share > 0.6) >= 0.9, f"median share in the {corner} quarter: {np.median(share):.2f}"


def keyword_grids(n: int, seed: int, tokens: int = 16, dim: int = 16):
    """Texts as token x embedding grids: random word vectors, and at a random position one of two keywords that
    decides the class."""
    rng = np.random.default_rng(seed)
    keywords = np.random.default_rng(0).standard_normal((2, dim)).astype(np.float32) * 3
    X = rng.standard_normal((n, 1, tokens, dim)).astype(np.float32)
    y = np.arange(n) % 2
    where = rng.integers(0, tokens, n)
    X[np.arange(n), 0, where] = keywords[y]
    return X, y, where


def test_token_weights_of_a_three_branch_text_cnn_peak_at_the_keyword(one_thread):
    X, y, _ = keyword_grids(400, seed=1)
    Xt, yt, where = keyword_grids(80, seed=2)
    est = GridCNNClassifier(architecture="kim", filters=16, max_epochs=10, lr=0.01, modality="text",
                            random_state=0).fit(X, y)
    assert len(est.model_.branches) == 3 and est.score(Xt, yt) > 0.9
    explained = grad_cam(est.model_, Xt)
    assert explained.layers == ["branch1.block1", "branch2.block1", "branch3.block1"]
    assert np.mean(explained.row_weights.argmax(1) == where) >= 0.8  # by chance: 1 in 16
    assert explained.heatmaps.shape == (80, 16, 16) and explained.heatmaps.max() == 1


def test_any_class_can_be_explained_and_training_mode_is_kept():
    X, y = corner_grids("top-left", 60, seed=3)
    est = GridCNNClassifier(filters=[4], hidden=[8], max_epochs=1, random_state=0).fit(X, y)
    est.model_.train()
    grads = [None if p.grad is None else p.grad.clone() for p in est.model_.parameters()]
    explained = grad_cam(est.model_, X[:5], target=2)
    assert est.model_.training and explained.targets.tolist() == [2] * 5
    assert explained.heatmaps.shape == (5, SIZE, SIZE) and 0 <= explained.heatmaps.min()
    assert np.allclose(explained.heatmaps.reshape(5, -1).max(1), 1) or not explained.heatmaps.any()
    # Explaining leaves no gradient on the weights (a later optimiser step must not see one).
    for p, g in zip(est.model_.parameters(), grads):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    with torch.no_grad():  # the caller's no-grad mode does not stop it
        assert grad_cam(est.model_, X[:2]).heatmaps.shape == (2, SIZE, SIZE)


# -- served: /predict?explain=true ---------------------------------------------------------------------------------

fastapi = pytest.importorskip("fastapi", reason="the serve extra (pip install 'gridcnn[serve]') is not installed")


@pytest.fixture(scope="module")
def corner_client():
    from fastapi.testclient import TestClient

    from gridcnn.serve import create_app

    X, y = corner_grids("bottom-left", 480, seed=1)
    est = GridCNNClassifier(filters=[8, 16], hidden=[32], max_epochs=12, augment_shift=0, random_state=0).fit(X, y)
    return TestClient(create_app(est), raise_server_exceptions=False), est


def test_served_heatmaps_light_up_the_corner_and_leave_the_answer_as_it_was(corner_client):
    client, est = corner_client
    Xt, _ = corner_grids("bottom-left", 40, seed=5)
    plain = client.post("/predict", json={"inputs": Xt.tolist()}).json()
    body = client.post("/predict?explain=true", json={"inputs": Xt.tolist()}).json()
    assert body["predictions"] == plain["predictions"]
    explanations = body["explanations"]
    assert [e["class"] for e in explanations] == [p["label"] for p in body["predictions"]]
    heat = np.array([e["heatmap"] for e in explanations], dtype=float)
    assert heat.shape == (40, SIZE, SIZE) and heat.max() == 255
    assert explanations[0]["method"] == "grad-cam" and explanations[0]["layers"] == ["block2"]
    speaks = np.array([e["evidence"] for e in explanations])
    assert speaks.mean() >= 0.7 and np.mean(quarter_mass(heat[speaks], "bottom-left") > 0.6) >= 0.9


def test_served_explanation_for_a_class_the_user_picks(corner_client):
    client, est = corner_client
    Xt, _ = corner_grids("bottom-left", 6, seed=6)
    body = client.post("/predict?explain=true&target=1", json={"inputs": Xt.tolist()}).json()
    assert [e["class"] for e in body["explanations"]] == [1] * 6
    expected = grad_cam(est.model_, Xt, target=1).heatmaps
    np.testing.assert_allclose(np.array([e["heatmap"] for e in body["explanations"]]) / 255, expected, atol=0.5 / 255)


@pytest.mark.parametrize("query, status, words", [
    ("explain=true&target=7", 400, "Unknown class '7' to explain; this model's classes are ['0', '1', '2']"),
    ("explain=true&target=%202", 400, "Did you mean '2'?"),
    ("target=1", 400, "'target' names the class to explain: add explain=true"),
    ("explain=maybe", 422, "Invalid request"),
])
def test_bad_explain_requests_get_4xx_json(corner_client, query, status, words):
    client, _ = corner_client
    Xt, _ = corner_grids("bottom-left", 1, seed=7)
    response = client.post(f"/predict?{query}", json={"inputs": Xt.tolist()})
    assert response.status_code == status and set(response.json()) == {"error"}, response.text
    assert words in response.json()["error"]
    assert client.post("/predict", json={"inputs": Xt.tolist()}).status_code == 200  # still serving


def test_served_sound_heatmaps_cover_the_spectrogram(audio_model):
    from fastapi.testclient import TestClient

    from gridcnn.serve import create_app

    folder, paths, _ = audio_model
    client = TestClient(create_app(folder))
    files = [("files", (p.split("/")[-1], open(p, "rb").read(), "audio/wav")) for p in paths[:2]]
    body = client.post("/predict?explain=true&feature_maps=true", files=files).json()
    grid = body["feature_maps"][0]["shape"]  # the input grid as the network read it: [1, H, W]
    assert [e["shape"] for e in body["explanations"]] == [grid[1:]] * 2


@pytest.mark.slow  # MiniLM's token table
def test_served_text_weights_name_the_words_that_decide(text_model):
    from fastapi.testclient import TestClient

    from conftest import WORDS
    from gridcnn.serve import create_app

    folder, _, _ = text_model
    client = TestClient(create_app(folder))
    texts = [f"the film was {w} , i thought" for w in WORDS["pos"] + WORDS["neg"]]
    body = client.post("/predict?explain=true", json={"inputs": texts}).json()
    correct = strongest_is_word = 0
    for text, p, e in zip(texts, body["predictions"], body["explanations"]):
        assert e["method"] == "gradient x input" and e["tokens"][0] == "[CLS]" and len(e["tokens"]) == len(
            e["token_weights"])
        if p["label"] == ("pos" if text.split()[3] in WORDS["pos"] else "neg"):
            correct += 1
            top = e["tokens"][int(np.argmax(e["token_weights"]))]
            strongest_is_word += top.lstrip("#") in text.split()[3]  # the sentiment word (or one of its pieces)
    assert correct >= 9 and strongest_is_word >= 0.8 * correct


def test_the_page_has_an_icon_and_the_model_a_name(corner_client):
    client, _ = corner_client
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/model").json()["name"] == "GridCNNClassifier"  # a fitted model, not a folder
