"""Training and prediction on image or sound files decoded lazily, for data larger than memory.

Three parts, kept apart so results do not depend on the number of workers (as in ``torch.utils.data``):

- order: the estimator draws one permutation per epoch (under torchrun each rank takes its shard of it, as
  ``DistributedSampler`` does) and asks for batches in that order (`_loader.GivenBatches`);
- mapping: `_decode.FileGrids` maps an index to one decoded grid, through the fitted adapter;
- decoding: DataLoader worker processes (or threads) run that mapping, a bounded number of batches ahead
  (`_loader.Decoder`).

The first decoding pass can write every grid into a memory-mapped cache (`_cache`) that later epochs and runs read.
"""

from __future__ import annotations

import numpy as np

from gridcnn.streaming._plan import (FIT_SAMPLE, STREAM_THRESHOLD_BYTES, file_adapter, fit_adapter, grid_bytes, is_file_list,
                    predict_files, should_stream)
from gridcnn.streaming._source import StreamedGrids, StreamSource

__all__ = ["FIT_SAMPLE", "STREAM_THRESHOLD_BYTES", "StreamSource", "StreamedGrids", "file_adapter", "fit_adapter",
           "grid_bytes", "is_file_list", "predict_files", "should_stream", "stream_folder"]


def stream_folder(path, adapter, extensions=None, **kwargs):
    """``(StreamedGrids, labels)`` for a folder with one subfolder per class; ``adapter`` is fitted (on a seeded
    sample, see `fit_adapter`) if it is not.

    ``kwargs`` go to `StreamedGrids` (``cache``, ``num_workers``, ``threads``, ``prefetch``, ``verbose``).
    """
    from gridcnn.data.folders import list_class_folder

    paths, labels = list_class_folder(path, adapter.file_extensions if extensions is None else extensions)
    if not adapter.__sklearn_is_fitted__():
        fit_adapter(adapter, paths)
    return StreamedGrids(paths, adapter, **kwargs), np.asarray(labels)
