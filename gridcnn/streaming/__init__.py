"""Training and prediction on image or sound files decoded lazily, for data larger than memory.

Three parts, kept apart so results do not depend on the number of workers (as in ``torch.utils.data``):

- order: the estimator draws one permutation per epoch (under torchrun each rank takes its shard of it, as
  ``DistributedSampler`` does) and asks for batches in that order (`_loader.GivenBatches`);
- mapping: `_decode.FileGrids` maps an index to one decoded grid, through the fitted adapter;
- decoding: DataLoader worker processes run that mapping, a bounded number of batches ahead (`_loader.Decoder`).

The first decoding pass can write every grid into a memory-mapped cache (`_cache`) that later epochs and runs read.
"""

from __future__ import annotations

import numpy as np

from ._source import StreamedGrids, StreamSource

#: ``stream = "auto"`` in a recipe streams when the training grids, held as float32, would take more than this.
STREAM_THRESHOLD_BYTES = 1 << 30
#: Files `fit_adapter` learns an adapter's statistics from, at most.
FIT_SAMPLE = 2048

__all__ = ["FIT_SAMPLE", "STREAM_THRESHOLD_BYTES", "StreamSource", "StreamedGrids", "fit_adapter", "grid_bytes",
           "stream_folder"]


def fit_adapter(adapter, paths, max_files: int = FIT_SAMPLE, random_state=0):
    """Fit ``adapter`` on at most ``max_files`` of ``paths`` (a seeded sample, kept in order) and return it.

    What the adapter learns (the output mode and size of images, a clip length for ``duration="auto"``, the
    statistics of ``standardize`` / ``normalize``) is then estimated from the sample, without decoding every file.
    """
    paths = list(paths)
    if len(paths) > max_files:
        pick = np.sort(np.random.default_rng(random_state).choice(len(paths), size=max_files, replace=False))
        paths = [paths[i] for i in pick]
    return adapter.fit(paths)


def grid_bytes(n_rows: int, grid_shape) -> int:
    """Bytes that ``n_rows`` float32 grids of ``grid_shape`` take in memory."""
    return int(n_rows) * int(np.prod(grid_shape)) * 4


def stream_folder(path, adapter, extensions=None, **kwargs):
    """``(StreamedGrids, labels)`` for a folder with one subfolder per class; ``adapter`` is fitted if it is not.

    ``kwargs`` go to `StreamedGrids` (``cache``, ``num_workers``, ``prefetch``, ``verbose``).
    """
    from ..datasets._folders import list_class_folder

    if extensions is None:
        from .._audio_io import AUDIO_EXTENSIONS
        from ..adapters.image import IMAGE_EXTENSIONS

        extensions = IMAGE_EXTENSIONS if adapter.registry_name == "image" else AUDIO_EXTENSIONS
    paths, labels = list_class_folder(path, extensions)
    if not hasattr(adapter, "n_channels_") and not hasattr(adapter, "n_samples_"):
        fit_adapter(adapter, paths)
    return StreamedGrids(paths, adapter, **kwargs), np.asarray(labels)
