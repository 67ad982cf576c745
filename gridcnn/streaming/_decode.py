"""Decoding one file: a map-style torch Dataset (index -> grid) that the DataLoader's workers run, and the collate
function that stacks a batch. Workers only decode; which rows come, and in what order, is the sampler's business."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch

from gridcnn.exceptions import GridCNNError

@dataclass(frozen=True)
class Failure:
    """A file that could not be decoded: where it is in the source, its path and the adapter's one-line message."""

    index: int
    path: str
    message: str


def decoding_copy(adapter):
    """A copy of a fitted adapter that decodes one file at a time on the CPU and raises on a bad file.

    The caller decides what a bad file does (the original adapter's ``on_error``), in the main process: a warning
    raised inside a worker process would never reach the user. The device is the CPU because a forked worker cannot
    use the parent's CUDA context.
    """
    name = getattr(adapter, "registry_name", "")
    if not (callable(getattr(adapter, "reads_files", None)) and adapter.reads_files()):  # asked of the adapter
        raise GridCNNError(
            f"Streaming decodes files through an adapter that reads files (such as image or spectrogram); got "
            f"{type(adapter).__name__}{f' ({name!r})' if name else ''}. Data of other kinds fit in memory: pass the "
            "arrays directly."
        )
    if not adapter.__sklearn_is_fitted__():
        raise GridCNNError(
            f"The {type(adapter).__name__} given to StreamedGrids is not fitted. Fit it first on some of the files "
            "(gridcnn.streaming.fit_adapter(adapter, paths) fits it on a seeded sample)."
        )
    clone = copy.deepcopy(adapter)
    has = clone.get_params(deep=False)
    return clone.set_params(**{k: v for k, v in (("on_error", "raise"), ("device", "cpu")) if k in has})


class FileGrids(torch.utils.data.Dataset):
    """Map-style dataset: item ``i`` is the grid (float32 (C, H, W) tensor) of ``paths[i]``, or a `Failure`.

    Parameters
    ----------
    paths : sequence of str
        The files, in source order.
    adapter : GridAdapter
        A fitted file adapter; it is copied (see `decoding_copy`).
    """

    def __init__(self, paths, adapter):
        # One numpy array of fixed-width strings, not a list of str objects: a forked worker touching the refcount
        # of every str would copy the pages holding them, so each worker's memory would grow with the file count.
        self.paths = np.asarray([os.fspath(p) for p in paths], dtype=str)
        self.adapter = decoding_copy(adapter)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.decode(index, self.adapter)

    def decode(self, index: int, adapter):
        """Item ``index`` decoded by ``adapter`` (a decoding thread passes its own copy: `transform` sets
        attributes on the adapter, which threads sharing one would overwrite under each other)."""
        path = str(self.paths[index])
        try:
            return torch.from_numpy(adapter.transform_one(path))  # the adapter's per-item decode
        except GridCNNError as exc:
            return Failure(int(index), path, str(exc))
        except Exception as exc:  # anything the decoders raise past the adapter: still one line, naming the file
            return Failure(int(index), path, f"Could not decode {path!r}: {type(exc).__name__}: {exc}")


def collate(items):
    """Stack the decoded grids of one batch; returns (kept mask, grids tensor or None, failures)."""
    kept = torch.tensor([not isinstance(it, Failure) for it in items], dtype=torch.bool)
    grids = [it for it in items if not isinstance(it, Failure)]
    failures = [it for it in items if isinstance(it, Failure)]
    # A tensor (not a numpy array) goes back from a worker through shared memory instead of a pickled copy.
    return kept, (torch.stack(grids) if grids else None), failures
