"""What `gridcnn predict` feeds a model: file and folder arguments expanded into the inputs its adapter reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.exceptions import GridCNNError


def looks_like_path(item: str) -> bool:
    """An argument that names a file rather than being a text: a .txt suffix, or a path separator and no spaces."""
    return item.endswith(".txt") or (any(sep in item for sep in ("/", "\\")) and " " not in item.strip())


def gather_inputs(model, inputs: list[str]):
    """Return ``(names, X)``: one name per input row and X in the form the model's first step expects.

    Sound and image models take file paths (folders are searched recursively); text models take each argument
    as a text, or each line of a .txt file; models without an adapter take grids from .npy files.
    """
    adapters, est = split_pipeline(model)
    adapter = adapters[0] if adapters else None  # what it reads is asked of it (GridAdapter's capabilities)
    if getattr(adapter, "text_inputs", False):
        names, texts = [], []
        for item in inputs:
            p = Path(item)
            if p.suffix == ".txt" and p.is_file():
                lines = [l for l in p.read_text().splitlines() if l.strip()]
                names += [f"{p}:{i + 1}" for i in range(len(lines))]
                texts += lines
            elif looks_like_path(item) and not p.exists():
                raise GridCNNError(
                    f"Input {item!r} looks like a file path, but there is no such file. Give an existing .txt file "
                    "(one text per line), or quote the text itself (a text with '/' in it and no spaces reads as a "
                    "path)."
                )
            elif p.is_dir():
                raise GridCNNError(f"Input {item!r} is a folder; a text model takes texts or .txt files.")
            else:
                names.append(item)
                texts.append(item)
        return names, texts
    if adapter is not None and adapter.reads_files():
        exts = adapter.file_extensions
        files = []
        for item in inputs:
            p = Path(item)
            if p.is_dir():
                found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in exts and f.is_file())
                if not found:
                    raise GridCNNError(f"Folder {p} holds no file ending in {', '.join(exts)}.")
                files += found
            elif p.is_file():
                files.append(str(p))
            else:
                raise GridCNNError(f"Input {item!r} does not exist. Give files or folders of {adapter.registry_name} inputs.")
        return files, files
    names, arrays = [], []
    for item in inputs:
        p = Path(item)
        if p.suffix != ".npy" or not p.is_file():
            raise GridCNNError(f"Input {item!r}: this model takes grids from .npy files (one grid or a stack of them).")
        a = np.load(p, allow_pickle=False)
        single = a.shape == tuple(est.input_shape_) or a.ndim == len(est.input_shape_) - 1
        a = a[None] if single else a
        names += [str(p)] if single else [f"{p}[{i}]" for i in range(len(a))]
        arrays.append(a)
    return names, np.concatenate(arrays)


def check_numbers(names: list[str], X) -> None:
    """Grids read from .npy files hold numbers float32 can hold: NaN, infinity or 1e300 are named with their file."""
    if not isinstance(X, np.ndarray):
        return  # texts or file paths: their adapter checks what it decodes
    if X.dtype.kind not in "biuf":
        raise GridCNNError(f"Input {names[0]!r} holds {X.dtype} values; grids are arrays of numbers (np.save a float array).")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X) | (np.abs(X) > np.finfo(np.float32).max)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GridCNNError(
                f"Input {names[where[0]]!r} holds {float(X[where])!r} at {list(where[1:])} ({int(bad[where[0]].sum())} "
                "such value(s)): a grid's cells must be finite numbers float32 can hold (|x| < 3.4e38). Replace them "
                "(np.nan_to_num) or leave that grid out."
            )


def name_rows(exc: GridCNNError, names: list[str]) -> GridCNNError:
    """``exc`` with the inputs it numbers (its ``rows``) named as the command line got them: files, not row numbers."""
    rows = getattr(exc, "rows", None)
    text = str(exc)
    if not rows or not text.startswith("Input ") or " gives no answer" not in text:
        return exc
    more = [names[r] for r in rows[1:]]
    head = f"Input {names[rows[0]]!r}" + (f" (and {len(more)} more: {', '.join(more[:3])}{', ...' if len(more) > 3 else ''})"
                                          if more else "")
    return GridCNNError(head + text[text.index(" gives no answer"):])


def for_person(exc: GridCNNError, adapter, names: list[str]) -> GridCNNError:
    """``exc`` worded for the person at the command line: a file the adapter (of a model reading files) refused is
    named with what is wrong with it and what file to give instead, as `gridcnn serve` tells the person uploading it
    (adapters.file_advice), not with the adapter's advice for a Python caller (``X[0]``, ``on_error='skip'``)."""
    path = getattr(exc, "path", None)
    if path is not None and adapter is not None and adapter.upload_kind:
        from gridcnn.adapters.file_advice import explain_file

        try:
            message = explain_file(adapter, path, verb="Save")
        except OSError:  # gone or unreadable since: the adapter's own message says so
            message = None
        if message:
            return GridCNNError(f"{message} Or leave that file out.")
    return name_rows(exc, names)


def check_known_labels(y, classes, where) -> None:
    """Refuse data none of whose labels is a class of the model: every row would count as wrong, so the metrics
    would only say that the data (or its --target) is not the model's. Names both label sets, and the likely slip."""
    y, classes = np.asarray(y), np.asarray(classes)
    labels = np.unique(y.astype(str) if y.dtype == object else y)
    numbers = {"b": "bools", "i": "numbers", "u": "numbers", "f": "numbers", "U": "text", "S": "bytes"}
    kind, model_kind = numbers.get(labels.dtype.kind, "objects"), numbers.get(classes.dtype.kind, "objects")
    if not len(labels) or (kind == model_kind and np.isin(labels, classes).any()):
        return
    if kind != model_kind and set(map(str, labels.tolist())) & set(map(str, classes.tolist())):
        hint = (f" They match as text: the data's labels are {kind}, the model's are {model_kind}; give the labels "
                "as the model was trained on them.")
    else:
        hint = " Is it the right data, and the right label column (--target)?"
    raise GridCNNError(f"{where}: none of its labels is a class of this model: it has {_few(labels)}, the model "
                       f"knows {_few(classes)}.{hint}")


def _few(values) -> str:
    values = np.asarray(values).tolist()
    return f"{values}" if len(values) <= 5 else f"{values[:5]} and {len(values) - 5} more"
