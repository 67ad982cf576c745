"""Data sets by name, returning ``(X, y)`` like ``sklearn.datasets`` loaders with ``return_X_y=True``.

Every loader takes ``split`` (one of its named splits, or None for all the data) and returns raw inputs for its
adapter (image arrays, sound file paths, strings, signals) and labels. Nothing is downloaded at run time: each
data set comes from a package that ships it or is built offline.
"""

from gridcnn.data.registry import DATASETS, DatasetInfo, cache_dir, get_dataset, load_dataset, register_dataset
from gridcnn.data import images as _images
from gridcnn.data import audio as _audio
from gridcnn.data import text as _text
from gridcnn.data import sequence as _sequence
from gridcnn.data import clipart as _clipart
from gridcnn.data.reader import DataFile, load_path, read_data

__all__ = ["DATASETS", "DataFile", "DatasetInfo", "cache_dir", "get_dataset", "load_dataset", "load_path", "read_data",
           "register_dataset"]
