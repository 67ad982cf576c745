"""The engine that runs the decoding: a torch DataLoader whose batch sampler yields exactly the batches the training
loop asked for, in its order, so the result does not depend on how many worker processes decode them."""

from __future__ import annotations

import copy
import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.utils.data import DataLoader, Sampler

from gridcnn.exceptions import GridCNNError
from gridcnn.streaming._decode import collate


class GivenBatches(Sampler):
    """A batch sampler that yields the batches it was last given (lists of dataset indices), once, in order.

    Order is decided by whoever calls `Decoder.run` (the loop's per-epoch permutation, this rank's shard of it):
    the sampler only hands it to the DataLoader, which keeps batch order whatever the number of workers.
    """

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Decoder:
    """Decode batches of a `FileGrids` dataset in ``num_workers`` processes (0: in this process), at most
    ``prefetch`` batches ahead per worker; with ``threads``, in that many threads of this process instead.

    Workers start for each `run` and stop at its end: an epoch abandoned by an error leaves no process behind.
    """

    def __init__(self, dataset, num_workers: int, prefetch: int, pin_memory: bool = False, threads: bool = False):
        self.threads = threads and num_workers > 0
        self.dataset, self.num_workers, self.prefetch = dataset, num_workers, prefetch
        self.sampler = GivenBatches()
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=num_workers, collate_fn=collate,
            prefetch_factor=prefetch if num_workers else None, pin_memory=pin_memory,
            # The loader draws its workers' base seed from this generator: from the global one, it would shift the
            # dropout draws of training and the result would differ from the in-memory fit's.
            generator=torch.Generator().manual_seed(0),
        )

    def run(self, batches):
        """Yield ``(kept, grids, failures)`` for each batch of ``batches`` (lists of dataset indices), in order."""
        if self.threads:
            yield from self._run_threads(batches)
            return
        self.sampler.batches = [list(map(int, b)) for b in batches]
        iterator = iter(self.loader)
        try:
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                except GridCNNError:
                    raise
                except Exception as exc:
                    raise GridCNNError(worker_failure(exc)) from None
                yield item
        finally:
            del iterator  # shuts the workers down now, not whenever the generator is collected


    def _run_threads(self, batches):
        """`run` on a pool of threads: for decoders that release the GIL (libpng/zlib and PIL's resampling,
        libsndfile, soxr), threads skip the worker processes' start-up and the copy of every grid between
        processes. Each thread decodes whole batches with its own copy of the adapter."""
        local = threading.local()

        def decode(batch):
            if not hasattr(local, "adapter"):
                local.adapter = copy.deepcopy(self.dataset.adapter)
            return collate([self.dataset.decode(int(i), local.adapter) for i in batch])

        batches = [list(map(int, b)) for b in batches]
        depth = self.num_workers * self.prefetch  # the DataLoader's bound: prefetch batches ahead per worker
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="gridcnn-decode") as pool:
            pending = deque(pool.submit(decode, b) for b in batches[:depth])
            try:
                yield from self._in_order(pending, batches, depth, pool, decode)
            finally:  # an epoch abandoned (an error, a stop) cancels what was queued instead of decoding it
                for future in pending:
                    future.cancel()

    @staticmethod
    def _in_order(pending, batches, depth, pool, decode):
        for i in range(len(batches)):
            future = pending.popleft()
            if i + depth < len(batches):
                pending.append(pool.submit(decode, batches[i + depth]))
            try:
                item = future.result()
            except GridCNNError:
                raise
            except Exception as exc:  # not a bad file (FileGrids turns those into Failures): out of memory...
                raise GridCNNError(worker_failure(exc, thread=True)) from None
            yield item


def worker_failure(exc: BaseException, thread: bool = False) -> str:
    """One line saying which decoding worker failed and why, from the DataLoader's multi-line exception."""
    text = str(exc).strip()
    caught = re.match(r"Caught (\w+) in DataLoader worker process (\d+)", text)
    if thread:
        what = f"a decoding thread raised {type(exc).__name__}: {text}"
    elif caught:  # an exception inside a worker: torch re-raises it here with the worker's traceback in the message
        last = text.splitlines()[-1].strip()
        what = f"worker {caught.group(2)} raised {last}"
    else:  # killed by a signal (the out-of-memory killer's SIGKILL, a segfault in a decoder) or exited
        what = " ".join(text.split()).rstrip(". ")
    return (f"A data-decoding worker failed: {what}. The fit stopped; the model keeps the last finished epoch "
            "(and its checkpoint, when checkpoint= is set). Free memory, lower num_workers, or remove the file "
            "that crashes the decoder.")


def read_ahead(read, batches, depth: int):
    """Yield ``read(b)`` for each batch, reading up to ``depth`` batches ahead in one background thread.

    For batches taken from a memory-mapped cache: numpy copies rows without holding the GIL, so the next batches
    are paged in while the network trains on this one.
    """
    batches = list(batches)
    if depth <= 0 or len(batches) < 2:
        yield from (read(b) for b in batches)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(read, b) for b in batches[:depth]]
        for i in range(len(batches)):
            result = pending.pop(0).result()
            if i + depth < len(batches):
                pending.append(pool.submit(read, batches[i + depth]))
            yield result


def batches_of(order: torch.Tensor, size: int) -> list:
    """``order`` cut into consecutive batches of ``size`` rows (the last one shorter)."""
    return list(torch.split(order, size))
