"""`plot_suitability`: a report's neighbour dependence against distance, beside its shuffled null, as a PNG."""

from __future__ import annotations

import os

import numpy as np

from gridcnn.exceptions import GridCNNError


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
