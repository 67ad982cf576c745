"""The adapter registry and the base class every adapter shares.

`GridAdapter` owns the public methods (`fit`, `fit_transform`, `transform`, `transform_one`, `drop_skipped`) and
the order of events in each: parameters are checked before any input is read, inputs of another modality are
refused, inputs left out are reported in one ``skipped_`` list, and a grid that is not finite stops with the input
it came from. A subclass implements the conversion only: ``_fit(X)`` and ``_transform(X)``, or
``_fit_transform(X)`` and ``_transform(X)`` where fitting reads every input anyway.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from gridcnn.estimator.params import validate_params
from gridcnn._registry import Registry
from gridcnn.exceptions import GridCNNError

ADAPTERS: Registry = Registry("adapter")
# Rows an adapter converts at a time: a memory-mapped .npy (np.load(..., mmap_mode="r")) is then read batch by
# batch, and the float intermediates of a conversion never exceed one batch whatever the size of X.
BATCH_ROWS = 4096
#: File name endings the image adapter reads (ImageGrid.file_extensions).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def get_adapter(name: str, **params) -> "GridAdapter":
    """Return a new adapter of the kind ``name`` (see ``ADAPTERS.names()``) built with ``params``."""
    return ADAPTERS.get(name)(**params)


def file_adapters() -> dict:
    """Registered name -> adapter class, for the adapters that read files (class folders, ``gridcnn predict``'s
    folders, streaming and the modality check ask this, so a new file adapter is found by all of them)."""
    return {name: ADAPTERS.get(name) for name in ADAPTERS if ADAPTERS.get(name).reads_files()}


def file_modality(item) -> str | None:
    """The modality (``"image"``, ``"audio"``...) of an existing file that a registered adapter reads, else None."""
    if not isinstance(item, (str, os.PathLike, np.str_)):
        return None
    suffix = os.path.splitext(os.fspath(item))[1].lower()
    kind = next((cls.modality for cls in file_adapters().values() if suffix in cls.file_extensions), None)
    try:
        # Only files that exist: a document such as "see photo.jpg" is a text, not an image.
        return kind if kind and os.path.isfile(item) else None
    except (OSError, ValueError):  # a text too long, or with a NUL, to be a path
        return None


class GridAdapter(TransformerMixin, BaseEstimator):
    """Base class: ``fit`` learns what it needs (lengths, statistics), ``transform`` returns float32 (n, C, H, W).

    Fitted state lives in public attributes ending in ``_`` holding JSON-able values or numpy arrays, so a fitted
    adapter can be saved next to the model without pickle (see `gridcnn.modelfile.persistence`).

    Subclasses set ``registry_name`` (the name they are registered under), ``modality`` (what they read:
    "image", "audio", "text" or "signal"), ``_parameter_constraints`` (scikit-learn's table, checked by
    `_validate_params` with "did you mean"), and may add ``_check_parameters`` for checks involving several
    parameters or the file system. An adapter with a ``device`` parameter takes the same values as the estimator's.

    Attributes
    ----------
    skipped_ : list of dict
        Inputs the last `fit`, `fit_transform` or `transform` left out (only with ``on_error="skip"``), each
        ``{"index": position in X, "input": path or "X[i]", "reason": str}``.
    kept_ : ndarray of bool
        Which inputs of that call became grids; ``y[adapter.kept_]`` or ``adapter.drop_skipped(y)`` aligns labels.
    """

    registry_name: str = ""
    modality: str = ""
    # What the adapter can do, asked by everything that handles inputs (class folders, streaming, `gridcnn predict`,
    # `gridcnn serve`, `gridcnn export`): a new adapter sets these and needs no edit elsewhere.
    #: File name endings of the files it reads (its inputs are paths); empty when its inputs are in memory. An
    #: adapter that reads files also streams: streaming decodes one file per item with `transform_one`.
    file_extensions: tuple = ()
    #: What a person uploads to ``gridcnn serve`` for it, in words ("image", "sound"; `read_upload` decodes it); ""
    #: when it takes no uploaded files.
    upload_kind: str = ""
    #: Its inputs are texts: ``gridcnn predict`` takes each argument (or each line of a .txt file) as one, the server
    #: JSON strings.
    text_inputs: bool = False
    #: An attribute `fit` sets last: the adapter is fitted when it has it (``skipped_`` exists before).
    _fitted_attribute: str = ""
    _parameter_constraints: dict = {}
    #: Words users type for an option ({"gray": "L"}), suggested when no spelling is close.
    _synonyms: dict = {}
    #: What to do when a grid comes out with NaN or infinity (the message names the input).
    _nonfinite_fix: str = "Check that input for NaN, infinite or extremely large values."

    # -- the public API, the same for every adapter -------------------------------------------------------------

    def fit(self, X, y=None):
        """Learn what the conversion needs from the training inputs ``X`` (see the class docstring).

        Parameters
        ----------
        X : list or array
            Training inputs.
        y : ignored
            Accepted for scikit-learn pipelines.

        Returns
        -------
        self : GridAdapter
            The fitted adapter.
        """
        self._prepare(X)
        self._fit(X)
        self._report(X)
        return self

    def fit_transform(self, X, y=None):
        """`fit`, then `transform`, reading every input once where the adapter can.

        Parameters
        ----------
        X : list or array
            Training inputs.
        y : ignored
            Accepted for scikit-learn pipelines.

        Returns
        -------
        grids : ndarray of shape (n_kept, C, H, W), float32
        """
        self._prepare(X)
        return self._finish(self._fit_transform(X), X)

    def transform(self, X):
        """Turn the inputs ``X`` into grids of the fitted shape.

        Parameters
        ----------
        X : list or array
            Inputs of the kind seen in `fit`.

        Returns
        -------
        grids : ndarray of shape (n_kept, C, H, W), float32
            One grid per input (several for a windowed `SequenceGrid`), in X's order; inputs left out with
            ``on_error="skip"`` are listed in ``skipped_``.
        """
        check_is_fitted(self)
        self._prepare(X)
        return self._finish(self._transform(X), X)

    def transform_one(self, item):
        """The grid of one input, float32 (C, H, W): what a data loader's worker calls per file when streaming.

        Parameters
        ----------
        item : path, array or str
            One input of the kind `transform` takes in a list.

        Returns
        -------
        grid : ndarray of shape (C, H, W), float32
        """
        grids = self.transform([item])  # an input that cannot be read raises, naming it, even with on_error="skip"
        if len(grids) != 1:
            raise GridCNNError(
                f"transform_one expects one grid per input, but {type(self).__name__} made {len(grids)} of it. Use "
                "transform where inputs are cut into windows."
            )
        return grids[0]

    def drop_skipped(self, values):
        """Remove from ``values`` (labels, paths...) the rows the last `fit` or `transform` call left out.

        Parameters
        ----------
        values : array-like of length len(X)
            Anything aligned with the X of that call.

        Returns
        -------
        kept : ndarray
            ``values`` without the skipped rows, aligned with the grids that call returned.
        """
        check_is_fitted(self)
        values = np.asarray(values)
        n = len(self.kept_)
        if len(values) != n:
            raise GridCNNError(
                f"drop_skipped got {len(values)} values, but the last fit or transform call read {n} inputs. "
                "Call it right after the fit_transform or transform whose X these values go with."
            )
        return values[self.kept_]

    # The skip report describes the last call, not what was learned: kept out of vars() so that model files and
    # the fitted state do not carry it (the setters let model files written before this load).
    @property
    def skipped_(self) -> list:
        return self.__dict__.get("_skipped", [])

    @skipped_.setter
    def skipped_(self, value):
        self._skipped = list(value)

    @property
    def kept_(self) -> np.ndarray:
        return self.__dict__.get("_kept", np.ones(0, dtype=bool))

    @kept_.setter
    def kept_(self, value):
        self._kept = np.asarray(value, dtype=bool)

    # -- what it can do, beyond transforming ---------------------------------------------------------------------

    @classmethod
    def reads_files(cls) -> bool:
        """True when its inputs are file paths (`file_extensions`): class folders, streaming and predict's folders."""
        return bool(cls.file_extensions)

    def read_upload(self, name: str, data: bytes):
        """One uploaded file's bytes -> the input `transform` takes (``gridcnn serve``); adapters with an
        `upload_kind` implement it, raising `GridCNNError` with a message for the person who sent the file."""
        raise GridCNNError(f"{type(self).__name__} takes no uploaded files.")

    def onnx_frontend(self):
        """Its preprocessing as a `gridcnn.export.frontends.Frontend` (a torch module ``gridcnn export`` traces
        into the graph, with what stays outside it); adapters that can be exported implement it."""
        raise GridCNNError(f"gridcnn cannot export a model whose adapter is {type(self).__name__}: it has no ONNX "
                           "front end (GridAdapter.onnx_frontend).")

    # -- what subclasses implement ------------------------------------------------------------------------------

    def _fit(self, X):
        """Learn from X; by default by converting it (`_fit_transform`)."""
        self._fit_transform(X)

    def _fit_transform(self, X):
        """Learn from X and return its grids; by default `_fit` then `_transform`."""
        self._fit(X)
        return self._transform(X)

    def _transform(self, X):
        raise NotImplementedError

    def _check_parameters(self):
        """Checks beyond the constraints table (several parameters together, files named by a parameter)."""

    # -- the order of events ------------------------------------------------------------------------------------

    def _validate_params(self):
        """scikit-learn's constraint check with "did you mean", then `_check_parameters`; reads no data.

        Recipes call it when they are read, so a mistake in an ``[adapter]`` section shows before any data loads.
        """
        validate_params(self, synonyms=self._synonyms)
        if "device" in self._parameter_constraints:
            _check_device(self.device, type(self).__name__)
        self._check_parameters()

    def _prepare(self, X):
        """Before reading X: parameters, the modality of X's files, a fresh skip report."""
        self._validate_params()
        self._check_modality(X)
        self.skipped_ = []

    def _check_modality(self, X):
        """Refuse files of another modality (sound files given to ImageGrid...), naming the first one."""
        if not (isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype.kind in "OUS")):
            return
        for i, item in enumerate(X):
            kind = file_modality(item)
            if kind is not None and kind != self.modality:
                name, cls = next((n, c) for n, c in file_adapters().items() if c.modality == kind)
                what = cls.upload_kind or kind
                raise GridCNNError(
                    f"X[{i}] ({os.fspath(item)!r}) is {'an' if what[0] in 'aeiou' else 'a'} {what} file, but "
                    f"{type(self).__name__} reads {self.modality} inputs. Use {cls.__name__} ({name!r}) for such files."
                )

    def _skip(self, index: int, item, reason: str) -> None:
        """Record input ``index`` as left out (the adapter raises its own message first when on_error="raise")."""
        name = os.fspath(item) if isinstance(item, (str, os.PathLike, np.str_)) else f"X[{index}]"
        self._skipped.append({"index": int(index), "input": name, "reason": reason})

    def _report(self, X):
        """Set ``kept_`` from ``skipped_`` and warn once when inputs were left out."""
        n = _length(X)
        kept = np.ones(n, dtype=bool)
        kept[[s["index"] for s in self.skipped_]] = False
        self.kept_ = kept
        if self.skipped_:
            first = self.skipped_[0]
            warnings.warn(
                f"{type(self).__name__} left out {len(self.skipped_)} of {n} inputs (see skipped_; drop the matching "
                f"labels with adapter.drop_skipped(y) or y[adapter.kept_]). First: {first['input']}: "
                f"{first['reason']}.",
                UserWarning,
                stacklevel=4,
            )

    def _finish(self, grids: np.ndarray, X) -> np.ndarray:
        """Report skipped inputs and refuse a grid that is not finite, naming the input it came from."""
        self._report(X)
        self._check_finite(grids, X)
        return grids

    def _check_finite(self, grids: np.ndarray, X) -> None:
        """Raise for the first grid holding NaN or infinity, naming its input (index in X, and path)."""
        skipped = {s["index"] for s in self.skipped_}
        kept = [i for i in range(_length(X)) if i not in skipped] if skipped else None
        n_kept = _length(X) - len(skipped)
        per_input = max(1, len(grids) // max(1, n_kept))  # SequenceGrid's windows: several rows per input
        for start in range(0, len(grids), BATCH_ROWS):
            part = np.asarray(grids[start : start + BATCH_ROWS])
            bad = np.flatnonzero(~np.isfinite(part.reshape(len(part), -1)).all(axis=1))
            if len(bad):
                row = (start + int(bad[0])) // per_input
                index = kept[row] if kept is not None else row
                raise GridCNNError(
                    f"{type(self).__name__} turned {_describe(X, index)} into a grid with NaN or infinite values. "
                    f"{self._nonfinite_fix}"
                )

    def state_grid_shape(self):
        """The (C, H, W) grid that this fitted adapter's state makes, computed from its attributes alone (no data):
        a model file's schema checks it against the network's input before anything is built. Raises ValueError
        when the attributes contradict each other; None where an adapter does not say."""
        return None

    def __sklearn_is_fitted__(self):
        return hasattr(self, self._fitted_attribute)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags


def _check_device(device, owner: str) -> None:
    """The estimator's device values ("auto", "cpu", "cuda", "cuda:N", "mps"), checked without touching a GPU."""
    import torch

    try:
        if device != "auto":
            torch.device(device)
    except (RuntimeError, TypeError):
        raise GridCNNError(
            f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'. Got {device!r} "
            "instead."
        ) from None


def _length(X) -> int:
    return X.shape[0] if hasattr(X, "shape") and len(X.shape) else len(X)


def _describe(X, index: int) -> str:
    """``input 3 ('a.wav')`` or ``input 3 (X[3])``: how messages name an input."""
    try:
        item = X[index]
    except Exception:  # X was an iterable without indexing; the position is all there is
        return f"input {index}"
    if isinstance(item, (str, os.PathLike, np.str_)) and len(os.fspath(item)) < 300:
        return f"input {index} ({os.fspath(item)!r})"
    return f"input {index} (X[{index}])"


def map_rows(transform, X):
    """``transform(X, 0)`` computed `BATCH_ROWS` rows at a time into one preallocated float array.

    ``transform(part, start)`` gets the rows from ``start`` on (so its messages can name rows by their index in X).
    It must map k rows to k * r grids for a fixed r (SequenceGrid's windows per signal), as every adapter's
    transform does when it skips nothing.
    """
    n, step = len(X), BATCH_ROWS
    if n <= step:
        return transform(X, 0)
    first = transform(X[:step], 0)
    per_row = len(first) // step
    out = np.empty((n * per_row, *first.shape[1:]), dtype=first.dtype)
    out[: len(first)] = first
    for start in range(step, n, step):
        part = transform(X[start : start + step], start)
        out[start * per_row : start * per_row + len(part)] = part
    return out
