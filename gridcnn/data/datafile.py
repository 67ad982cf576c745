"""`DataFile`: what the one reader found in a file or folder, and `DataFile.labelled`, the (X, y) a fit takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gridcnn.data.labels import LABEL_NAMES, TARGET_HINT, no_labels, npy_without_labels
from gridcnn.exceptions import GridCNNError


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
    label : str or None
        Where the labels came from: the table column, the .npz array or the .npy file.
    """

    X: object
    y: np.ndarray | None
    kind: str
    source: str
    notes: list = field(default_factory=list)
    label: str | None = None

    def labelled(self):
        """``(X, y)`` for training or evaluation: labels required, a table's columns all numeric (as float32), or
        one text column alone (a list of str, for a text adapter).

        Raises
        ------
        GridCNNError
            When the file has no labels, or a table has columns that are not numbers.
        """
        if self.y is None:
            if self.kind == "table":
                raise GridCNNError(no_labels(self.source, "column", self.X.columns))
            if self.kind == "array" and self.source.lower().endswith(".npy"):
                raise GridCNNError(npy_without_labels(self.source))
            raise GridCNNError(f"{self.source} holds no labels. Save them as an array named y (or one of "
                               f"{', '.join(LABEL_NAMES)}), or name it ({TARGET_HINT}).")
        if self.kind != "table":
            return self.X, self.y
        bad = self.text_columns()
        if bad and len(self.X.columns) == 1:  # one text column: the texts are X (the embedding adapter reads them)
            return self.X[bad[0]].fillna("").astype(str).tolist(), self.y
        if bad:
            raise GridCNNError(
                f"{self.source}: columns {bad[:5]} are not numeric, beside {len(self.X.columns) - len(bad)} other "
                "column(s). A CNN needs numbers in every cell, or the texts alone (one text column and the labels)."
            )
        return self.X.to_numpy(np.float32), self.y

    def text_columns(self) -> list:
        """A table's columns that do not hold numbers, in order (empty for other kinds)."""
        if self.kind != "table":
            return []
        import pandas as pd

        return [c for c in self.X.columns if not pd.api.types.is_numeric_dtype(self.X[c])]
