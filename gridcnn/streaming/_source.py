"""`StreamedGrids`: files decoded on demand, what `fit` and `predict` take in place of an array of grids."""

from __future__ import annotations

import hashlib
import os
import warnings
from numbers import Integral

import numpy as np
import torch

from gridcnn.exceptions import GridCNNError
from gridcnn.streaming import _cache
from gridcnn.streaming._decode import FileGrids
from gridcnn.streaming._loader import Decoder, batches_of, read_ahead

_BUILD_BATCH = 64  # files per batch of the first decoding pass: enough to keep workers busy, little memory
_DECODE_ROWS = 64  # files a worker decodes into one batch when reading without a cache


class StreamedGrids:
    """Grids of image or sound files, decoded lazily by a fitted adapter instead of held in memory.

    Pass it to `GridCNNClassifier.fit` (with labels aligned with ``paths``), `predict` or `predict_proba` in place
    of an array. Files are decoded by ``num_workers`` DataLoader worker processes, a bounded number of batches
    ahead. The order of rows comes from the estimator (one permutation per epoch; under torchrun each rank takes
    its shard of it, as ``DistributedSampler`` does), so the result does not depend on ``num_workers`` and equals,
    bit for bit on the CPU, the fit on ``adapter.transform(paths)`` held in memory.

    Parameters
    ----------
    paths : sequence of str or PathLike
        The files, such as the first output of ``load_dataset("image_folder", path=...)``.
    adapter : ImageGrid or SpectrogramGrid
        A fitted adapter (see `fit_adapter`); its ``on_error`` decides what an unreadable file does.
    cache : bool, str or PathLike, default=True
        True writes every decoded grid once into a memory-mapped ``.npy`` in the gridcnn cache folder
        (``$GRIDCNN_CACHE/streams``, else ``~/.cache/gridcnn/streams``), and a folder path puts it there instead
        (beside the data, say); later epochs and later runs on the same files read it. The cache is keyed by the
        gridcnn version, the adapter's parameters and fitted state and every file's path, size and modification
        time, so a change to any of them rebuilds it. False decodes the files again every epoch.
    num_workers : int, default=2
        Decoding worker processes; 0 decodes in this process.
    threads : bool, default=False
        Decode in ``num_workers`` threads of this process instead of worker processes: no start-up, no copy of
        each grid between processes, for decoders that release the GIL (PNG/JPEG, WAV/FLAC, resampling). The
        first decoding pass, which trains nothing, gains most (benchmarks/RESULTS.md, "Streaming from files").
    prefetch : int, default=2
        Batches decoded ahead per worker (with the cache: batches read ahead by one thread).
    verbose : int, default=0
        1 shows a progress bar for the first decoding pass.

    Attributes
    ----------
    grid_shape_ : tuple of int
        (C, H, W) of every grid.
    kept_ : ndarray of bool of shape (len(paths),)
        Which files are rows: all but those a cache build skipped (``on_error="skip"``).
    skipped_ : list of dict
        Files left out so far: ``{"index", "path", "reason"}``.
    cache_path_ : Path or None
        The cache file in use.

    Examples
    --------
    >>> from gridcnn.streaming import StreamedGrids, fit_adapter  # doctest: +SKIP
    >>> X = StreamedGrids(paths, fit_adapter(ImageGrid(size=64), paths))  # doctest: +SKIP
    >>> GridCNNClassifier().fit(X, labels).predict(StreamedGrids(test_paths, X.adapter, cache=False))  # doctest: +SKIP
    """

    def __init__(self, paths, adapter, *, cache=True, num_workers=2, threads=False, prefetch=2, verbose=0):
        if isinstance(paths, (str, os.PathLike)):
            raise GridCNNError(
                f"StreamedGrids takes a list of file paths; got one path {os.fspath(paths)!r}. For a class folder, "
                "use gridcnn.streaming.stream_folder(path, adapter)."
            )
        for name, value in (("num_workers", num_workers), ("prefetch", prefetch)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < (0 if name == "num_workers" else 1):
                least = 0 if name == "num_workers" else 1
                raise GridCNNError(f"{name} must be an int >= {least}. Got {value!r} instead.")
        self.paths = [os.fspath(p) for p in paths]
        if not self.paths:
            raise GridCNNError("StreamedGrids got no paths. Pass at least one file.")
        self.adapter = adapter
        self.cache = cache
        if not isinstance(threads, bool):
            raise GridCNNError(f"threads must be True or False. Got {threads!r} instead.")
        self.num_workers = int(num_workers)
        self.threads = threads
        self.prefetch = int(prefetch)
        self.verbose = verbose
        self._dataset = FileGrids(self.paths, adapter)  # checks the adapter (a fitted file adapter) now
        self._grids = self._digest = None
        self.skipped_: list = []
        self.kept_ = np.ones(len(self.paths), dtype=bool)
        self.cache_path_ = None
        self.grid_shape_ = None

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        cache = "no cache" if self.cache is False else f"cache={str(self.cache_path_ or self.cache)!r}"
        return f"StreamedGrids({len(self.paths)} files, {type(self.adapter).__name__}, {cache}, " \
               f"num_workers={self.num_workers}{', threads' if self.threads else ''})"

    # -- preparation ---------------------------------------------------------------------------------------------

    def prepare(self, rank: int = 0, world_size: int = 1) -> "StreamedGrids":
        """Learn the grid shape and, with a cache, open it or build it (the first decoding pass). Idempotent."""
        if self.grid_shape_ is None:
            self.grid_shape_ = self._probe_shape()
        if self.cache is False or self._grids is not None:
            return self
        folder = None if self.cache is True else self.cache
        path, digest, key = _cache.locate(folder, self.paths, self.adapter)
        self._digest = digest
        shape = (len(self.paths), *self.grid_shape_)
        opened = _cache.open_cache(path, digest, shape)
        if opened is None:
            self._build(path, digest, key, shape, rank, world_size)
            opened = _cache.open_cache(path, digest, shape)
            if opened is None:
                raise GridCNNError(f"The grid cache {path} could not be read back after it was written. Check the "
                                   "disk, or pass cache=False.")
        self._grids, skipped = opened
        self.cache_path_ = path
        self.skipped_ = list(skipped)
        self.kept_ = np.ones(len(self.paths), dtype=bool)
        self.kept_[[s["index"] for s in skipped]] = False
        if not self.kept_.any():
            raise GridCNNError(f"None of the {len(self.paths)} files could be decoded; the first: "
                               f"{skipped[0]['reason']}")
        return self

    def _probe_shape(self) -> tuple:
        """The grid shape, from the first file that decodes."""
        for i in range(len(self.paths)):
            item = self._dataset[i]
            if isinstance(item, torch.Tensor):
                return tuple(int(v) for v in item.shape)
            if self.adapter.on_error == "raise":
                raise _failed(item)
        raise GridCNNError(f"None of the {len(self.paths)} files could be decoded; check the paths and the format.")

    def _build(self, path, digest, key, shape, rank: int, world_size: int) -> None:
        """The first decoding pass: every file (this rank's share under torchrun) into the temporary .npy."""
        from gridcnn.training.progress import decode_progress

        tmp = path.with_name(path.name + (f".{os.getpid()}.tmp" if world_size == 1 else ".tmp"))
        if rank == 0:
            _cache.create(path, shape, tmp)
        _barrier(world_size)
        mine = np.arange(rank, len(self.paths), world_size)
        rows = [mine[s : s + _BUILD_BATCH] for s in range(0, len(mine), _BUILD_BATCH)]
        decoder = Decoder(self._dataset, self.num_workers, self.prefetch, threads=self.threads)
        error = None
        with decode_progress(len(mine), f"Decoding {len(self.paths)} files", enabled=bool(self.verbose) and rank == 0) as bar:
            try:
                skipped = _cache.fill(tmp, rows, decoder.run, self.adapter.on_error, bar)
            except BaseException as exc:  # a bad file, a dead worker, Ctrl-C: no half-written cache stays behind
                if world_size == 1 or not isinstance(exc, GridCNNError):
                    tmp.unlink(missing_ok=True)
                    raise
                error, skipped = str(exc), []
        if world_size > 1:  # every rank learns what every other skipped, or the first error, before going on
            import torch.distributed as dist

            gathered = [None] * world_size
            dist.all_gather_object(gathered, (error, skipped))
            errors = [e for e, _ in gathered if e]
            skipped = sorted((s for _, part in gathered for s in part), key=lambda s: s["index"])
            if errors:
                _barrier(world_size)
                if rank == 0:
                    tmp.unlink(missing_ok=True)
                raise GridCNNError(errors[0])
        if rank == 0:
            _cache.publish(path, tmp, digest, key, skipped)
        _barrier(world_size)
        if rank == 0:
            _cache.warn_skipped(skipped, len(self.paths))

    # -- reading -------------------------------------------------------------------------------------------------

    def digest(self) -> str:
        """What a checkpoint records of these grids: the digest of the cache key (version, adapter, every file's path,
        size and modification time), with or without a cache."""
        if self._digest is None:
            self._digest = _cache.cache_key(self.paths, self.adapter)[1]
        return self._digest

    def rows(self) -> np.ndarray:
        """Positions in ``paths`` of the rows (the kept files)."""
        return np.flatnonzero(self.kept_)

    def read(self, batches, pin_memory: bool = False):
        """Yield ``(kept, grids)`` for each batch of positions in ``paths``, in the order given.

        ``kept`` (a bool tensor) says which positions of the batch have a row in ``grids``; a file that fails to
        decode is skipped with a warning (``on_error="skip"``) or raises (``"raise"``).
        """
        if self.grid_shape_ is None:
            self.prepare()
        if self._grids is not None:
            grids = self._grids
            read = lambda b: torch.from_numpy(grids[np.asarray(b)])  # noqa: E731 (a copy: fancy indexing)
            for grid in read_ahead(read, batches, self.prefetch):
                yield torch.ones(len(grid), dtype=torch.bool), grid
            return
        # Workers decode parts of at most _DECODE_ROWS files, put back together here: a worker then never holds
        # more than a few small batches, however large the batches asked for (prediction asks for 1024 rows).
        batches = [np.asarray(b) for b in batches]
        parts = [(i, b[s : s + _DECODE_ROWS]) for i, b in enumerate(batches) for s in range(0, len(b), _DECODE_ROWS)]
        decoder = Decoder(self._dataset, self.num_workers, self.prefetch, pin_memory=pin_memory, threads=self.threads)
        done: list = []
        for (owner, _), (kept, grids, failures) in zip(parts, decoder.run([p for _, p in parts])):
            for f in failures:
                if self.adapter.on_error == "raise":
                    raise _failed(f)
                self.skipped_.append({"index": f.index, "path": f.path, "reason": f.message})
                self.kept_[f.index] = False
                warnings.warn(f"Skipped {f.path} (on_error='skip'): it could not be decoded any more; its row is "
                              f"left out of this pass. {f.message}", UserWarning, stacklevel=2)
            done.append((kept, grids if grids is not None else torch.empty((0, *self.grid_shape_))))
            if sum(len(k) for k, _ in done) == len(batches[owner]):
                yield torch.cat([k for k, _ in done]), (done[0][1] if len(done) == 1 else torch.cat([g for _, g in done]))
                done = []


def _failed(failure) -> GridCNNError:
    """The error for a file that failed to decode, with its ``path`` (as ``rows`` elsewhere): the adapter's words
    are for a Python caller, and `gridcnn predict` tells a person about that file instead."""
    exc = GridCNNError(failure.message)
    exc.path = failure.path
    return exc


class StreamSource:
    """The training loop's data source over some rows of a `StreamedGrids`, with their labels.

    ``rows`` are positions in ``streamed.paths``; `batches` takes an order over ``range(len(self))`` (the loop's
    permutation, or this rank's shard of it) and yields ``(grids, labels)`` batch by batch in that order.
    """

    def __init__(self, streamed: StreamedGrids, rows, y, pin_memory: bool = False):
        self.streamed, self.rows = streamed, np.asarray(rows, dtype=np.int64)
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64))
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, order: torch.Tensor, batch_size: int):
        order = order.cpu()
        local = batches_of(order, batch_size)
        for idx, (kept, grids) in zip(local, self.streamed.read([self.rows[b.numpy()] for b in local], self.pin_memory)):
            if len(grids):
                yield grids, self.y[idx[kept]]


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()
