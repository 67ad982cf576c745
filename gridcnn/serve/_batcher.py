"""Requests that arrive while the network is busy run through it together, as one batch.

No timer and no waiting: the first request starts a drain task; requests that come while a batch is computing
queue up and form the next batch. A lone request goes through at once, and under load the network sees batches
of up to ``max_rows`` rows (benchmarks/serve.py measures whether that is faster).
"""

from __future__ import annotations

import asyncio

import numpy as np
from starlette.concurrency import run_in_threadpool

from gridcnn.exceptions import GridCNNError


class Batcher:
    def __init__(self, predictor, max_rows: int = 64):
        self.predictor = predictor
        self.max_rows = max_rows
        self.pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.draining = False

    async def predict(self, inputs) -> dict:
        """The predictions for ``inputs()`` (called in a worker thread), computed in a batch with whatever other
        requests are waiting."""
        # Decoded per request: its input errors stay its own.
        grids = await run_in_threadpool(lambda: self.predictor.grids(inputs()))
        future = asyncio.get_running_loop().create_future()
        self.pending.append((grids, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, rows = [], 0
                while self.pending and (not batch or rows + len(self.pending[0][0]) <= self.max_rows):
                    batch.append(self.pending.pop(0))
                    rows += len(batch[-1][0])
                try:
                    proba = await run_in_threadpool(self.predictor.engine.predict_proba,
                                                    np.concatenate([g for g, _ in batch]))
                except GridCNNError:  # one request's grid the network overflows on: only that request is refused
                    for grids, future in batch:
                        try:
                            proba = await run_in_threadpool(self.predictor.engine.predict_proba, grids)
                            future.set_result(self.predictor.answer(proba))
                        except Exception as exc:  # noqa: BLE001 (handed to the request that caused it)
                            future.set_exception(exc)
                    continue
                except Exception as exc:  # every request of the batch gets the failure, answered as a 500
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                start = 0
                for grids, future in batch:
                    future.set_result(self.predictor.answer(proba[start : start + len(grids)]))
                    start += len(grids)
        finally:
            self.draining = False
