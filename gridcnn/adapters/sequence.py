"""Signals to grids: (n, L) or (n, channels, L) arrays become (n, channels, 1, L), a 1 x L image per channel."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from gridcnn.exceptions import GridCNNError
from gridcnn.adapters.base import ADAPTERS, GridAdapter, map_rows


@ADAPTERS.register("sequence")
class SequenceGrid(GridAdapter):
    """Turn signals into 1 x L grids, optionally standardised and cut into fixed-length windows.

    Parameters
    ----------
    standardize : {"channel", "position"} or None, default="channel"
        "channel": subtract each channel's training mean and divide by its standard deviation (over samples and
        time), which keeps the signal's shape and puts channels in different units on one scale. "position":
        one mean and deviation per (channel, time step), as `sklearn.preprocessing.StandardScaler` does on the
        flattened grids; only meaningful when time steps line up across signals (aligned heartbeats, say).
        None: leave values as they are. A constant channel or position gets a deviation of 1, like sklearn.
    window : int or None, default=None
        Cut each signal into windows of this many steps; None keeps whole signals, which must then all have the
        training length.
    window_stride : int or None, default=None
        Steps between window starts; None means ``window`` (windows that do not overlap).

    Attributes
    ----------
    n_channels_ : int
        Channels seen in `fit`.
    length_ : int
        Signal length seen in `fit`.
    windows_per_signal_ : int
        Grids made from each training signal (1 without windows).
    mean_ : ndarray of shape (n_channels,) or (n_channels, width), or None
        Subtracted per channel or per position; None when ``standardize=None``.
    scale_ : ndarray of the same shape, or None
        Divided by after the mean.

    Notes
    -----
    **Windows multiply rows.** A signal of length L gives ``k = 1 + (L - window) // window_stride`` windows
    (a tail shorter than a window is dropped), so `transform` returns ``n * k`` grids, the k windows of signal 0
    first, then those of signal 1, and so on. The labels must follow: train on ``repeat_labels(y)``
    (``np.repeat(y, k)``), and to predict one label per signal average the classifier's ``predict_proba`` over each
    signal's k consecutive rows (``proba.reshape(n, k, -1).mean(axis=1)``). Windows of one signal are not
    independent samples: split train and test by signal before windowing, never by window. A scikit-learn
    ``Pipeline`` cannot change ``y``, so windowing belongs outside one.

    Examples
    --------
    >>> import numpy as np
    >>> from gridcnn.adapters.sequence import SequenceGrid
    >>> X = np.arange(24.0).reshape(2, 12)
    >>> SequenceGrid().fit_transform(X).shape
    (2, 1, 1, 12)
    >>> adapter = SequenceGrid(standardize=None, window=5)
    >>> adapter.fit_transform(X).shape
    (4, 1, 1, 5)
    >>> adapter.repeat_labels([0, 1]).tolist()
    [0, 0, 1, 1]
    """

    registry_name = "sequence"
    modality = "signal"
    _fitted_attribute = "length_"
    _nonfinite_fix = "Its values overflow float32 once standardised: rescale the signals (or pass standardize=None)."

    _parameter_constraints: dict = {
        "standardize": [StrOptions({"channel", "position"}), None],
        "window": [Interval(Integral, 1, None, closed="left"), None],
        "window_stride": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, standardize="channel", window=None, window_stride=None):
        self.standardize = standardize
        self.window = window
        self.window_stride = window_stride

    def state_grid_shape(self):
        return int(self.n_channels_), 1, int(self.window if self.window is not None else self.length_)

    def onnx_frontend(self):
        from gridcnn.export.frontends import sequence

        return sequence(self)

    def _fit(self, X):
        signals = _check_signals(X)
        self.n_channels_, self.length_ = int(signals.shape[1]), int(signals.shape[2])
        self.windows_per_signal_ = self._n_windows(self.length_)
        grids = self._cut(signals).astype(np.float64)
        if self.standardize is None:
            self.mean_ = self.scale_ = None
            return
        # Statistics of the grids transform returns (after windowing), so "position" matches StandardScaler on them.
        axes = (0, 2) if self.standardize == "channel" else (0,)
        self.mean_ = grids.mean(axis=axes).astype(np.float32)
        std = grids.std(axis=axes)
        self.scale_ = np.where(std > 10 * np.finfo(np.float64).eps, std, 1.0).astype(np.float32)

    def _transform(self, X):
        if hasattr(X, "shape") and len(X.shape) in (2, 3):  # arrays (memory-mapped too) and tensors, in batches
            return map_rows(lambda part, start: self._transform_rows(part), X)
        return self._transform_rows(X)

    def _transform_rows(self, X):
        signals = _check_signals(X)
        n, channels, length = signals.shape
        if channels != self.n_channels_:
            raise GridCNNError(
                f"SequenceGrid was fitted on signals with {self.n_channels_} channel(s). Got {channels} instead."
            )
        if self.window is None and length != self.length_:
            raise GridCNNError(
                f"SequenceGrid was fitted on signals of length {self.length_}. Got length {length}. Pad or crop the "
                f"signals to {self.length_} steps, or set window= to cut any length into fixed windows."
            )
        self._n_windows(length)
        grids = self._cut(signals)
        if self.mean_ is not None:
            mean, scale = np.asarray(self.mean_), np.asarray(self.scale_)
            if self.standardize == "channel":
                mean, scale = mean[:, None], scale[:, None]
            grids = (grids - mean) / scale
        with np.errstate(over="ignore"):  # values beyond float32 become infinity, which GridAdapter names
            return grids[:, :, None, :].astype(np.float32)

    def repeat_labels(self, y, length=None):
        """Labels for the rows `transform` makes: each signal's label once per window.

        Parameters
        ----------
        y : array-like of shape (n,)
            One label per signal.
        length : int, default=None
            Length of the signals; None means the training length.

        Returns
        -------
        y_windows : ndarray of shape (n * windows,)
        """
        check_is_fitted(self, "length_")
        return np.repeat(np.asarray(y), self._n_windows(self.length_ if length is None else length))

    def _n_windows(self, length: int) -> int:
        if self.window is None:
            return 1
        if length < self.window:
            raise GridCNNError(
                f"Signals of length {length} are shorter than window={self.window}. Use a window of at most "
                f"{length} steps, or pad the signals."
            )
        return 1 + (length - self.window) // (self.window_stride or self.window)

    def _cut(self, signals: np.ndarray) -> np.ndarray:
        """(n, C, L) -> (n * k, C, window): the k windows of each signal, in order."""
        if self.window is None:
            return signals
        stride = self.window_stride or self.window
        k = self._n_windows(signals.shape[2])
        windows = np.lib.stride_tricks.sliding_window_view(signals, self.window, axis=2)[:, :, : stride * k : stride]
        # (n, C, k, window) -> (n, k, C, window) -> (n * k, C, window)
        return windows.transpose(0, 2, 1, 3).reshape(-1, signals.shape[1], self.window)


def _check_signals(X) -> np.ndarray:
    """Return ``X`` as a finite float (n, C, L) array, or say what is wrong with it."""
    try:
        signals = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise GridCNNError(
            "SequenceGrid expects numbers shaped (n, L) or (n, channels, L) with signals of equal length. "
            f"Got {type(X).__name__} that does not convert to such an array; pad or crop signals to one length."
        ) from None
    if signals.ndim == 2:
        signals = signals[:, None, :]
    if signals.ndim != 3:
        raise GridCNNError(
            f"SequenceGrid expects signals shaped (n, L) or (n, channels, L). Got shape {signals.shape}"
            + (". For one signal use X.reshape(1, -1)." if signals.ndim == 1 else ".")
        )
    if signals.shape[0] == 0 or signals.shape[2] == 0:
        raise GridCNNError(f"SequenceGrid needs at least one signal of length >= 1. Got shape {signals.shape}.")
    if not np.isfinite(signals).all():
        raise GridCNNError(
            "Signals contain NaN or infinity. Fill or interpolate missing values first (for example np.nan_to_num)."
        )
    return signals
