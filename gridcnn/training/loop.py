"""The epoch loop: trains a network on a data source for a number of epochs and calls hooks after each one.

The loop owns the order of events and nothing else. It does not know the estimator: it gets the network, its
optimiser, the data, a small config and a list of hooks, and returns the records. Everything that happens between
epochs (the NaN guard, early stopping, checkpoints, the progress bar, user callbacks) is a `Hook` with its own state,
which a checkpoint saves and a resume restores. One process or one rank of several (DistributedDataParallel under
torchrun).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gridcnn.training.distributed import ceil_div, shard, sync_buffers
from gridcnn.training.steps import evaluate, train_epoch
from gridcnn.training.threads import fit_threads


@dataclass(frozen=True)
class LoopConfig:
    """How to train: all `run_epochs` needs to know besides the network, the data and the hooks."""

    epochs: int  # epochs this fit plans, those done before a resume included
    batch_size: int  # rows per optimiser step, summed over the ranks
    seed: int  # the fit's seed; every epoch derives its own from it
    precision: str = "32"
    compile: bool = False
    augment: Callable | None = None  # augment(xb, generator) -> xb, applied to every training batch on the device
    rank: int = 0
    world_size: int = 1


class Hook:
    """What runs between epochs. Subclasses override the events they need; each owns its state.

    The loop calls ``on_fit_start(fit)`` once (after a resume restored the state), ``on_batch_end(fit, batch)``
    after each optimiser step (only for hooks that override it), ``on_epoch_end(fit, record)`` after each epoch,
    in list order, and ``on_fit_end(fit)`` however the fit ends (``fit.completed`` tells whether it ran to its end
    or was cut short by an exception). A hook asks the loop to stop after the current epoch by setting
    ``fit.stop = True``; the fit then counts as completed. Raising in ``on_epoch_end`` rejects that epoch: the loop
    puts the previous epoch's weights back and re-raises. ``state_dict()`` returns what the hook needs to go on
    after a resume (tensors and JSON-ready values); ``load_state_dict`` takes it back; ``name`` keys it.
    """

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_fit_start(self, fit: FitState) -> None:
        pass

    def on_batch_end(self, fit: FitState, batch: int) -> None:
        pass

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        pass

    def on_fit_end(self, fit: FitState) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class FitState:
    """A fit in progress, as hooks see it: the network, what trains it, the records and how far it got."""

    model: torch.nn.Module  # the plain module, never the DDP or compiled wrapper
    optimizer: torch.optim.Optimizer
    config: LoopConfig
    hooks: list = field(default_factory=list)
    scheduler: object = None
    scaler: object = None
    history: list = field(default_factory=list)  # one record per epoch, earlier fits' included
    schedule: Callable | None = None  # epochs -> a fresh per-batch schedule over that many epochs (see `replan`)
    done: int = 0  # epochs finished in this fit
    stop: bool = False  # set by a hook: stop after the current epoch
    completed: bool = False  # set by the loop when the fit ends without an exception

    def replan(self, epochs: int) -> None:
        """Make this fit ``epochs`` epochs long (a time limit's plan), its learning-rate schedule laid anew over them.

        The new schedule is taken to the step the old one had reached, so the epochs done keep their rates and the
        rest of the schedule, its annealing included, fits in the epochs now planned: stopping a one-cycle schedule
        part way would leave the rate near its peak and the network unsettled.
        """
        self.config = dataclasses.replace(self.config, epochs=int(epochs))
        if self.schedule is None or self.scheduler is None:
            return
        steps = self.scheduler.last_epoch
        self.scheduler = self.schedule(self.config.epochs)
        if self.scheduler is not None:  # a plan of one epoch has a constant rate
            for _ in range(steps):  # at most a few thousand steps of arithmetic, once or twice a fit
                self.scheduler.step()

    def state_dict(self) -> dict:
        """The loop's state and every hook's: what a checkpoint holds."""
        return {
            "seed": self.config.seed,
            "epochs": self.config.epochs,
            "done": self.done,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "hooks": {h.name: h.state_dict() for h in self.hooks},
        }

    def load_state_dict(self, state: dict) -> None:
        """Go on from ``state`` (as `state_dict` made it); the history is replaced in place, so its owner sees it."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.done = state["done"]
        self.config = dataclasses.replace(self.config, epochs=int(state["epochs"]))  # a time limit's plan, if any
        self.history[:] = state["history"]
        torch.set_rng_state(state["rng"])
        for hook in self.hooks:
            if hook.name in state["hooks"]:
                hook.load_state_dict(state["hooks"][hook.name])


class TensorSource:
    """Training rows held as two tensors (grids and class indices), on the device when they fit there.

    The data-source protocol of `run_epochs`: ``len(source)`` rows, and ``source.batches(order, batch_size)``
    yielding ``(xb, yb)`` tensors for the rows of ``order`` in that order, ``batch_size`` at a time. The loop draws
    the order (one permutation per epoch, as a sampler does), so a source that reads the same rows from disk trains
    the same network.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, device: torch.device) -> TensorSource:
        return cls(torch.from_numpy(X).to(device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device))

    def __len__(self) -> int:
        return self.X.shape[0]

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = order.to(self.X.device)
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            yield self.X[idx], self.y[idx]


def epoch_order(n: int, config: LoopConfig, generator: torch.Generator):
    """(this rank's rows of the epoch in order, its rows per step, the generator its augmentation draws from).

    Every rank draws the same permutation and takes its shard (`shard`) and its share of each global batch, so one
    step sees ``batch_size`` rows in all, as in a single process.
    """
    order = torch.randperm(n, generator=generator)
    if config.world_size == 1:
        return order, config.batch_size, generator
    # Each rank its own augmentation draws: the shared generator would shift every rank's rows alike.
    own = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator)) + config.rank)
    return shard(order, config.rank, config.world_size), ceil_div(config.batch_size, config.world_size), own


def run_epochs(model, optimizer, train, config: LoopConfig, hooks: Sequence[Hook] = (), *, valid=None,
               scheduler=None, schedule=None, scaler=None, history: list | None = None,
               resume: dict | None = None) -> list[dict]:
    """Train ``model`` on ``train`` until ``config.epochs`` epochs of this fit ran or a hook stopped it.

    Parameters
    ----------
    model : torch.nn.Module
        The network, on its device.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters.
    train : TensorSource or another data source
        Training rows (see `TensorSource` for the protocol).
    config : LoopConfig
        Epochs, batch size, seed, precision, augmentation, rank.
    hooks : sequence of Hook
        Called in order after each epoch.
    valid : TensorSource, default=None
        Rows to report ``valid_loss`` and ``valid_accuracy`` on after each epoch.
    scheduler, scaler : default=None
        A per-batch learning-rate schedule; fp16's gradient scaler.
    schedule : callable, default=None
        ``schedule(epochs)`` returns a per-batch schedule over that many epochs (or None for a constant rate); the
        loop builds ``scheduler`` from it, and builds it again when a hook re-plans the fit (`FitState.replan`).
    history : list, default=None
        Records of earlier epochs; this fit's records are appended to this very list.
    resume : dict, default=None
        A `FitState.state_dict` to go on from (read from a checkpoint).

    Returns
    -------
    history : list of dict
        ``history`` with one record per epoch of this fit: epoch, train_loss, train_accuracy, lr, valid_loss and
        valid_accuracy (with ``valid``), time.
    """
    if schedule is not None:
        scheduler = schedule(config.epochs)
    fit = FitState(model, optimizer, config, list(hooks), scheduler, scaler, [] if history is None else history,
                   schedule)
    with fit_threads():  # one thread on a loaded machine where OpenMP's threads would spin (training/threads.py)
        return _run(fit, train, valid, resume)


def _wrap(model, config: LoopConfig, device):
    """What the epochs call: the model, in DistributedDataParallel under torchrun, compiled when asked. Built again
    whenever the trainable parameters change (fine-tuning's frozen epochs): DDP reduces the gradients of the
    parameters that required one when it was built, and fails on a step where one of them gets none."""
    net = model
    if config.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    return net


def _run(fit: FitState, train, valid, resume) -> list[dict]:
    """`run_epochs` once its state is set up."""
    model, optimizer, config, scaler = fit.model, fit.optimizer, fit.config, fit.scaler
    if resume is not None:
        fit.load_state_dict(resume)
    device = next(model.parameters()).device  # the data may stay in CPU memory when it does not fit on the GPU
    net, trainable = None, None
    batch_hooks = [h for h in fit.hooks if type(h).on_batch_end is not Hook.on_batch_end]
    on_batch = (lambda b: [h.on_batch_end(fit, b) for h in batch_hooks]) if batch_hooks else None
    # What an exception rolls back to: the last epoch whose hooks all ran (Ctrl-C, a NaN loss or a crash spoils only
    # the epoch in progress, so the caller can still save or use the model).
    last_good = (copy.deepcopy(model.state_dict()), len(fit.history), fit.done)
    try:
        for hook in fit.hooks:
            hook.on_fit_start(fit)
        while fit.done < fit.config.epochs and not fit.stop:  # a hook may re-plan the epochs (`FitState.replan`)
            t0 = time.perf_counter()
            if trainable != (now := [p.requires_grad for p in model.parameters()]):
                net, trainable = _wrap(model, config, device), now  # a hook froze or unfroze layers
            epoch = len(fit.history) + 1
            # Each epoch's shuffle, augmentation and dropout draw from a seed of their own, so an epoch can be
            # replayed (or a fit resumed from a checkpoint) without carrying generator state along.
            epoch_seed = config.seed + 1_000_003 * epoch
            order, batch_size, generator = epoch_order(len(train), config, torch.Generator().manual_seed(epoch_seed))
            torch.manual_seed(epoch_seed + config.rank)
            loss, acc = train_epoch(net, train.batches(order, batch_size), optimizer, fit.scheduler, device=device,
                                    augment=config.augment, generator=generator, precision=config.precision,
                                    scaler=scaler, on_batch=on_batch)
            sync_buffers(model)
            record = {"epoch": epoch, "train_loss": loss, "train_accuracy": acc, "lr": optimizer.param_groups[0]["lr"]}
            if valid is not None:
                record["valid_loss"], record["valid_accuracy"] = evaluate(model, valid, 1024, config.precision,
                                                                          config.rank, config.world_size)
            record["time"] = time.perf_counter() - t0
            fit.history.append(record)
            fit.done += 1
            for hook in fit.hooks:
                hook.on_epoch_end(fit, record)
            last_good = (copy.deepcopy(model.state_dict()), len(fit.history), fit.done)
        fit.completed = True
    except BaseException:
        weights, n_records, fit.done = last_good
        model.load_state_dict(weights)
        del fit.history[n_records:]
        raise
    finally:
        for hook in fit.hooks:
            hook.on_fit_end(fit)
    return fit.history
