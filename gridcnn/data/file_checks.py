"""What a data file holds, checked before a reader trips over it: each problem named with the file and the fix.

Small functions any reader calls (`gridcnn fit`'s data path, `gridcnn check`): `sniff` before opening a file,
`check_columns` on a table's header, `check_table` and `check_cells` after reading it, `load_array` for .npy / .npz
members.
"""

from __future__ import annotations

import os

import numpy as np

from gridcnn.exceptions import GridCNNError

_TEXT = (".csv", ".tsv", ".txt")


def sniff(path) -> None:
    """Refuse an empty file, a binary or UTF-16 "CSV", and a text file named .npy or .npz."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        raise GridCNNError(f"{path!r} is empty (0 bytes). Point to the file that holds the data.")
    if ext in (".npy", ".npz"):
        magic, how = (b"\x93NUMPY", "numpy.save") if ext == ".npy" else (b"PK", "numpy.savez")
        if not head.startswith(magic):
            what = "text" if _is_text(head) else "another kind of file"
            raise GridCNNError(
                f"{path!r} is named {ext} but holds {what} (it starts with {head[:20]!r}), not a NumPy file. "
                f"Write it with {how}, or give it the suffix of what it is (.csv for a table)."
            )
    elif ext in _TEXT:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise GridCNNError(
                f"{path!r} is UTF-16 text; gridcnn reads CSV files as UTF-8. Save it as UTF-8 (spreadsheet programs: "
                "'CSV UTF-8'), or convert it: iconv -f UTF-16 -t UTF-8."
            )
        if not _is_text(head):
            raise GridCNNError(
                f"{path!r} is named {ext} but is binary (it starts with {head[:20]!r}), not a text table. Give a CSV "
                "file with a header row, then one row per sample."
            )


def check_media(path) -> None:
    """Refuse an empty file, or a text file, under an image or sound suffix (``notes.png``): decoders would fail on it
    later with their own words, far from the file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(512)
    ext = os.path.splitext(path)[1].lower()
    if not head:
        raise GridCNNError(f"{path!r} is empty (0 bytes), not a {ext} file. Replace it with the file it should be, "
                           "or remove it.")
    if _is_text(head) and not head.startswith((b"P1", b"P2", b"P3")):  # plain-text PBM/PGM/PPM images are text
        raise GridCNNError(f"{path!r} is named {ext} but holds text (it starts with {head[:20]!r}). Replace it with "
                           "the file it should be, or remove it.")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a character cut at the end of the first 4 KiB
    return True


def check_table(frame, path) -> None:
    """A CSV read as a DataFrame: refuse one with no rows, or whose only column is really ';'- or tab-separated."""
    path = os.fspath(path)
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        sep = next((s for s in (";", "\t", "|") if s in header), None)
        if sep is not None:
            shown = {"\t": "tabs", ";": "';'", "|": "'|'"}[sep]
            raise GridCNNError(
                f"{path!r} has one column, {header[:60]!r}: its values look separated by {shown}, not commas. Save it "
                f"with commas, e.g. pandas.read_csv(path, sep={sep!r}).to_csv('fixed.csv', index=False)."
            )
    if len(frame) == 0:
        raise GridCNNError(
            f"{path!r} has a header ({', '.join(map(str, frame.columns[:5]))}{', ...' if frame.shape[1] > 5 else ''}) "
            "but no rows. Point to the file that holds the samples."
        )


def check_columns(names, path) -> None:
    """Refuse a header that names a column twice: pandas would rename the second ``label.1`` and train on it."""
    seen, twice = set(), []
    for name in map(str, names):
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        more = f" (and {len(twice) - 1} more)" if len(twice) > 1 else ""
        raise GridCNNError(
            f"{os.fspath(path)!r} names the column {twice[0]!r} twice{more}; "
            "every column needs a name of its own (a second label column would be read as a feature). Rename or "
            "drop the copy."
        )


def check_cells(frame, path) -> None:
    """Refuse cells that are not one value (lists or arrays, as Parquet can hold): they are neither numbers nor text."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        cells = frame[column].to_numpy()
        bad = next((i for i, v in enumerate(cells) if isinstance(v, (list, tuple, dict, set, np.ndarray))), None)
        if bad is not None:
            raise GridCNNError(
                f"{os.fspath(path)!r}: column {str(column)!r} holds {type(cells[bad]).__name__} values (row {bad + 1}: "
                f"{str(cells[bad])[:40]}), not one number or text per cell. Spread the values over columns of their "
                "own (one per element), or save grids as an .npz (numpy.savez('data.npz', X=X, y=y))."
            )


def load_array(archive, name: str, path):
    """``archive[name]`` (an open .npz, or np.load itself for a .npy), refusing object arrays and scalars."""
    path = os.fspath(path)
    where = f"{path!r}" if name is None else f"array {name!r} in {path!r}"
    try:
        a = archive(path, allow_pickle=False) if callable(archive) else archive[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Python objects" in str(exc):  # np.load's message, or np.memmap's
            raise GridCNNError(
                f"{where} holds Python objects (dtype object), which gridcnn does not unpickle (reading data must not "
                "run code). Save numbers (X.astype(np.float32)) or strings (y.astype(str)) instead."
            ) from None
        raise GridCNNError(f"{where} cannot be read: {exc}.") from None
    if a.ndim == 0:
        raise GridCNNError(
            f"{where} is a single value ({a.item()!r}, shape ()), not an array of samples. Save the samples with "
            "numpy.savez(path, X=X, y=y), where X has one row per sample."
        )
    return a
