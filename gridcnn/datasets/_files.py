"""Data given by path rather than by name: a class-per-folder directory, an .npz of arrays, or a CSV/TSV/Parquet table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..exceptions import GridCNNError


LABEL_NAMES = ("label", "labels", "target", "class", "y", "category", "sentiment", "outcome")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
PARQUET_INSTALL = 'pip install pyarrow (or: pip install "gridcnn[parquet]")'


def read_table(path):
    """A CSV, TSV or Parquet file as a pandas DataFrame (Parquet through pyarrow, an optional extra)."""
    import pandas as pd

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise GridCNNError(f"{p} is a Parquet file, which needs pyarrow. Install it: {PARQUET_INSTALL}.") from None
        return pd.read_parquet(p)
    return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")


def table_columns(path):
    """An empty DataFrame with the table's columns, read from its header only (to check --target cheaply)."""
    import pandas as pd

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise GridCNNError(f"{p} is a Parquet file, which needs pyarrow. Install it: {PARQUET_INSTALL}.") from None
        return pd.DataFrame(columns=pq.read_schema(p).names)
    return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", nrows=0)


def find_target(frame, path, target=None) -> str:
    """The label column: ``target`` (checked), else the one column named like a label (LABEL_NAMES)."""
    from .._registry import did_you_mean

    columns = [str(c) for c in frame.columns]
    if target is not None:
        if target not in frame.columns:
            raise GridCNNError(f"{path} has no column {target!r}.{did_you_mean(target, columns)} "
                               f"Columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''}.")
        return target
    lower = {c.lower(): c for c in columns}
    found = next((lower[n] for n in LABEL_NAMES if n in lower), None)
    if found is None:
        raise GridCNNError(
            f"{path}: which column holds the labels? None is named like one ({', '.join(LABEL_NAMES[:5])}, ...). "
            f"Pass --target COLUMN (target=COLUMN in Python); columns: {', '.join(columns[:20])}"
            f"{', ...' if len(columns) > 20 else ''}."
        )
    return found


def text_columns(frame) -> list:
    """Columns holding text (strings), in the frame's order."""
    import pandas as pd

    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def load_path(path, split: str | None = None, target: str | None = None):
    """Load ``(X, y)`` from a folder of class subfolders (images or sound files), an .npz, or a table.

    Parameters
    ----------
    path : str or Path
        A folder ``<class>/<file>`` (or ``train/<class>/<file>`` + ``test/<class>/<file>``, read by ``split``);
        an .npz with ``X`` and ``y`` (or ``X_<split>`` and ``y_<split>``); or a CSV, TSV or Parquet table with a
        header whose ``target`` column holds the labels and whose other columns are numbers, or one text column.
    split : str, default=None
        For a folder with ``train/`` and ``test/`` or an .npz holding ``X_train``, ``X_test``...: which one.
    target : str, default=None
        The label column of a table (default: the column named like a label: "label", "target", "class", ...).

    Returns
    -------
    X : list of str or ndarray
        File paths for folders, texts for a table's text column, arrays otherwise.
    y : ndarray
        Labels.
    """
    from ..adapters.image import IMAGE_EXTENSIONS
    from .._audio_io import AUDIO_EXTENSIONS
    from ._folders import list_class_folder

    p = Path(path)
    if p.is_dir():
        if split is not None and (p / split).is_dir():
            p = p / split
        paths, labels = list_class_folder(p, (*IMAGE_EXTENSIONS, *AUDIO_EXTENSIONS))
        kinds = {Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in paths}
        if len(kinds) > 1:
            raise GridCNNError(f"{p} mixes image and sound files; keep one kind per data folder.")
        return paths, np.asarray(labels)
    if not p.is_file():
        raise GridCNNError(f"Data path {str(p)!r} does not exist. Expected a class folder, an .npz or a .csv file.")
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            xk, yk = ("X", "y") if split is None else (f"X_{split}", f"y_{split}")
            if xk not in z or yk not in z:
                raise GridCNNError(f"{p} has no arrays {xk!r} and {yk!r}; it holds {sorted(z.files)}.")
            return z[xk], z[yk]
    if p.suffix.lower() in TABLE_SUFFIXES:
        frame = read_table(p)
        target = find_target(frame, p, target)
        y = frame.pop(target).to_numpy()
        text = text_columns(frame)
        if text and len(frame.columns) == 1:  # one text column: the texts themselves are X
            return frame[text[0]].fillna("").astype(str).tolist(), y
        if text:
            raise GridCNNError(f"{p}: columns {text[:5]} are not numeric; a CNN needs numbers in every cell "
                               "(or a single text column).")
        return frame.to_numpy(np.float32), y
    raise GridCNNError(f"Cannot read {p}: expected a class folder, an .npz, or a .csv, .tsv or .parquet file; got "
                       f"a {p.suffix or 'file without suffix'}.")
