"""The one reader of data given by path: tables, .npy/.npz arrays, class folders of images or sound files.

`read_data` serves ``gridcnn fit PATH`` (zero-config, through `gridcnn.workflow.auto`), a recipe's ``[data] path``,
``gridcnn evaluate --data`` and ``gridcnn check``, so a file that one command reads, the others read the same way:
the same label column (`gridcnn.data.labels.label_name`), the same .npz keys, the same file checks. Each format is
one small function registered in `READERS` by suffix (tables live in `gridcnn.data.tables`).
"""

from __future__ import annotations

import functools
import os
from collections import Counter

import numpy as np

from gridcnn.data.datafile import DataFile
from gridcnn.data.file_checks import load_array, sniff
from gridcnn.data.labels import label_name, no_labels, npy_without_labels
from gridcnn.data.tables import _parquet, read_parquet, read_table, table_columns
from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

#: Names (any case) the sample array of an .npz may have, in order of preference (one array alone is taken whatever
#: its name); a split's arrays are ``X_<split>`` and ``y_<split>``.
X_NAMES = ("X", "data", "inputs")
#: The two parts of a data set given already split: ``train/`` + ``test/`` class folders, or an .npz's
#: ``X_train``/``y_train`` + ``X_test``/``y_test``.
SPLITS = ("train", "test")
_FOLDER = "a folder with one subfolder of images or sound files per class"


def read_data(path, *, target: str | None = None, split: str | None = None) -> DataFile:
    """Read samples (and labels, where there are any) from a table, an array file or a class folder.

    Parameters
    ----------
    path : str or PathLike
        A .csv / .tsv (.txt is read as CSV) or .parquet table with a header row; an .npy array; an .npz archive; or
        a folder with one subfolder of images or sound files per class (the subfolder names are the labels), or
        with ``train/`` and ``test/`` such folders.
    target : str, default=None
        The label column of a table, the label array of an .npz, or the labels' .npy file of an .npy of samples. By
        default the one named like a label (`gridcnn.data.labels.LABEL_NAMES`, any case); none: no labels.
    split : str, default=None
        ``"train"`` or ``"test"`` (any name): the ``<split>/`` folder, or an .npz's ``X_<split>``/``y_<split>``. A
        data set given already split and read without ``split`` is read whole (every split, in order).

    Returns
    -------
    data : DataFile
        ``data.labelled()`` gives ``(X, y)`` ready for training.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(path, X=np.zeros((4, 8, 8)), labels=[0, 1, 0, 1])
    >>> data = read_data(path)
    >>> data.kind, data.X.shape, data.y.tolist(), data.label
    ('array', (4, 8, 8), [0, 1, 0, 1], 'labels')
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if split is not None and os.path.isdir(os.path.join(path, split)):  # train/ + test/ class folders
            return read_folder(os.path.join(path, split), target)
        if split is not None:
            raise GridCNNError(_no_split(path, split, "a folder"))
        if given_split(path):
            return _whole(path, target)
        return read_folder(path, target)
    if not os.path.isfile(path):
        raise GridCNNError(f"Data path {path!r} does not exist. Expected {_expected()}.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise GridCNNError(f"Cannot read {path!r}: expected {_expected()}. Got a {ext or 'file without extension'}.")
    if split is not None and ext != ".npz":
        raise GridCNNError(_no_split(path, split, "one data set"))
    sniff(path)  # empty, binary, UTF-16, or text under an array's suffix: named before a reader trips over it
    if ext == ".npz":
        return read_npz(path, target, split) if split is not None or not given_split(path) else _whole(path, target)
    return READERS[ext](path, target)


def given_split(path) -> bool:
    """True for data given already split: a folder with ``train/`` and ``test/``, or an .npz holding ``X_train``,
    ``y_train``, ``X_test`` and ``y_test`` (and no plain ``X``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return all(os.path.isdir(os.path.join(path, s)) for s in SPLITS)
    if path.lower().endswith(".npz") and os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = set(archive.files)
        except (OSError, ValueError):  # not an archive: read_data names the problem
            return False
        return {f"{a}_{s}" for a in "Xy" for s in SPLITS} <= names and not _x_name(names)
    return False


def _whole(path, target) -> DataFile:
    """Every split of data given already split, one after the other (what ``gridcnn check`` looks at)."""
    parts = [read_data(path, target=target, split=s) for s in SPLITS]
    first = parts[0]
    X = ([p for part in parts for p in part.X] if first.kind in ("image", "audio")
         else np.concatenate([part.X for part in parts]))
    y = None if any(part.y is None for part in parts) else np.concatenate([part.y for part in parts])
    note = f"Read the {' and '.join(SPLITS)} splits together ({' + '.join(str(len(part.X)) for part in parts)})."
    return DataFile(X, y, first.kind, path, [*first.notes, note], label=first.label)


def label_source(path, target=None, *, required: bool = False) -> str | None:
    """What holds the labels of the data at ``path`` (a table's column, an .npz's array, the labels' .npy file,
    "folders" for class folders), found from headers and names alone; None when there are none.

    Raises the reader's message when ``target`` names nothing there, when two entries are named like labels, and
    (``required``) when none is: what ``gridcnn fit PATH`` checks before it reads the data. A file that cannot be
    read gives None here; `read_data` names its problem when it reads it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if target is not None:
            _folder_target(target)
        return "folders"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        found = npy_labels(path, target)
        if found is None and required:
            raise GridCNNError(npy_without_labels(path))
        return found
    if ext == ".parquet":
        _parquet(path)  # pyarrow missing is an installation problem, not the data's: said now
    try:
        sniff(path)
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
        else:
            names = table_columns(path)
    except (GridCNNError, OSError, ValueError):
        return None
    if ext != ".npz":
        found = label_name(path, target, names, "column")
        if found is None and required:
            raise GridCNNError(no_labels(path, "column", names))
        return found
    if given_split(path):
        return "y_train"
    x_name = _x_name(names) or (names[0] if len(names) == 1 else None)
    return label_name(path, target, [n for n in names if n != x_name], "array")


def _expected() -> str:
    suffixes = [s for s in READERS if s != ".txt"]
    return f"a {', '.join(suffixes[:-1])} or {suffixes[-1]} file, or {_FOLDER}"


def _no_split(path, split, what) -> str:
    return (f"split={split!r} picks the {split}/ folder of class folders, or the arrays X_{split} and y_{split} of an "
            f".npz, but {path!r} is {what}. Use test_fraction to split it instead.")


def _folder_target(target):
    raise GridCNNError(
        f"target={target!r} names a table column or an .npz array; a folder's labels are its subfolder names. "
        "Leave the target out."
    )


def npy_labels(path, target=None) -> str | None:
    """The labels file of the samples in the .npy ``path``: the .npy that ``target`` names (as given, else beside
    the samples), or else the one beside them named like a label (``y.npy``, ``labels.npy``, ...); None if none."""
    path = os.fspath(path)
    if target is not None:
        if not str(target).lower().endswith(".npy"):
            raise GridCNNError(
                f"target={target!r} names a table column or an .npz array, but {path!r} holds one array. Name the "
                "labels' own .npy file (target='y.npy', --target y.npy), or save both with numpy.savez('data.npz', "
                "X=X, y=y)."
            )
        return labels_path(path, target)
    folder = os.path.dirname(path) or "."
    beside = sorted(f for f in os.listdir(folder) if f.lower().endswith(".npy") and f != os.path.basename(path)
                    and os.path.isfile(os.path.join(folder, f)))
    stems = {f[:-4]: f for f in beside}
    name = label_name(path, None, list(stems), "labels file")
    return None if name is None else os.path.join(folder, stems[name])


def read_npy(path, target=None) -> DataFile:
    """One array, memory-mapped (a file larger than memory trains without being copied); labels from `npy_labels`."""
    path = os.fspath(path)
    labels = npy_labels(path, target)
    X = load_array(functools.partial(np.load, mmap_mode="r"), None, path)
    notes = [f"Read an array of shape {X.shape} from {os.path.basename(path)} (memory-mapped)."]
    if labels is None:
        return DataFile(X, None, "array", path, notes)
    sniff(labels)
    y = np.asarray(load_array(np.load, None, labels))
    if y.ndim != 1 or len(y) != len(X):
        raise GridCNNError(f"{labels!r} holds an array of shape {y.shape}; the labels of {path!r} must be one per "
                           f"sample: shape ({len(X)},).")
    return DataFile(X, y, "array", path, [*notes, f"Labels: {len(y)} from {os.path.basename(labels)}."], label=labels)


def labels_path(path, target) -> str:
    """The labels file ``target`` of the samples at ``path``: as given when it exists, else beside the samples."""
    beside = os.path.join(os.path.dirname(os.fspath(path)), os.fspath(target))
    for candidate in (os.fspath(target), beside):
        if os.path.isfile(candidate):
            return candidate
    raise GridCNNError(f"The labels file {os.fspath(target)!r} does not exist (looked for it as given and beside "
                       f"{os.fspath(path)!r}). Save one label per sample with numpy.save('y.npy', y).")


def _x_name(names) -> str | None:
    lower = {str(n).lower(): n for n in names}
    return next((lower[n.lower()] for n in X_NAMES if n.lower() in lower), None)


def read_npz(path, target=None, split=None) -> DataFile:
    """Samples from ``X`` (any case, or `X_NAMES`, or the only array; ``X_<split>`` for a split), labels from
    `label_name` (``y_<split>`` for a split)."""
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if split is not None:
            x_name = f"X_{split}"
            if x_name not in names:
                raise GridCNNError(
                    f"{path!r} has no array {x_name!r} for split={split!r}.{did_you_mean(x_name, names)} Its arrays: "
                    f"{', '.join(names)}."
                )
        else:
            x_name = _x_name(names) or (names[0] if len(names) == 1 else None)
            if x_name is None:
                raise GridCNNError(
                    f"{path!r} holds arrays {', '.join(names)}; expected one named X (or {', '.join(X_NAMES[1:])}) "
                    "and y for labels, or X_train, y_train, X_test and y_test. Save it with "
                    "numpy.savez(path, X=X, y=y)."
                )
        others = [n for n in names if n != x_name]
        if split is not None and target is None:  # a split's labels are its own y_<split>, never another split's
            y_name = f"y_{split}" if f"y_{split}" in names else None
        else:
            y_name = label_name(path, target, others, "array")
        X = load_array(archive, x_name, path)
        y = load_array(archive, y_name, path) if y_name is not None else None
    if y is not None and (y.ndim != 1 or len(y) != len(X)):
        raise GridCNNError(f"array {y_name!r} in {path!r} has shape {y.shape}; the labels of {x_name!r} must be one "
                           f"per sample: shape ({len(X)},).")
    notes = [f"Read {x_name} of shape {X.shape} from {os.path.basename(path)}"
             + (f" and labels from {y_name}." if y is not None else ".")]
    return DataFile(X, y, "array", path, notes, label=y_name)


def read_folder(path, target=None) -> DataFile:
    """The file paths of a class folder, labelled by subfolder; one kind of file per folder. The files are those a
    registered adapter reads (`GridAdapter.file_extensions`: images, sound files...), and the kind is its modality."""
    from gridcnn.adapters.base import file_adapters
    from gridcnn.data.folders import list_class_folder

    if target is not None:
        _folder_target(target)
    readers = list(file_adapters().values())
    modality = {ext: cls.modality for cls in reversed(readers) for ext in cls.file_extensions}
    words = " or ".join(f"{_WORDS.get(m, m)} ({', '.join(cls.file_extensions[:2])}, ...)"
                        for m, cls in sorted({c.modality: c for c in reversed(readers)}.items()))
    paths, labels = list_class_folder(path, tuple(modality), what=f"{words} files")
    kinds = [modality[os.path.splitext(p)[1].lower()] for p in paths]
    if len(set(kinds)) > 1:
        (first, n_first), (second, n_second) = Counter(kinds).most_common(2)
        one, other = (next(p for p, k in zip(paths, kinds) if k == kind) for kind in (first, second))
        raise GridCNNError(
            f"{path!r} mixes {n_first} {_WORDS.get(first, first)} files and {n_second} {_WORDS.get(second, second)} "
            f"files (such as "
            f"{os.path.basename(one)} and {os.path.basename(other)}); keep one kind per data folder (one model reads "
            "one kind of input)."
        )
    kind = kinds[0]
    notes = [f"Found {len(paths)} {_WORDS.get(kind, kind)} files in {len(set(labels))} class folders of {path}."]
    return DataFile(paths, np.asarray(labels), kind, path, notes, label="folders")


_WORDS = {"audio": "sound"}  # how messages name a modality's files


#: Suffix -> reader; `read_data` dispatches on it (folders go to `read_folder`).
READERS = {".csv": read_table, ".tsv": read_table, ".txt": read_table, ".npy": read_npy, ".npz": read_npz,
           ".parquet": read_parquet}


def load_path(path, split: str | None = None, target: str | None = None):
    """``(X, y)`` for training or evaluation from a path: `read_data` followed by `DataFile.labelled`.

    Parameters
    ----------
    path : str or Path
        See `read_data`.
    split : str, default=None
        For data given already split (``train/`` + ``test/``, an .npz's ``X_train``...): which part.
    target : str, default=None
        The label column of a table, label array of an .npz, or labels file of an .npy.

    Returns
    -------
    X : list of str or ndarray
        File paths for folders, arrays otherwise.
    y : ndarray
        Labels.
    """
    return read_data(path, target=target, split=split).labelled()
