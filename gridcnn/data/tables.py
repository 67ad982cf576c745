"""Tables (CSV, TSV, Parquet): one row per sample, the label column taken out by the one label rule.

Every table format is read into a pandas DataFrame and then goes through `table_data`, so the label column, the
checks of its cells and the notes ``gridcnn check`` shows are the same whatever the format.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from gridcnn.data.datafile import DataFile
from gridcnn.data.file_checks import check_cells, check_columns, check_table
from gridcnn.data.labels import label_name
from gridcnn.exceptions import GridCNNError

PARQUET_INSTALL = 'pip install pyarrow (or: pip install "gridcnn[parquet]")'
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")


def _sep(path) -> str:
    return "\t" if os.fspath(path).lower().endswith(".tsv") else ","


def table_columns(path) -> list:
    """The column names of a table, read from its header alone (duplicates refused); what a label check needs."""
    path = os.fspath(path)
    if path.lower().endswith(".parquet"):
        pq = _parquet(path)
        try:
            names = pq.read_schema(path).names
        except (OSError, ValueError) as exc:
            raise GridCNNError(f"{path!r} is not a readable Parquet file: {exc}.") from None
    else:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            names = next(csv.reader(f, delimiter=_sep(path)), [])
    check_columns(names, path)
    return names


def read_table(path, target=None):
    """A CSV (or, by suffix, TSV) file with a header row: one row per sample, the label column taken out."""
    import pandas as pd

    path = os.fspath(path)
    table_columns(path)  # pandas would rename a second 'label' to 'label.1' and train on it as a feature
    try:
        frame = pd.read_csv(path, sep=_sep(path))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GridCNNError(
            f"{path!r} is not a readable CSV file: {exc}. Expected a header row, then one row per sample."
        ) from None
    check_table(frame, path)
    return table_data(frame, path, target)


def read_parquet(path, target=None):
    """A Parquet table (through pyarrow, the optional extra gridcnn[parquet])."""
    import pandas as pd

    path = os.fspath(path)
    table_columns(path)  # before pandas, which fails on a repeated name with pyarrow's words
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise GridCNNError(f"{path!r} is not a readable Parquet file: {exc}.") from None
    check_table(frame, path)
    return table_data(frame, path, target)


def _parquet(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise GridCNNError(f"{path} is a Parquet file, which needs pyarrow. Install it: {PARQUET_INSTALL}.") from None
    return pq


def table_data(frame, path, target=None):
    """A `DataFile` from a table already read into a DataFrame (shared by every table format)."""
    check_columns(list(frame.columns), path)
    check_cells(frame, path)
    notes = [f"Read {len(frame)} rows x {frame.shape[1]} columns from {os.path.basename(path)}."]
    if all(_is_number(c) for c in frame.columns):
        notes.append("The header row looks like numbers: if the file has no header, its first sample was read as one.")
    name = label_name(path, target, list(frame.columns), "column")
    y = None
    if name is not None:
        missing = np.flatnonzero(frame[name].isna().to_numpy())
        if len(missing):
            raise GridCNNError(
                f"{path}: column {name!r} has no label in {len(missing)} of {len(frame)} rows (first: line "
                f"{missing[0] + 2} of the file). Fill those labels in, or drop the rows."
            )
        y = frame.pop(name).to_numpy()
        notes.append(f"Column {name!r} holds the labels.")
    return DataFile(frame, y, "table", path, notes, label=name)


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
