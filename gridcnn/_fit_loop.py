"""The epoch loop of `GridCNNClassifier.fit`: epochs, validation, early stopping, checkpoints, callbacks, and what
Ctrl-C or a NaN loss leaves behind. One process or one rank of several (DistributedDataParallel under torchrun)."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ._distributed import sync_buffers
from ._training import data_device, evaluate, steps_per_epoch, train_epoch
from .checkpoint import TrainingState, save_checkpoint


def run_epochs(est, X, y, X_val, y_val, state: TrainingState, data, rank: int = 0, world_size: int = 1) -> None:
    """Train ``est.model_`` until ``state`` says the fit is finished, recording each epoch in ``est.history_``.

    After each epoch: the record, a checkpoint (rank 0, when ``est.checkpoint`` is set), the progress bar, the
    callbacks. Ctrl-C, a NaN loss or any error restores the last finished epoch's weights and re-raises; at the end,
    early stopping's best weights are restored.
    """
    dev = est.device_
    # Data that fits stays on the device for the whole fit; otherwise it stays put and batches travel.
    home = data_device(X.nbytes + (0 if X_val is None else X_val.nbytes), dev)
    Xt, yt = torch.from_numpy(X).to(home), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(home)
    if X_val is not None:
        Xv, yv = torch.from_numpy(X_val).to(home), torch.from_numpy(np.asarray(y_val, dtype=np.int64)).to(home)
    net = est.model_
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    if est.compile:
        net = torch.compile(net)
    patience = est.n_iter_no_change if est.early_stopping else None
    progress = None
    if est.verbose and rank == 0:
        from ._progress import FitProgress

        steps = steps_per_epoch(len(Xt), est.batch_size, world_size)
        progress = FitProgress(state.epochs, steps, done=state.done).__enter__()
    last_good = copy.deepcopy(est.model_.state_dict())
    try:
        while not state.finished(patience):
            t0 = time.perf_counter()
            e = state.done
            on_batch = (lambda b, e=e: progress.batch(e, b)) if progress else None
            # Each epoch's shuffle and dropout draw from a seed of their own, so an epoch can be replayed (or a
            # fit resumed from a checkpoint) without carrying generator state along.
            epoch_seed = state.seed + 1_000_003 * (est.n_iter_ + 1)
            gen = torch.Generator().manual_seed(epoch_seed)
            torch.manual_seed(epoch_seed + rank)
            loss, acc = train_epoch(net, Xt, yt, est.optimizer_, state.scheduler, est.batch_size, gen, on_batch,
                                    augment=getattr(est, "augment_", None), precision=est.precision, scaler=state.scaler,
                                    rank=rank, world_size=world_size)
            sync_buffers(est.model_)
            record = {"epoch": est.n_iter_ + 1, "train_loss": loss, "train_accuracy": acc,
                      "lr": est.optimizer_.param_groups[0]["lr"]}
            if X_val is not None:
                record["valid_loss"], record["valid_accuracy"] = evaluate(
                    est.model_, Xv, yv, 1024, est.precision, rank, world_size)
            record["time"] = time.perf_counter() - t0
            est.history_.append(record)
            est.n_iter_ += 1
            state.done += 1
            last_good = copy.deepcopy(est.model_.state_dict())
            if patience is not None:
                if record["valid_loss"] < state.best_loss - 1e-4:
                    state.best_loss, state.best_state, state.stale = record["valid_loss"], last_good, 0
                else:
                    state.stale += 1
            if est.checkpoint is not None and rank == 0:
                save_checkpoint(est.checkpoint, est, state, data)
            if progress:
                progress.epoch_end(record)
            for callback in est.callbacks or ():
                callback(est, record)
    except BaseException:
        # Keep the last finished epoch (Ctrl-C, a NaN loss or a crash spoils only the epoch in progress), so the
        # caller can still save or use the model, then stop as asked.
        est.model_.load_state_dict(last_good)
        raise
    finally:
        if progress:
            progress.__exit__(None, None, None)
    if state.best_state is not None:
        est.model_.load_state_dict(state.best_state)
