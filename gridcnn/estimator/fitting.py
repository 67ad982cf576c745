"""How `GridCNNClassifier` trains: the one path of `fit` and `partial_fit`, from X and y to the epoch loop.

In order: check the labels, turn X into training data (decided once: grids in memory, or files read as the loop
asks for them), build the network or keep the fitted one, draw the seed (or read it back from a checkpoint), hold
out the validation rows, then hand the loop the network, the data, a `LoopConfig` and the hooks: the estimator's
own (from its parameters) followed by those the caller gave `fit`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.utils import check_random_state

from gridcnn.adapters.text import token_table as emb
from gridcnn.backbone import grid_defaults, resolve_spec
from gridcnn.backbone.pretrained import load_pretrained
from gridcnn.estimator.grids import grids, stream_labels
from gridcnn.estimator.inputs import check_labels
from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile import checkpoint as ckpt
from gridcnn.modelfile.codec import estimator_config
from gridcnn.streaming import StreamedGrids, StreamSource
from gridcnn.training.augment import infer_modality, resolve_augment
from gridcnn.training.discriminative import phased_scheduler, stage_groups
from gridcnn.training.distributed import broadcast_int, ensure_process_group, world
from gridcnn.training.hooks.callbacks import Callbacks
from gridcnn.training.hooks.checkpoint import Checkpoint
from gridcnn.training.hooks.early_stopping import EarlyStopping
from gridcnn.training.hooks.fine_tune import FineTune
from gridcnn.training.hooks.nan_guard import NanGuard
from gridcnn.training.loop import FitState, Hook, LoopConfig, TensorSource, run_epochs
from gridcnn.training.probe import probe_head
from gridcnn.training.progress import ProgressBar
from gridcnn.training.steps import (auto_epochs, check_network_fits, data_device, make_optimizer, make_scheduler,
                                    resolve_device, steps_per_epoch)


def fit(est, X, y, *, incremental: bool, epochs, classes=None, resume_from=None, hooks: Sequence[Hook] = ()):
    """Train ``est`` on X and y: go on training the fitted network when ``incremental`` (and there is one), else
    build a new one; ``resume_from`` a checkpoint goes on from its last finished epoch. ``hooks`` run after the
    estimator's own, for this fit only."""
    hooks = check_hooks(hooks)
    y = _labels(est, y)
    reset = not (incremental and est.__sklearn_is_fitted__())
    rank, world_size, _ = world()
    data, y = _training_data(est, X, y, reset=reset, rank=rank, world_size=world_size)
    y_idx = _encode_labels(est, y, reset=reset, classes=classes)
    _prepare(est, data, reset)
    if est.checkpoint is not None:
        ckpt.check_checkpoint_path(est.checkpoint)
    if world_size > 1:
        ensure_process_group(est.device_)
    seed, fingerprint, resumed = _seed(est, data, y_idx, hooks, rank, resume_from)
    train, valid = _split(est, data, y_idx, seed)
    steps = steps_per_epoch(len(train), est.batch_size, world_size)
    if epochs == "auto":
        epochs = auto_epochs(steps)
    est.max_epochs_ = epochs
    config = LoopConfig(epochs=epochs, batch_size=est.batch_size, seed=seed, precision=est.precision,
                        compile=est.compile, augment=est.augment_ or None, rank=rank, world_size=world_size)

    # Forking the RNG keeps the caller's global torch seed untouched while making this fit reproducible.
    devices = [est.device_.index or 0] if est.device_.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        rule = fine_tune_rule(est) if reset else FineTuneRule()  # a warm start goes on training every layer as it is
        freeze = min(rule.freeze, epochs)
        schedule = _network(est, reset, steps, pretrained=resume_from is None, freeze=freeze)  # a checkpoint holds all
        if rule.probe and resume_from is None:
            probe_head(est.model_, train, len(est.classes_), est.batch_size)
        tuning = [FineTune(freeze, KEEP_STATISTICS, rule.keep_statistics)] if freeze or rule.keep_statistics else []
        hooks = [*tuning, *_own_hooks(est, rank, steps), *hooks]
        for hook in hooks:  # which fit a checkpoint holds (the estimator, its data), for a resume to check
            if isinstance(hook, Checkpoint):
                hook.bind(estimator_config(est, history=False), fingerprint)
        resume = None if resumed is None else ckpt.resume_state(*resumed, est.optimizer_)
        try:
            run_epochs(est.model_, est.optimizer_, train, config, hooks, valid=valid, schedule=schedule,
                       scaler=_scaler(est), history=est.history_, resume=resume)
        finally:
            est.n_iter_ = len(est.history_)
    return est


def check_hooks(hooks) -> list:
    """``fit(hooks=...)`` takes training-loop hooks, found wrong before anything is trained."""
    hooks = list(hooks or ())
    for i, hook in enumerate(hooks):
        if not isinstance(hook, Hook):
            raise GridCNNError(
                f"hooks[{i}] is {hook!r} ({type(hook).__name__}), not a gridcnn.training.loop.Hook. Subclass Hook, or "
                "pass a plain function called as callback(estimator, record) in callbacks=[...] instead."
            )
    return hooks


class _FittedState(Hook):
    """Keep the estimator's ``history_`` and ``n_iter_`` as of the last finished epoch, so the hooks after it (user
    callbacks, a run folder saving the model) see the estimator as it stands."""

    def __init__(self, est):
        self.est = est

    def on_fit_start(self, fit: FitState) -> None:
        self.on_fit_end(fit)  # a resume has just put back the checkpoint's history

    def on_epoch_end(self, fit: FitState, record: dict) -> None:
        self.on_fit_end(fit)

    def on_fit_end(self, fit: FitState) -> None:
        self.est.history_, self.est.n_iter_ = fit.history, len(fit.history)


def _own_hooks(est, rank: int, steps: int) -> list:
    """What the estimator's parameters ask to run after each epoch, in this order: the NaN guard first (a spoilt
    epoch reaches no other hook), early stopping before the checkpoint (which saves its state), the checkpoint
    before the progress bar and user callbacks."""
    hooks = [NanGuard(), _FittedState(est)]
    if est.early_stopping:
        hooks.append(EarlyStopping(est.n_iter_no_change))
    if est.checkpoint is not None and rank == 0:
        hooks.append(Checkpoint(est.checkpoint))
    if est.verbose and rank == 0:
        hooks.append(ProgressBar(steps))
    if est.callbacks:
        plain = [c for c in est.callbacks if not isinstance(c, Hook)]
        if plain:
            hooks.append(Callbacks(est, plain))
        hooks += [c for c in est.callbacks if isinstance(c, Hook)]
    return hooks


def _labels(est, y):
    if y is None:
        raise GridCNNError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    if torch.is_tensor(y):
        y = y.detach().cpu().numpy()
    if len(np.asarray(y)):  # missing, mixed or continuous labels, before X's checks (empty: sklearn's message)
        check_labels(y)
    return y


class _InMemory:
    """Training grids held as one float32 array: split by rows, kept on the device when they fit there."""

    def __init__(self, X: np.ndarray):
        self.X = self.items = X

    def sources(self, X, y, X_val, y_val, device):
        # Data that fits stays on the device for the whole fit; otherwise it stays put and batches travel.
        home = data_device(X.nbytes + (0 if X_val is None else X_val.nbytes), device)
        return (TensorSource.from_arrays(X, y, home),
                None if X_val is None else TensorSource.from_arrays(X_val, y_val, home))


class _Streamed:
    """Training files decoded batch by batch (or read from their cache) in the loop's order: split by row
    positions, the same split train_test_split makes of the grids themselves."""

    def __init__(self, files: StreamedGrids):
        self.X = files

    @property
    def items(self):
        return self.X.rows()  # once prepared: the files its cache build kept

    def sources(self, rows, y, rows_val, y_val, device):
        pin = device.type == "cuda"
        return (StreamSource(self.X, rows, y, pin),
                None if rows_val is None else StreamSource(self.X, rows_val, y_val, pin))


def _training_data(est, X, y, *, reset: bool, rank: int, world_size: int):
    """(the training data, its labels): the one place a fit tells streamed files from grids in memory."""
    if isinstance(X, StreamedGrids):
        return _Streamed(X), stream_labels(est, X, y, reset=reset, rank=rank, world_size=world_size)
    X, y = grids(est, X, reset=reset, y=y, check_table=lambda X: _check_table(est, X))
    return _InMemory(X), y


def _encode_labels(est, y, *, reset: bool, classes):
    if reset:
        est.classes_ = np.unique(y if classes is None else np.asarray(classes))
        if len(est.classes_) < 2:
            raise GridCNNError(
                f"{type(est).__name__} needs at least 2 classes, but y holds 1 class only: "
                f"{est.classes_.tolist()[0]!r}. Add examples of another class."
            )
    unseen = np.setdiff1d(np.unique(y), est.classes_)
    if len(unseen):
        raise GridCNNError(
            f"y holds labels not seen when the network was built: {unseen.tolist()}. Known classes: "
            f"{est.classes_.tolist()}. Pass every class to the first partial_fit with classes=..."
        )
    return np.searchsorted(est.classes_, y)


def _check_table(est, X):
    """Warn about (or refuse) 2-D input that looks like an unordered table rather than a sequence."""
    if est.check_input == "off" or est.input_shape is not None:
        return
    from gridcnn.suitability import quick_check

    report = quick_check(X, random_state=0)
    if not report.suitable:
        message = f"X looks like a table, not a grid: {report.evidence[0]} {report.recommendation}"
        if est.check_input == "error":
            raise GridCNNError(message + " Pass check_input='off' to train anyway.")
        warnings.warn(message, UserWarning, stacklevel=7)  # the caller's fit or partial_fit


def _prepare(est, data, reset: bool) -> None:
    """The fitted attributes a new network needs (device, spec, empty history), and the augmentation."""
    if reset:
        est.device_ = resolve_device(est.device)
        est.spec_ = network_spec(est, est.input_shape_)
        est.history_, est.n_iter_ = [], 0
    if est.spec_.embedding is not None and isinstance(data, _InMemory):
        emb.check_token_ids(data.X, est.input_shape_, est.spec_.embedding[0], type(est).__name__)
    if reset or not hasattr(est, "augment_"):  # a model read back by gridcnn.load has no augment_ yet
        est.modality_ = infer_modality(est.input_shape_, est.spec_) if est.modality == "auto" else est.modality
        est.augment_ = resolve_augment(
            est.modality_, est.input_shape_, shift=est.augment_shift, flip=est.augment_flip,
            time_mask=est.augment_time_mask, freq_mask=est.augment_freq_mask,
            token_dropout=est.augment_token_dropout)
    if reset and est.modality_ == "text" and est.spec_.embedding is None and est.input_shape_[2] == 1:
        raise GridCNNError(
            f"X holds text grids one column wide, {est.input_shape_}: token ids (EmbeddingGrid(output='ids')), "
            f"not vectors. A network over ids needs the table they index: pass {type(est).__name__}("
            "embedding=...) the adapter's embedding (a recipe does it itself), or use output='vectors'."
        )


def _seed(est, data, y_idx, hooks, rank: int, resume_from):
    """(the fit's seed, the training data's fingerprint or None, the checkpoint resumed from as (header, tensors)
    or None): a resume takes the seed it started with, once its parameters and data are found the same."""
    checkpointed = (est.checkpoint is not None and rank == 0) or any(
        isinstance(h, Checkpoint) for h in [*hooks, *(est.callbacks or ())])
    fingerprint = None
    if checkpointed or resume_from is not None:  # hashing X costs a pass over it: only when a checkpoint needs it
        fingerprint = ckpt.data_fingerprint(data.X, y_idx, est.input_shape_, est.classes_)
    if resume_from is None:
        seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
        return broadcast_int(seed, est.device_), fingerprint, None
    header, tensors = ckpt.read_checkpoint(resume_from)
    ckpt.check_resumable(header, est.get_params(deep=False), fingerprint, resume_from)
    return header["seed"], fingerprint, (header, tensors)


def _split(est, data, y_idx, seed: int):
    """The training and validation sources: ``validation_fraction`` of the rows held out, stratified."""
    X, X_val, y_val = data.items, None, None
    fraction = est.validation_fraction or (0.1 if est.early_stopping else None)
    if fraction is not None:
        counts = np.bincount(y_idx)
        counts = counts[counts > 0]
        stratify = y_idx if counts.min() >= 2 else None
        size = fraction
        if stratify is not None and np.ceil(fraction * len(y_idx)) < len(counts):
            # A stratified share smaller than the classes cannot hold one of each (28 rows, 4 classes, 10%):
            # take one row per class instead (4 of 28), as small zero-config folders need.
            size = len(counts)
        from sklearn.model_selection import train_test_split  # here: predicting never needs it, nor sklearn.metrics

        X, X_val, y_idx, y_val = train_test_split(X, y_idx, test_size=size, random_state=seed, stratify=stratify)
    return data.sources(X, y_idx, X_val, y_val, est.device_)


# Frozen body's batch norm in eval mode during the frozen epochs (see GridCNNClassifier's freeze_epochs).
KEEP_STATISTICS = True


@dataclasses.dataclass(frozen=True)
class FineTuneRule:
    """How a fit that builds the network fine-tunes it: epochs with the body frozen, the first stage's rate as a
    fraction of ``lr``, the head started from a linear probe (`gridcnn.training.probe`), and the body's batch-norm
    statistics kept for the whole fit."""

    freeze: int = 0
    body_factor: float = 1.0
    probe: bool = False
    keep_statistics: bool = False


def fine_tune_rule(est) -> FineTuneRule:
    """``freeze_epochs`` and ``body_lr_factor`` resolved. With pretrained weights the head always starts as a linear
    probe; "auto" then trains every layer from the first epoch with rates from lr / 10 up, the body's batch norm
    keeping ImageNet's statistics, and a number of frozen epochs runs fastai's ``fine_tune``. Without pretrained
    weights: neither."""
    pretrained = est.pretrained is not False
    auto = est.freeze_epochs == "auto"
    factor = (AUTO_BODY_LR_FACTOR if pretrained else 1.0) if est.body_lr_factor == "auto" else float(est.body_lr_factor)
    if auto:
        return FineTuneRule(0, factor, probe=pretrained, keep_statistics=pretrained)
    return FineTuneRule(int(est.freeze_epochs), factor, probe=pretrained)


AUTO_BODY_LR_FACTOR = 0.1


def _network(est, reset: bool, steps: int, pretrained: bool = True, freeze: int = 0):
    """Build the network (when ``reset``; from ``est.pretrained``'s weights when ``pretrained``) and its optimiser
    (when there is none), and return this fit's schedule: epochs -> a per-batch schedule over them, which the loop
    builds, and builds again when a time limit re-plans the epochs (`FitState.replan`). With ``freeze`` frozen
    epochs the schedule runs one cycle over them and one over the rest."""
    if reset:
        check_network_fits(est.spec_, est.input_shape_, len(est.classes_), est.batch_size, est.device_)
        est.model_ = est.spec_.build(est.input_shape_, len(est.classes_))
        if est.pretrained is not False and pretrained:
            load_pretrained(est.model_, est.spec_, est.architecture, est.pretrained)
        est.model_ = est.model_.to(est.device_)
        if est.spec_.embedding is not None:
            emb.load_pretrained(est.model_, est.embedding)
    if reset or not hasattr(est, "optimizer_"):
        # A model read back by gridcnn.load (or unpickled from a GPU) has weights but no optimiser state:
        # fine-tuning it starts a fresh optimiser, as after any model download.
        factor = fine_tune_rule(est).body_factor
        if est.spec_.embedding is not None:
            params = emb.param_groups(est.model_, est.lr, est.embedding_lr)
        elif factor != 1.0:
            params = stage_groups(est.model_, factor)
        else:
            params = est.model_.parameters()
        est.optimizer_ = make_optimizer(est.optimizer, params, est.lr, est.weight_decay)
    for group in est.optimizer_.param_groups:  # a schedule from an earlier fit must not leak into this one
        group["lr"] = est.lr * group.get(emb.LR_SCALE, 1.0)
    peaks = [g["lr"] for g in est.optimizer_.param_groups]

    def schedule(epochs: int):
        if 0 < freeze < epochs:
            return phased_scheduler(est.lr_schedule, est.optimizer_, freeze, epochs, steps)
        return make_scheduler(est.lr_schedule if epochs > 1 else "constant", est.optimizer_, peaks, epochs, steps)
    return schedule


def _scaler(est):
    if est.precision != "fp16":
        return None
    return torch.amp.GradScaler(est.device_.type)


def network_spec(est, grid=None):
    """The `BackboneSpec` ``est``'s parameters describe for grids of shape ``grid`` (C, H, W)."""
    keys = ("filters", "kernel_size", "stride", "padding", "pool", "pool_size", "batch_norm", "block_dropout",
            "hidden", "dropout", "global_pool", "activation")
    params = {k: getattr(est, k) for k in keys}
    layers = ("filters", "kernel_size", "pool")
    if est.architecture is None and est.modality == "text" and all(params[k] is None for k in layers):
        # Token-by-embedding grids get Kim's network: the image default's 3x3 kernels over the embedding axis
        # stayed at chance on Rotten Tomatoes (train accuracy 49.6% after 8 of its epochs).
        spec = resolve_spec("kim", **params)
    else:
        if est.architecture is None and grid is not None and params["filters"] is None and params["pool"] is None:
            # the default network, sized to the grid; a dropout given still wins
            params.update({k: v for k, v in grid_defaults(grid).items() if params.get(k) is None})
        spec = resolve_spec(est.architecture, **params)
    if est.embedding is not None:
        spec = dataclasses.replace(spec, embedding=emb.table_shape(est.embedding),
                                   embedding_dropout=float(est.embedding_dropout))
    return spec
