"""Files in, picture out, for ``gridcnn check``: `load_check_data` reads what the CLI is given, `plot_suitability`
draws a report's neighbour dependence against distance beside its shuffled null."""

from __future__ import annotations

import os

import numpy as np

from ._file_checks import check_table, load_array, sniff
from ._registry import did_you_mean
from .exceptions import GridCNNError

# Files read at most from a folder: the check subsamples to 2,000 samples anyway, so reading more only costs time.
MAX_FILES = 2000
_X_NAMES = ("X", "x", "data", "inputs")
_Y_NAMES = ("y", "labels", "label", "target", "targets")


def load_check_data(path, target=None):
    """Read data for `check_suitability` from a CSV file, an .npy / .npz file or a folder of images or sound files.

    Parameters
    ----------
    path : str or PathLike
        A CSV file with a header row, an .npy array, an .npz archive (arrays ``X`` and optionally ``y``), or a
        folder with one subfolder of images or sound files per class.
    target : str, default=None
        The CSV column, or .npz array, holding the labels. Folders take their labels from the subfolder names.

    Returns
    -------
    X : pandas DataFrame or ndarray
        A DataFrame for CSV files (so non-numeric columns can be reported), else an array of samples.
    y : ndarray or None
        Labels, when there are any.
    notes : list of str
        What was read, in sentences for the report.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _load_folder(path, target)
    if not os.path.isfile(path):
        raise GridCNNError(
            f"{path!r} does not exist. Expected a CSV, .npy or .npz file, or a folder of class subfolders."
        )
    ext = os.path.splitext(path)[1].lower()
    sniff(path)
    if ext in (".csv", ".tsv", ".txt"):
        return _load_csv(path, target, sep="\t" if ext == ".tsv" else ",")
    if ext == ".npy":
        if target is not None:
            raise GridCNNError(
                f"--target names a CSV column or an .npz array, but {path!r} holds one array. Save samples and labels "
                "together with numpy.savez('data.npz', X=X, y=y), or leave out --target."
            )
        X = load_array(np.load, None, path)
        return X, None, [f"Read an array of shape {X.shape} from {os.path.basename(path)}."]
    if ext == ".npz":
        return _load_npz(path, target)
    raise GridCNNError(
        f"Cannot read {path!r}: expected a .csv, .npy or .npz file, or a folder of images or sound files "
        f"(one subfolder per class). Got a {ext or 'file without extension'}."
    )


def _load_csv(path, target, sep):
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GridCNNError(
            f"{path!r} is not a readable CSV file: {exc}. Expected a header row, then one row per sample."
        ) from None
    check_table(frame, path)
    notes = [f"Read {len(frame)} rows x {frame.shape[1]} columns from {os.path.basename(path)}."]
    if all(_is_number(c) for c in frame.columns):
        notes.append("The header row looks like numbers: if the file has no header, its first sample was read as one.")
    y = None
    if target is None:  # the label column gridcnn fit would take
        target = next((c for c in ("label", "target", "class", "y") if c in frame.columns), None)
    if target is not None:
        if target not in frame.columns:
            names = [str(c) for c in frame.columns]
            raise GridCNNError(
                f"{path!r} has no column {target!r}.{did_you_mean(target, names)} Its columns: "
                f"{', '.join(names[:20])}{', ...' if len(names) > 20 else ''}."
            )
        y = frame.pop(target).to_numpy()
        notes.append(f"Column {target!r} holds the labels.")
    return frame, y, notes


def _load_npz(path, target):
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        x_name = next((n for n in _X_NAMES if n in names), names[0] if len(names) == 1 else None)
        if x_name is None:
            raise GridCNNError(
                f"{path!r} holds arrays {', '.join(names)}; expected one named X (and y for labels). "
                "Save it with numpy.savez(path, X=X, y=y)."
            )
        y_name = target if target is not None else next((n for n in _Y_NAMES if n in names), None)
        if y_name is not None and y_name not in names:
            raise GridCNNError(
                f"{path!r} has no array {y_name!r}.{did_you_mean(y_name, names)} Its arrays: {', '.join(names)}."
            )
        X = load_array(archive, x_name, path)
        y = load_array(archive, y_name, path) if y_name is not None else None
    notes = [f"Read {x_name} of shape {X.shape} from {os.path.basename(path)}"
             + (f" and labels from {y_name}." if y is not None else ".")]
    return X, y, notes


def _load_folder(path, target):
    from ._audio_io import AUDIO_EXTENSIONS
    from .adapters.image import IMAGE_EXTENSIONS
    from .datasets._folders import list_class_folder

    if target is not None:
        raise GridCNNError(
            "--target applies to CSV and .npz files; a folder's labels are its subfolder names. Leave it out."
        )
    found, first_error = {}, None
    for kind, extensions in (("image", IMAGE_EXTENSIONS), ("sound", AUDIO_EXTENSIONS)):
        try:
            found[kind] = list_class_folder(path, extensions)
        except GridCNNError as exc:
            first_error = first_error or exc
    if not found:
        raise first_error
    kind = max(found, key=lambda k: len(found[k][0]))
    paths, labels = found[kind]
    notes = [f"Found {len(paths)} {kind} files in {len(set(labels))} class folders of {path}."]
    if len(paths) > MAX_FILES:
        keep = np.sort(np.random.default_rng(0).choice(len(paths), MAX_FILES, replace=False))
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        notes.append(f"Checked {MAX_FILES} of them, drawn at random.")
    if kind == "image":
        from .adapters.image import ImageGrid

        try:
            grids = ImageGrid().fit_transform(paths)
        except GridCNNError:
            # Differing sizes is the usual reason; a common size keeps neighbours neighbours.
            grids = ImageGrid(size=(64, 64)).fit_transform(paths)
            notes.append("The images were resized to 64 x 64 to share one size.")
        return grids, np.asarray(labels), notes
    from .adapters.audio import SpectrogramGrid

    adapter = SpectrogramGrid(device="cpu")
    grids = adapter.fit_transform(paths)
    notes.append(f"Clips became log-mel spectrograms ({adapter.duration_:g} s, {adapter.n_mels} mel bands): "
                 "rows are time, columns frequency.")
    return grids, np.asarray(labels), notes


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def plot_suitability(report, path):
    """Draw each axis's neighbour dependence against distance, with the band of shuffled orders, to a PNG.

    Parameters
    ----------
    report : SuitabilityReport
        From `check_suitability`.
    path : str or PathLike
        Where to write the image.

    Returns
    -------
    path : str
        The file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axes_data = [a for a in report.axes if len(a.distances)]
    if not axes_data:
        raise GridCNNError("The report has no axis with two or more cells, so there is no dependence to plot.")
    # A Figure of its own (not pyplot) leaves the caller's matplotlib state and backend alone.
    figure = Figure(figsize=(4.2 * len(axes_data), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, axis in zip(figure.subplots(1, len(axes_data), squeeze=False)[0], axes_data):
        ax.fill_between(axis.distances, axis.null_low, axis.null_high, color="0.8", label="shuffled (5-95%)")
        ax.plot(axis.distances, axis.null_profile_mean, "--", color="0.45", label="shuffled (mean)")
        color = "tab:green" if axis.ordered else "tab:red"
        ax.plot(axis.distances, axis.dependence, "o-", color=color, label="data")
        if np.isfinite(axis.grouped_profile).any():  # on top: for grouped columns it runs right over the data
            ax.plot(axis.distances, axis.grouped_profile, ":", color="tab:blue", linewidth=2,
                    label=f"{axis.n_groups} groups shuffled (mean)")
        verdict = "ordered" if axis.ordered else "not ordered"
        # The p-value that decided: the model test's where it ran, else the larger of the two locality tests.
        p = axis.model_p_value if axis.decided_by == "model" else max(axis.p_value, axis.grouped_p_value)
        ax.set_title(f"{axis.name}: {verdict} (p = {p:.3g})")
        ax.set_xlabel("distance (cells)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("mean |correlation|")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")
    figure.suptitle("suitable for a CNN" if report.suitable else "not a grid: tabular data")
    figure.savefig(os.fspath(path), dpi=100)
    return os.fspath(path)
