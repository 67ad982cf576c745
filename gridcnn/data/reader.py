"""The one reader of data given by path: .csv/.tsv tables, .npy/.npz arrays, class folders of images or sound files.

`read_data` serves ``gridcnn fit`` (a recipe's ``[data] path``), ``gridcnn evaluate --data`` and ``gridcnn check``,
so a file that one command reads, the others read the same way, with the same label column and the same .npz keys.
Each format is one small function registered in `READERS` by suffix: a new format (Parquet, say) is one function
returning a `DataFile` and one line in that table.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np

from gridcnn.data.file_checks import check_table, load_array, sniff
from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

#: Names a label column (table) or label array (.npz) may have when ``target`` is not given, in order of preference.
LABEL_NAMES = ("y", "label", "labels", "target", "targets", "class")
#: Names the sample array of an .npz may have (one array alone is taken whatever its name).
X_NAMES = ("X", "x", "data", "inputs")
_FOLDER = "a folder with one subfolder of images or sound files per class"


@dataclass
class DataFile:
    """What `read_data` found in a file or folder.

    Attributes
    ----------
    X : ndarray, pandas DataFrame or list of str
        An array (.npy, .npz), the feature columns of a table (a DataFrame, so that non-numeric columns can be
        reported before anything converts them), or the file paths of a class folder, for an adapter to read.
    y : ndarray or None
        Labels, when the file has them.
    kind : {"array", "table", "image", "audio"}
        What X holds: "image" and "audio" are class folders, with the modality of the dataset registry.
    source : str
        The path read.
    notes : list of str
        What was read, in sentences (``gridcnn check`` shows them).
    """

    X: object
    y: np.ndarray | None
    kind: str
    source: str
    notes: list = field(default_factory=list)

    def labelled(self):
        """``(X, y)`` for training or evaluation: labels required, a table's columns all numeric (as float32).

        Raises
        ------
        GridCNNError
            When the file has no labels, or a table has columns that are not numbers.
        """
        if self.y is None:
            how = {
                "array": "An .npy file holds one array and no labels: name the labels' own .npy file "
                         "(target='y.npy', --target y.npy), or save samples and labels together with "
                         "numpy.savez('data.npz', X=X, y=y).",
                "table": f"Name the label column with target=COLUMN ([data] target in a recipe, --target in the "
                         f"CLI), or call it one of {', '.join(LABEL_NAMES)}.",
            }.get(self.kind, f"Save the labels as an array named y (or one of {', '.join(LABEL_NAMES[1:])}), or "
                             "name it with target=NAME.")
            raise GridCNNError(f"{self.source} holds no labels. {how}")
        if self.kind != "table":
            return self.X, self.y
        import pandas as pd

        bad = [c for c in self.X.columns if not pd.api.types.is_numeric_dtype(self.X[c])]
        if bad and len(self.X.columns) == 1:  # one text column: the texts are X (the embedding adapter reads them)
            return self.X[bad[0]].fillna("").astype(str).tolist(), self.y
        if bad:
            raise GridCNNError(f"{self.source}: columns {bad[:5]} are not numeric; a CNN needs numbers in every cell.")
        return self.X.to_numpy(np.float32), self.y


def read_data(path, *, target: str | None = None, split: str | None = None) -> DataFile:
    """Read samples (and labels, where there are any) from a table, an array file or a class folder.

    Parameters
    ----------
    path : str or PathLike
        A .csv / .tsv (.txt is read as CSV) with a header row; an .npy array; an .npz archive; or a folder with one
        subfolder of images or sound files per class (the subfolder names are the labels).
    target : str, default=None
        The label column of a table, or the label array of an .npz. By default the first of `LABEL_NAMES` present
        (a table or archive with none of them has no labels).
    split : str, default=None
        For an .npz holding ``X_train``, ``y_train``, ``X_test``...: which pair to read.

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
    >>> data.kind, data.X.shape, data.y.tolist()
    ('array', (4, 8, 8), [0, 1, 0, 1])
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if split is not None and os.path.isdir(os.path.join(path, split)):  # train/ + test/ class folders
            return read_folder(os.path.join(path, split), target)
        if split is not None:
            raise GridCNNError(_no_split(path, split, "a folder"))
        return read_folder(path, target)
    if not os.path.isfile(path):
        raise GridCNNError(f"Data path {path!r} does not exist. Expected {_expected()}.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise GridCNNError(f"Cannot read {path!r}: expected {_expected()}. Got a {ext or 'file without extension'}.")
    if split is not None and ext != ".npz":
        raise GridCNNError(_no_split(path, split, "one data set"))
    sniff(path)  # empty, binary, UTF-16, or text under an array's suffix: named before a reader trips over it
    reader = READERS[ext]
    return reader(path, target) if ext != ".npz" else reader(path, target, split)


def _expected() -> str:
    suffixes = [s for s in READERS if s != ".txt"]
    return f"a {', '.join(suffixes[:-1])} or {suffixes[-1]} file, or {_FOLDER}"


def _no_split(path, split, what) -> str:
    return (f"split={split!r} picks the arrays X_{split} and y_{split} of an .npz, but {path!r} is {what}. "
            "Use test_fraction to split it instead.")


def _label_name(path, target, names, what: str) -> str | None:
    """``target`` when ``names`` has it (else an error with a suggestion), or the first of `LABEL_NAMES` present."""
    if target is None:
        return next((n for n in LABEL_NAMES if n in names), None)
    if target not in names:
        shown = [str(n) for n in names]
        raise GridCNNError(
            f"{path!r} has no {what} {target!r}.{did_you_mean(target, shown)} Its {what}s: "
            f"{', '.join(shown[:20])}{', ...' if len(shown) > 20 else ''}."
        )
    return target


def read_table(path, target=None, sep=None) -> DataFile:
    """A CSV (or, by suffix, TSV) file with a header row: one row per sample, the label column taken out."""
    import pandas as pd

    sep = sep or ("\t" if path.lower().endswith(".tsv") else ",")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GridCNNError(
            f"{path!r} is not a readable CSV file: {exc}. Expected a header row, then one row per sample."
        ) from None
    check_table(frame, path)
    return table_data(frame, path, target)


def table_data(frame, path, target=None) -> DataFile:
    """A `DataFile` from a table already read into a DataFrame (shared by every table format)."""
    notes = [f"Read {len(frame)} rows x {frame.shape[1]} columns from {os.path.basename(path)}."]
    if all(_is_number(c) for c in frame.columns):
        notes.append("The header row looks like numbers: if the file has no header, its first sample was read as one.")
    name = _label_name(path, target, list(frame.columns), "column")
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
    return DataFile(frame, y, "table", path, notes)


def read_npy(path, target=None) -> DataFile:
    """One array, memory-mapped (a file larger than memory trains without being copied); labels from the .npy file
    that ``target`` names (``"y.npy"``: beside the samples unless the path says otherwise), else none."""
    path = os.fspath(path)
    if target is not None and not str(target).lower().endswith(".npy"):
        raise GridCNNError(
            f"target={target!r} names a table column or an .npz array, but {path!r} holds one array. Name the labels' "
            "own .npy file (target='y.npy', --target y.npy), or save both with numpy.savez('data.npz', X=X, y=y)."
        )
    X = load_array(functools.partial(np.load, mmap_mode="r"), None, path)
    notes = [f"Read an array of shape {X.shape} from {os.path.basename(path)} (memory-mapped)."]
    if target is None:
        return DataFile(X, None, "array", path, notes)
    labels = labels_path(path, target)
    y = np.asarray(load_array(np.load, None, labels))
    if y.ndim != 1 or len(y) != len(X):
        raise GridCNNError(f"{labels!r} holds an array of shape {y.shape}; the labels of {path!r} must be one per "
                           f"sample: shape ({len(X)},).")
    return DataFile(X, y, "array", path, [*notes, f"Labels: {len(y)} from {os.path.basename(labels)}."])


def labels_path(path, target) -> str:
    """The labels file ``target`` of the samples at ``path``: as given when it exists, else beside the samples."""
    beside = os.path.join(os.path.dirname(os.fspath(path)), os.fspath(target))
    for candidate in (os.fspath(target), beside):
        if os.path.isfile(candidate):
            return candidate
    raise GridCNNError(f"The labels file {os.fspath(target)!r} does not exist (looked for it as given and beside "
                       f"{os.fspath(path)!r}). Save one label per sample with numpy.save('y.npy', y).")


def read_npz(path, target=None, split=None) -> DataFile:
    """Samples from ``X`` (or `X_NAMES`, or the only array; ``X_<split>`` for a split), labels from `_label_name`."""
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
            x_name = next((n for n in X_NAMES if n in names), names[0] if len(names) == 1 else None)
            if x_name is None:
                raise GridCNNError(
                    f"{path!r} holds arrays {', '.join(names)}; expected one named X (and y for labels). "
                    "Save it with numpy.savez(path, X=X, y=y)."
                )
        others = [n for n in names if n != x_name]
        if split is not None and target is None:  # a split's labels are its own y_<split>, never another split's
            y_name = f"y_{split}" if f"y_{split}" in names else None
        else:
            y_name = _label_name(path, target, others, "array")
        X = load_array(archive, x_name, path)
        y = load_array(archive, y_name, path) if y_name is not None else None
    notes = [f"Read {x_name} of shape {X.shape} from {os.path.basename(path)}"
             + (f" and labels from {y_name}." if y is not None else ".")]
    return DataFile(X, y, "array", path, notes)


def read_folder(path, target=None) -> DataFile:
    """The image or sound file paths of a class folder, labelled by subfolder; one kind of file per folder."""
    from gridcnn.adapters.audio.clips import AUDIO_EXTENSIONS
    from gridcnn.adapters.image import IMAGE_EXTENSIONS
    from gridcnn.data.folders import list_class_folder

    if target is not None:
        raise GridCNNError(
            f"target={target!r} names a table column or an .npz array; a folder's labels are its subfolder names. "
            "Leave the target out."
        )
    paths, labels = list_class_folder(path, (*IMAGE_EXTENSIONS, *AUDIO_EXTENSIONS))
    n_images = sum(os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS for p in paths)
    if 0 < n_images < len(paths):
        raise GridCNNError(
            f"{path!r} mixes {n_images} image files and {len(paths) - n_images} sound files; keep one kind per data "
            "folder (one model reads one kind of input)."
        )
    kind = "image" if n_images else "audio"
    notes = [f"Found {len(paths)} {'image' if n_images else 'sound'} files in {len(set(labels))} class folders of "
             f"{path}."]
    return DataFile(paths, np.asarray(labels), kind, path, notes)


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


#: Suffix -> reader; `read_data` dispatches on it (folders go to `read_folder`).
PARQUET_INSTALL = 'pip install pyarrow (or: pip install "gridcnn[parquet]")'


def read_parquet(path, target=None) -> DataFile:
    """A Parquet table (through pyarrow, the optional extra gridcnn[parquet])."""
    import pandas as pd

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise GridCNNError(f"{path} is a Parquet file, which needs pyarrow. Install it: {PARQUET_INSTALL}.") from None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise GridCNNError(f"{path!r} is not a readable Parquet file: {exc}.") from None
    return table_data(frame, path, target)


READERS = {".csv": read_table, ".tsv": read_table, ".txt": read_table, ".npy": read_npy, ".npz": read_npz,
           ".parquet": read_parquet}


def load_path(path, split: str | None = None, target: str | None = None):
    """``(X, y)`` for training or evaluation from a path: `read_data` followed by `DataFile.labelled`.

    Parameters
    ----------
    path : str or Path
        See `read_data`.
    split : str, default=None
        For an .npz holding ``X_train``, ``X_test``...: which one.
    target : str, default=None
        The label column of a table or label array of an .npz.

    Returns
    -------
    X : list of str or ndarray
        File paths for folders, arrays otherwise.
    y : ndarray
        Labels.
    """
    return read_data(path, target=target, split=split).labelled()
