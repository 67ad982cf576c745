"""Data given by path rather than by name: a class-per-folder directory, an .npz of arrays, or a CSV table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._file_checks import check_table, load_array, sniff
from ..exceptions import GridCNNError


def load_path(path, split: str | None = None, target: str | None = None):
    """Load ``(X, y)`` from a folder of class subfolders (images or sound files), an .npz or a .csv.

    Parameters
    ----------
    path : str or Path
        A folder ``<class>/<file>``; an .npz with ``X`` and ``y`` (or ``X_<split>`` and ``y_<split>``); or a CSV
        with a header whose ``target`` column holds the labels.
    split : str, default=None
        For an .npz holding ``X_train``, ``X_test``...: which one.
    target : str, default=None
        The label column of a CSV (default: a column named "label", "target", "class" or "y").

    Returns
    -------
    X : list of str or ndarray
        File paths for folders, arrays otherwise.
    y : ndarray
        Labels.
    """
    from ..adapters.image import IMAGE_EXTENSIONS
    from .._audio_io import AUDIO_EXTENSIONS
    from ._folders import list_class_folder

    p = Path(path)
    if p.is_dir():
        paths, labels = list_class_folder(p, (*IMAGE_EXTENSIONS, *AUDIO_EXTENSIONS))
        kinds = {Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in paths}
        if len(kinds) > 1:
            raise GridCNNError(f"{p} mixes image and sound files; keep one kind per data folder.")
        return paths, np.asarray(labels)
    if not p.is_file():
        raise GridCNNError(f"Data path {str(p)!r} does not exist. Expected a class folder, an .npz or a .csv file.")
    sniff(p)
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            xk, yk = ("X", "y") if split is None else (f"X_{split}", f"y_{split}")
            if xk not in z or yk not in z:
                raise GridCNNError(f"{p} has no arrays {xk!r} and {yk!r}; it holds {sorted(z.files)}.")
            return load_array(z, xk, p), load_array(z, yk, p)
    if p.suffix.lower() == ".csv":
        import pandas as pd

        try:
            frame = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise GridCNNError(f"{str(p)!r} is not a readable CSV file: {exc}. Expected a header row, then one row "
                               "per sample.") from None
        check_table(frame, p)
        if target is None:
            target = next((c for c in ("label", "target", "class", "y") if c in frame.columns), None)
            if target is None:
                raise GridCNNError(f"{p}: which column holds the labels? Pass target=COLUMN (columns: {list(frame.columns)[:10]}).")
        if target not in frame.columns:
            from .._registry import did_you_mean

            raise GridCNNError(f"{p} has no column {target!r}.{did_you_mean(target, frame.columns)}")
        missing = np.flatnonzero(frame[target].isna().to_numpy())
        if len(missing):
            raise GridCNNError(
                f"{p}: column {target!r} has no label in {len(missing)} of {len(frame)} rows (first: line "
                f"{missing[0] + 2} of the file). Fill those labels in, or drop the rows."
            )
        y = frame.pop(target).to_numpy()
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if bad:
            raise GridCNNError(f"{p}: columns {bad[:5]} are not numeric; a CNN needs numbers in every cell.")
        return frame.to_numpy(np.float32), y
    raise GridCNNError(f"Cannot read {p}: expected a class folder, an .npz or a .csv file, got a {p.suffix or 'file without suffix'}.")
