"""`load_check_data`: what ``gridcnn check`` is given, read by the package's one reader and made into grids."""

from __future__ import annotations

import numpy as np

from gridcnn.data import read_data
from gridcnn.exceptions import GridCNNError

# Files read at most from a folder: the check subsamples to 2,000 samples anyway, so reading more only costs time.
MAX_FILES = 2000


def load_check_data(path, target=None):
    """Read data for `check_suitability` with `gridcnn.data.read_data`: a table, an array file or a class folder.

    Tables, .npy and .npz files are read exactly as ``gridcnn fit`` reads them (the same label column and .npz
    keys), but labels are optional here and a table's non-numeric columns are kept, for the report to name.
    Class folders of images or sound files become grids through the image or spectrogram adapter.

    Parameters
    ----------
    path : str or PathLike
        See `gridcnn.data.read_data`.
    target : str, default=None
        The table column, or .npz array, holding the labels (default: one named as in
        `gridcnn.data.labels.LABEL_NAMES`, any case), if any).

    Returns
    -------
    X : pandas DataFrame or ndarray
        A DataFrame for tables (so non-numeric columns can be reported), else an array of samples.
    y : ndarray or None
        Labels, when there are any.
    notes : list of str
        What was read, in sentences for the report.
    """
    data = read_data(path, target=target)
    if data.kind not in ("image", "audio"):
        return data.X, data.y, list(data.notes)
    paths, labels, notes = data.X, data.y, list(data.notes)
    if len(paths) > MAX_FILES:
        keep = np.sort(np.random.default_rng(0).choice(len(paths), MAX_FILES, replace=False))
        paths, labels = [paths[i] for i in keep], labels[keep]
        notes.append(f"Checked {MAX_FILES} of them, drawn at random.")
    if data.kind == "image":
        from gridcnn.adapters.image import ImageGrid

        try:
            grids = ImageGrid().fit_transform(paths)
        except GridCNNError:
            # Differing sizes is the usual reason; a common size keeps neighbours neighbours.
            grids = ImageGrid(size=(64, 64)).fit_transform(paths)
            notes.append("The images were resized to 64 x 64 to share one size.")
        return grids, labels, notes
    from gridcnn.adapters.audio.adapter import SpectrogramGrid

    adapter = SpectrogramGrid(device="cpu")
    grids = adapter.fit_transform(paths)
    notes.append(f"Clips became log-mel spectrograms ({adapter.duration_:g} s, {adapter.n_mels} mel bands): "
                 "rows are time, columns frequency.")
    return grids, labels, notes
