"""Is this data a grid? `check_suitability` answers with evidence, before anyone trains a CNN on a table.

A CNN helps only where neighbouring cells are related and the relation repeats along an axis. For each spatial
axis the check runs two stages:

1. *Locality* (always, no labels needed): neighbour dependence (mean |correlation| between cells one step apart)
   against random orders of the axis, and against orders that keep contiguous groups of related columns together
   (see `gridcnn.suitability._stats`). An axis is ordered when it beats both.
2. *Model* (with labels; by default only where stage 1 is torn between "ordered" and "grouped"): a small CNN,
   cross-validated as is, with the axis shuffled, and an order-blind MLP (see `gridcnn.suitability._model`).
   There the axis is ordered only when the order itself makes the CNN better than both.

The module never prints: the CLI renders the `SuitabilityReport`, and `plot_suitability` draws it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target

from gridcnn.estimator.params import check_constraints
from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.codec import jsonable
from gridcnn.suitability._model import ModelResult, model_test
from gridcnn.suitability._stats import LocalityResult, axis_similarity, locality_test
from gridcnn.suitability._text import describe

LAYOUTS = ("L", "HW", "CHW", "HWC")
N_SHUFFLES = 2  # shuffled orders per axis in the model stage: their mean is steadier than one, and cheap enough
MIN_SAMPLES = 10

_CONSTRAINTS = {
    "layout": [None, StrOptions({*LAYOUTS, *("N" + lay for lay in LAYOUTS)}), tuple, list],
    "random_state": ["random_state"],
    "alpha": [Interval(Real, 0, 1, closed="neither")],
    "n_permutations": [Interval(Integral, 19, None, closed="left")],
    "max_samples": [Interval(Integral, MIN_SAMPLES, None, closed="left")],
    "model": [StrOptions({"auto", "always", "never"})],
    "cv": [Interval(Integral, 2, None, closed="left")],
    "min_gain": [Interval(Real, 0, 1, closed="left")],
}


@dataclass
class AxisVerdict(LocalityResult):
    """The verdict on one spatial axis: the locality test's numbers (a `LocalityResult`, inherited, not copied),
    what they and the model stage decided, and the axis they are about.

    Attributes
    ----------
    name : str
        "columns" for (n, L) input; "rows" (height) and "columns" (width) for grids.
    length : int
        Cells along the axis.
    ordered : bool
        Whether the order along this axis carries information a CNN can use.
    decided_by : str
        "locality" or "model" (the stage whose test settled ``ordered``).
    statistic : float
        Mean |correlation| between neighbouring cells (distance 1).
    null_mean, z, p_value : float
        The same statistic over random orders of the axis: its mean, the data's z-score and the permutation
        p-value (exact, so uniform when the order is arbitrary).
    grouped_null_mean, grouped_z, grouped_p_value : float
        The same against the least favourable grouping: ``n_groups`` contiguous groups of related cells,
        shuffled within and among themselves. NaN (p = 1) when the axis is too short to group.
    n_groups : int
        Groups in that grouping.
    model_gain, model_p_value : float or None
        Model stage, when it ran for this axis: the CNN's accuracy as is minus the best of (CNN with this axis
        shuffled, MLP), and the larger of the two paired p-values.
    distances, dependence : ndarray
        Neighbour dependence at distances 1..D (the plot's data line).
    null_profile : ndarray of shape (3, D)
        5th percentile, mean and 95th percentile of that dependence over random orders (the plot's band; also as
        ``null_low``, ``null_profile_mean``, ``null_high``).
    group_sizes : tuple of int
        The least favourable grouping's smallest and largest group.
    groups : ndarray or None
        Each position's group in that grouping (None when there is none).
    grouped_profile : ndarray
        Mean dependence at each distance with the ``n_groups`` groups shuffled (NaN when there is no grouping).
    """

    name: str = ""
    length: int = 0
    ordered: bool = False
    decided_by: str = "locality"
    model_gain: float | None = None
    model_p_value: float | None = None

    @property
    def null_low(self) -> np.ndarray:
        return self.null_profile[0]

    @property
    def null_profile_mean(self) -> np.ndarray:
        return self.null_profile[1]

    @property
    def null_high(self) -> np.ndarray:
        return self.null_profile[2]


@dataclass
class SuitabilityReport:
    """What `check_suitability` found.

    Attributes
    ----------
    suitable : bool
        True when at least one axis is ordered and every column is numeric: a CNN can use the data's layout.
    axes : tuple of AxisVerdict
        One verdict per spatial axis (axes of length 1 are left out).
    evidence : tuple of str
        Sentences with the numbers behind the verdict, the decisive one first.
    recommendation : str
        What to use instead, or how to configure the CNN.
    grid_shape : tuple of int
        Shape of one sample as checked, (C, H, W).
    n_samples : int
        Samples the locality stage used (after subsampling).
    alpha : float
        Significance level of every test.
    non_numeric : tuple of str
        Names of non-numeric columns (DataFrame input); any makes the data tabular.
    model : ModelResult or None
        Cross-validated accuracies of the model stage, when it ran.
    """

    suitable: bool
    axes: tuple[AxisVerdict, ...]
    evidence: tuple[str, ...]
    recommendation: str
    grid_shape: tuple[int, ...]
    n_samples: int
    alpha: float
    non_numeric: tuple[str, ...] = ()
    model: ModelResult | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (arrays become lists)."""
        return jsonable(asdict(self))


def check_suitability(X, y=None, *, layout=None, random_state=None, alpha=0.05, n_permutations=999,
                      max_samples=2000, model="auto", cv=3, min_gain=0.02) -> SuitabilityReport:
    """Test whether ``X`` is a grid a CNN can exploit, or a table whose columns could be put in any order.

    Parameters
    ----------
    X : array-like of shape (n, L), (n, H, W) or (n, C, H, W), or pandas DataFrame
        Samples. A DataFrame's non-numeric columns are reported and make the data tabular on their own; missing
        values are filled with column means.
    y : array-like of shape (n,), default=None
        Class labels; they enable the model stage.
    layout : {"L", "HW", "CHW", "HWC"}, tuple of int or None, default=None
        What the axes after the first mean: "L" a row of cells (tables, sequences), "HW" a grid, "CHW" / "HWC"
        grids with channels first / last (channels are never tested). A tuple such as ``(8, 8)`` or
        ``(3, 32, 32)`` reshapes flat rows into that grid. None: "L", "HW" or "CHW" by the number of dimensions.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling, the permutations and the networks; an int makes the report reproducible.
    alpha : float, default=0.05
        Significance level of each test.
    n_permutations : int, default=999
        Permutations per null distribution (the smallest p-value is 1 / (n_permutations + 1)).
    max_samples : int, default=2000
        Samples used at most, drawn at random (stratified by ``y`` in the model stage).
    model : {"auto", "always", "never"}, default="auto"
        When to run the model stage (it needs ``y``): "auto" for axes where the locality stage finds neighbour
        dependence that grouped columns could explain, "always" for every axis, "never" to skip it.
    cv : int, default=3
        Folds of the model stage's cross-validation.
    min_gain : float, default=0.02
        Accuracy the order must add (over the shuffled CNN and over the MLP) besides being significant.

    Returns
    -------
    SuitabilityReport
        ``suitable``, a verdict per axis, the evidence and a recommendation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits, load_wine
    >>> from gridcnn.suitability import check_suitability
    >>> check_suitability(load_wine().data, random_state=0).suitable
    False
    >>> report = check_suitability(load_digits().images, random_state=0)
    >>> report.suitable, [axis.ordered for axis in report.axes]
    (True, [True, True])
    """
    params = dict(layout=layout, random_state=random_state, alpha=alpha, n_permutations=n_permutations,
                  max_samples=max_samples, model=model, cv=cv, min_gain=min_gain)
    check_constraints(params, _CONSTRAINTS, "check_suitability")
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    grids, names, non_numeric, notes = _as_grids(X, layout)
    labels = _check_labels(y, len(grids))

    sample = grids if len(grids) <= max_samples else grids[np.sort(rng.choice(len(grids), max_samples, replace=False))]
    axes = [(i, name) for i, name in zip((2, 3), names) if grids.shape[i] > 1]
    localities = {i: locality_test(axis_similarity(sample, i, rng), rng, n_permutations) for i, _ in axes}

    def torn(r):
        return r.p_value < alpha <= r.grouped_p_value

    wanted = [i for i, _ in axes if model == "always" or (model == "auto" and torn(localities[i]))]
    model_result, model_note = None, None
    if wanted and model != "never":
        model_note = _model_blocker(labels, cv)
        if model_note is None:
            codes = np.unique(labels, return_inverse=True)[1]
            shuffles = {name: (i, localities[i].groups) for i, name in axes if i in wanted}
            model_result = model_test(grids, codes, shuffles, rng, cv=cv, n_shuffles=N_SHUFFLES,
                                      max_samples=max_samples)

    verdicts = []
    for i, name in axes:
        r = localities[i]
        verdict = AxisVerdict(**vars(r), name=name, length=grids.shape[i],
                              ordered=r.p_value < alpha and r.grouped_p_value < alpha, decided_by="locality")
        if model_result is not None and name in model_result.shuffled_gain:
            verdict.model_gain = min(model_result.shuffled_gain[name], model_result.mlp_gain)
            verdict.model_p_value = max(model_result.shuffled_p_value[name], model_result.mlp_p_value)
            verdict.ordered = verdict.model_gain >= min_gain and verdict.model_p_value < alpha
            verdict.decided_by = "model"
        verdicts.append(verdict)

    suitable = any(v.ordered for v in verdicts) and not non_numeric
    evidence, recommendation = describe(verdicts, model_result, non_numeric, notes, model_note, alpha=alpha,
                                        min_gain=min_gain, suitable=suitable,
                                        torn=any(torn(localities[i]) for i, _ in axes), sequence=grids.shape[2] == 1)
    return SuitabilityReport(suitable, tuple(verdicts), tuple(evidence), recommendation,
                             tuple(grids.shape[1:]), len(sample), alpha, tuple(non_numeric), model_result)


def quick_check(X, random_state=0) -> SuitabilityReport:
    """The locality stage alone, on at most 500 samples and 199 permutations: a fast screen for `fit`.

    Parameters
    ----------
    X : array-like of shape (n, L), (n, H, W) or (n, C, H, W), or pandas DataFrame
        Samples, as for `check_suitability`.
    random_state : int, RandomState instance or None, default=0
        Seeds the subsampling and the permutations.

    Returns
    -------
    SuitabilityReport
        As `check_suitability` with ``model="never"``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from gridcnn.suitability import quick_check
    >>> quick_check(load_iris().data).suitable
    False
    """
    return check_suitability(X, random_state=random_state, n_permutations=199, max_samples=500, model="never")


# -- input handling -------------------------------------------------------------------------------------------------


def _as_grids(X, layout):
    """Return numeric (n, C, H, W) grids, the spatial axis names, non-numeric column names and notes."""
    notes, non_numeric = [], []
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a pandas DataFrame, without importing pandas
        if layout not in (None, "L", "NL"):
            raise GridCNNError(f"A DataFrame is a table of columns: layout must be None or 'L', got {layout!r}.")
        numeric = [c for c in X.columns if X[c].dtype.kind in "biuf"]
        non_numeric = [str(c) for c in X.columns if c not in numeric]
        X = X[numeric].to_numpy(dtype=float)
    elif hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise GridCNNError(
            f"X must hold numbers; got an array of dtype {X.dtype}. Encode the non-numeric values, or pass a "
            "pandas DataFrame so that non-numeric columns are reported."
        )
    if isinstance(layout, (tuple, list)):
        shape = tuple(int(s) for s in layout)
        if not 1 <= len(shape) <= 3 or math.prod(shape) != math.prod(X.shape[1:]):
            raise GridCNNError(
                f"layout={tuple(layout)} cannot hold a sample of shape {X.shape[1:]} ({math.prod(X.shape[1:])} "
                "cells). Give the grid shape of one sample, such as (8, 8) or (3, 32, 32), with as many cells."
            )
        X = X.reshape(len(X), *shape)
        layout = None
    layout = {2: "L", 3: "HW", 4: "CHW"}.get(X.ndim) if layout is None else layout.upper().removeprefix("N")
    if layout is None or X.ndim != len(layout) + 1:
        raise GridCNNError(
            f"Expected X of shape (n, L), (n, H, W) or (n, C, H, W); got shape {X.shape}"
            + (f" for layout {layout!r}" if layout else "") + ". A single sample needs a leading axis of 1; one "
            "feature per sample is no grid."
        )
    if len(X) < MIN_SAMPLES:
        raise GridCNNError(f"X has {len(X)} samples; the check needs at least {MIN_SAMPLES} to estimate correlations.")
    grids = {"L": lambda a: a[:, None, None, :], "HW": lambda a: a[:, None], "CHW": lambda a: a,
             "HWC": lambda a: np.moveaxis(a, -1, 1)}[layout](X)
    # The dtype stays as given (uint8 images stay small); each stage converts only the samples it uses.
    bad = ~np.isfinite(grids) if grids.dtype.kind == "f" else None
    if bad is not None and bad.any():
        # Fill each cell with its mean over samples: a neutral value that adds no correlation.
        grids = np.where(bad, np.nan, grids).astype(np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell missing everywhere has no mean; it gets 0
            fill = np.nan_to_num(np.nanmean(grids, axis=0))
        grids[bad] = np.broadcast_to(fill, grids.shape)[bad]
        notes.append(f"{int(bad.sum())} missing or infinite values were filled with the mean of their cell.")
    names = ("columns", "columns") if layout == "L" else ("rows", "columns")
    return grids, names, non_numeric, notes


def _check_labels(y, n):
    if y is None:
        return None
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise GridCNNError(f"y must have one label per sample, shape ({n},); got shape {y.shape}.")
    return y


def _model_blocker(y, cv):
    """Why the model stage cannot run (a sentence), or None when it can."""
    if y is None:
        return "Labels (y, or --target in the CLI) would let a cross-validated CNN test whether the order helps."
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        return f"The model test needs class labels; y looks {kind}, so it was skipped."
    counts = np.unique(y, return_counts=True)[1]
    if counts.min() < cv:
        return (f"The model test needs at least {cv} samples of every class (cv={cv}); the smallest class has "
                f"{counts.min()}.")
    return None
