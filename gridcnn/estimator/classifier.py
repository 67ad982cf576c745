"""`GridCNNClassifier`: the configurable grid CNN as a scikit-learn classifier."""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from gridcnn.adapters.text import token_table as emb
from gridcnn.modelfile import checkpoint as ckpt
from gridcnn.training.augment import MODALITIES, infer_modality, resolve_augment
from gridcnn.training.distributed import broadcast_int, ensure_process_group, world
from gridcnn.training.loop import Hook, LoopConfig, TensorSource, run_epochs
from gridcnn.training.hooks.callbacks import Callbacks
from gridcnn.training.hooks.checkpoint import Checkpoint
from gridcnn.training.hooks.early_stopping import EarlyStopping
from gridcnn.training.hooks.nan_guard import NanGuard
from gridcnn.estimator.inputs import (as_cells, check_axes, check_callbacks, check_input_shape, check_labels, check_sizes,
                      explain_shape)
from gridcnn.estimator.params import validate_params
from gridcnn.estimator.pipeline import grid_shape
from gridcnn.training.progress import ProgressBar
from gridcnn.training.steps import (auto_epochs, check_network_fits, data_device, make_optimizer, make_scheduler, predict_logits,
                        resolve_device, steps_per_epoch)
from gridcnn.backbone import ACTIVATIONS, POOLS, PRESETS, grid_defaults, resolve_spec
from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.codec import estimator_config, write_model
from gridcnn.streaming import StreamedGrids, StreamSource

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_SEQ = (list, tuple)


class GridCNNClassifier(ClassifierMixin, BaseEstimator):
    """A convolutional network for grids of shape (C, H, W): images, spectrograms, token matrices, signals.

    The network is [Conv, activation, Pool] blocks, then fully connected layers and a linear head. Start from a
    preset (``architecture``) and override any layer parameter; parameters left ``None`` come from the preset.

    Parameters
    ----------
    architecture : {"simple", "lenet5", "kim"} or None, default=None
        Preset to start from. None means "simple" (3x3 blocks with batch norm, a dense layer of 128) sized to the
        grid when neither ``filters`` nor ``pool`` is given: three blocks of 32, 64 and 128 filters, of which the
        last 1-3 pool, as many as leave the shorter side at least 2 cells (8x8 digits: 8 -> 8 -> 4 -> 2; 28x28
        MNIST: 28 -> 14 -> 7 -> 3) and dropout 0.5 before the head; see `gridcnn.backbone.grid_defaults`.
        "simple" by name is two blocks of 32 and 64 filters, each pooling, and dropout 0.25. With
        ``modality="text"`` (a recipe's text adapter passes it on), None means "kim".
    filters : int or list of int, default=None
        Filters per block. A list gives one value per block and sets the number of blocks.
    kernel_size : int, (h, w) or list, default=None
        Kernel size; ``w="full"`` spans the whole grid width (text). A square size on an axis of length 1 is 1.
    stride : int, (h, w) or list, default=None
        Convolution stride.
    padding : "same", "valid", int, (h, w) or list, default=None
        Convolution padding.
    pool : {"max", "avg", "sum", "none"} or list, default=None
        Pooling after each block.
    pool_size : int, (h, w) or list, default=None
        Pool window (and stride).
    batch_norm : bool or list of bool, default=None
        Batch normalisation after each convolution.
    block_dropout : float or list of float, default=None
        Dropout after each block.
    hidden : int or list of int, default=None
        Units of the fully connected layers before the output layer; ``[]`` for none.
    dropout : float, default=None
        Dropout in the fully connected part.
    global_pool : {"max", "avg", "none"}, default=None
        Global pooling of each feature map before the fully connected part.
    activation : {"relu", "gelu", "elu", "leaky_relu", "tanh"}, default=None
        Activation after convolutions and hidden layers.
    max_epochs : int or "auto", default="auto"
        Passes over the training data in `fit`. "auto" sizes them to the data with a budget of optimiser steps:
        ``ceil(2000 / steps_per_epoch)`` epochs, at least 10 and at most 100 (steps_per_epoch = training rows /
        ``batch_size``, after the validation rows are held out). Small data sets get enough steps to converge
        (898 digits: 100 epochs of 15 steps), large ones no more than 10 passes (60,000 MNIST digits: 10 epochs of
        938 steps).
    batch_size : int, default=64
        Rows per mini-batch.
    lr : float, default=3e-3
        Learning rate (the peak rate of the "onecycle" and "warmup_cosine" schedules).
    optimizer : {"adamw", "adam", "sgd", "rmsprop"}, default="adamw"
        Optimiser; "sgd" uses Nesterov momentum 0.9.
    weight_decay : float, default=0.05
        Weight decay (decoupled, with the default AdamW). 0.05 with the default network's dropout 0.5 took digits'
        five seeds from 98.11-98.78% to 98.89-99.22%; the text recipe found the same value steadies its seeds.
    lr_schedule : {"onecycle", "warmup_cosine", "cosine", "constant"}, default="onecycle"
        Learning-rate schedule over the fit's epochs, stepped every batch: "onecycle" warms up over the first 30%
        of the steps to ``lr`` and anneals to nearly 0 (Smith, 2018; fastai's ``fit_one_cycle``);
        "warmup_cosine" warms up over the first 5% only; "cosine" starts at ``lr``.
    modality : {"auto", "image", "audio", "sequence", "text"}, default="auto"
        What the grids are, which chooses the "auto" augmentation below. A recipe passes on its adapter's modality
        (`gridcnn.workflow.recipes.build_pipeline`); "auto" otherwise reads it from the network and the grid: "text" for
        full-width kernels (the "kim" preset), "sequence" for grids one row high, else "image" (a spectrogram
        given without its adapter is then augmented as an image).
    augment_shift : int or "auto", default="auto"
        Translate each training grid by a random offset of up to this many cells (zero filled), drawn anew every
        epoch. Images shift along height and width, spectrograms along time only, sequences along their length,
        texts not at all. "auto": round(min(H, W) / 12) cells for images (1 on 8x8 digits, 2 on 28x28 MNIST),
        round(frames / 16) for spectrograms, round(length / 10) for sequences, 0 for texts. 0 turns it off.
    augment_flip : bool, default=False
        Mirror half of the training grids left to right (images whose classes survive a mirror).
    augment_time_mask, augment_freq_mask : int or "auto", default="auto"
        SpecAugment (Park et al., 2019): zero a band of up to this many time frames (grid rows) / frequency bands
        (grid columns) in each training grid. "auto": ceil(frames / 8) and ceil(bands / 8) for spectrograms, 0
        for every other modality.
    augment_token_dropout : float, default=0.0
        Zero each token (grid row) of each training text with this probability.
    validation_fraction : float or None, default=None
        Fraction of the training rows held out (stratified) to report validation loss and accuracy each epoch.
        None holds out nothing, or 0.1 when ``early_stopping`` is on.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved for ``n_iter_no_change`` epochs and restore the best weights.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    input_shape : tuple or None, default=None
        Reshape each row of 2-D input to ``(h, w)`` or ``(c, h, w)``; None treats 2-D rows as 1 x L sequences.
    device : str, default="auto"
        "auto" picks cuda, then mps, then cpu; or "cpu", "cuda", "cuda:N", "mps". Under torchrun each process
        takes the GPU of its LOCAL_RANK.
    precision : {"32", "bf16", "fp16"}, default="32"
        "bf16" and "fp16" train and predict under autocast (mixed precision); "fp16" also scales the loss so small
        gradients do not underflow. Fastest on GPUs with tensor cores.
    compile : bool, default=False
        Train through ``torch.compile`` of the network: slower first epoch, faster after it.
    checkpoint : str, Path or None, default=None
        File to write the training state to after every epoch, atomically: weights, optimiser, schedule, epoch,
        RNG state, early-stopping state and history. ``fit(X, y, resume_from=...)`` continues from it.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split; a fixed value gives identical predictions
        on CPU.
    verbose : int, default=0
        1 shows a progress bar with loss, validation accuracy and ETA.
    callbacks : list of callable or None, default=None
        Each is called as ``callback(estimator, record)`` at the end of every epoch; ``record`` is the epoch's
        history dict. A `gridcnn.training.loop.Hook` instance joins the loop's hooks instead (it can stop the fit
        after an epoch, as ``gridcnn.training.hooks.time_limit.TimeLimit`` does).
    warm_start : bool, default=False
        When True, `fit` continues training the fitted network instead of starting again.
    check_input : {"warn", "error", "off"}, default="warn"
        For 2-D input, run the quick suitability check and warn (or refuse) when the columns look like an
        unordered table, which a CNN cannot exploit.
    embedding : str, path or (vocabulary, matrix), default=None
        Kim's non-static CNN: the network starts with a token table, initialised from this pretrained table (the
        value the text adapter's ``embedding`` takes: "minilm-static", a word-vector file, or a pair) and trained
        with the network. X then holds token ids, grids (1, tokens, 1) as ``EmbeddingGrid(output="ids")`` makes
        them (a recipe with that adapter setting passes its ``embedding`` on). The table is trained without
        weight decay. None: X holds the grids themselves.
    embedding_lr : float or "auto", default="auto"
        Learning rate of the token table (its peak with one-cycle schedules; it follows ``lr_schedule``). "auto":
        ``lr / 50``, small enough that fine-tuning moves pretrained vectors instead of overwriting them.
    embedding_dropout : float, default=0.0
        Dropout on the embedded token vectors in training (with ``embedding`` only). On the text recipe 0.25
        lowered the mean over seeds 0-4 from 80.87% to 80.74% (seed 0 alone: 81.0% to 81.5%); 0.5 cost 1.5 points.

    Notes
    -----
    Started by ``torchrun --nproc_per_node=N``, `fit` trains one model with DistributedDataParallel: every process
    takes its shard of each epoch (reshuffled per epoch) and its share of each batch of ``batch_size`` rows, the
    gradients are averaged, and only rank 0 writes the checkpoint. Every process ends with the same model.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Size of the second axis of X at fit.
    input_shape_ : tuple of int
        The (C, H, W) grid the network was built for.
    spec_ : BackboneSpec
        The resolved network description.
    model_ : torch.nn.Module
        The trained network.
    max_epochs_ : int
        The epochs the last `fit` planned (``max_epochs`` with "auto" resolved; 1 after `partial_fit`).
    modality_ : str
        The modality the augmentation was chosen for ("auto" resolved).
    augment_ : Augment
        The augmentation applied to training batches, in cells (see `gridcnn.training.augment.resolve_augment`).
    history_ : list of dict
        One record per epoch: epoch, train_loss, train_accuracy, lr, time, and valid_loss / valid_accuracy.
    n_iter_ : int
        Epochs trained so far.
    device_ : torch.device
        Where the network lives.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GridCNNClassifier(input_shape=(8, 8), max_epochs=3, random_state=0).fit(X[:500], y[:500])
    >>> clf.predict(X[500:503]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "architecture": [StrOptions(set(PRESETS.names())), None],
        "filters": [_POSITIVE_INT, *_SEQ, None],
        "kernel_size": [_POSITIVE_INT, *_SEQ, None],
        "stride": [_POSITIVE_INT, *_SEQ, None],
        "padding": [StrOptions({"same", "valid"}), Interval(Integral, 0, None, closed="left"), *_SEQ, None],
        "pool": [StrOptions(set(POOLS)), *_SEQ, None],
        "pool_size": [_POSITIVE_INT, *_SEQ, None],
        "batch_norm": ["boolean", *_SEQ, None],
        "block_dropout": [Interval(Real, 0, 1, closed="left"), *_SEQ, None],
        "hidden": [_POSITIVE_INT, *_SEQ, None],
        "dropout": [Interval(Real, 0, 1, closed="left"), None],
        "global_pool": [StrOptions({"max", "avg", "none"}), None],
        "activation": [StrOptions(set(ACTIVATIONS)), None],
        "max_epochs": [_POSITIVE_INT, StrOptions({"auto"})],
        "batch_size": [_POSITIVE_INT],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions({"adamw", "adam", "sgd", "rmsprop"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"constant", "cosine", "onecycle", "warmup_cosine"})],
        "modality": [StrOptions({"auto", *MODALITIES})],
        "augment_shift": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "augment_flip": ["boolean"],
        "augment_time_mask": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "augment_freq_mask": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "augment_token_dropout": [Interval(Real, 0, 1, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [_POSITIVE_INT],
        "input_shape": [*_SEQ, None],
        "device": [str],
        "precision": [StrOptions({"32", "bf16", "fp16"})],
        "compile": ["boolean"],
        "checkpoint": [str, os.PathLike, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [*_SEQ, None],
        "warm_start": ["boolean"],
        "check_input": [StrOptions({"warn", "error", "off"})],
        "embedding": [str, os.PathLike, tuple, list, None],
        "embedding_lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "embedding_dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        architecture=None,
        *,
        filters=None,
        kernel_size=None,
        stride=None,
        padding=None,
        pool=None,
        pool_size=None,
        batch_norm=None,
        block_dropout=None,
        hidden=None,
        dropout=None,
        global_pool=None,
        activation=None,
        max_epochs="auto",
        batch_size=64,
        lr=3e-3,
        optimizer="adamw",
        weight_decay=0.05,
        lr_schedule="onecycle",
        modality="auto",
        augment_shift="auto",
        augment_flip=False,
        augment_time_mask="auto",
        augment_freq_mask="auto",
        augment_token_dropout=0.0,
        validation_fraction=None,
        early_stopping=False,
        n_iter_no_change=5,
        input_shape=None,
        device="auto",
        precision="32",
        compile=False,
        checkpoint=None,
        random_state=None,
        verbose=0,
        callbacks=None,
        warm_start=False,
        check_input="warn",
        embedding=None,
        embedding_lr="auto",
        embedding_dropout=0.0,
    ):
        self.architecture = architecture
        self.filters = filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pool = pool
        self.pool_size = pool_size
        self.batch_norm = batch_norm
        self.block_dropout = block_dropout
        self.hidden = hidden
        self.dropout = dropout
        self.global_pool = global_pool
        self.activation = activation
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.modality = modality
        self.augment_shift = augment_shift
        self.augment_flip = augment_flip
        self.augment_time_mask = augment_time_mask
        self.augment_freq_mask = augment_freq_mask
        self.augment_token_dropout = augment_token_dropout
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.input_shape = input_shape
        self.device = device
        self.precision = precision
        self.compile = compile
        self.checkpoint = checkpoint
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.check_input = check_input
        self.embedding = embedding
        self.embedding_lr = embedding_lr
        self.embedding_dropout = embedding_dropout

    # -- public API ---------------------------------------------------------------------------------------------

    def fit(self, X, y, *, resume_from=None):
        """Train the network on grids ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like or tensor of shape (n, C, H, W), (n, H, W) or (n, L)
            Grids; 2-D rows are 1 x L sequences unless ``input_shape`` reshapes them.
        y : array-like of shape (n,)
            Class labels of any hashable type.
        resume_from : str or Path, default=None
            A checkpoint written by a fit with ``checkpoint=...`` (or a run folder holding one): go on from its last
            finished epoch instead of starting again. With the same parameters and data the result equals an
            uninterrupted fit's (bit for bit on CPU).

        Returns
        -------
        self : GridCNNClassifier
            The fitted estimator.
        """
        self._validate_parameters()
        incremental = self.warm_start and resume_from is None
        return self._fit(X, y, incremental=incremental, epochs=self.max_epochs, resume_from=resume_from)

    def partial_fit(self, X, y, classes=None):
        """Train for one more epoch on ``X, y``, building the network on the first call.

        Parameters
        ----------
        X : array-like or tensor of shape (n, C, H, W), (n, H, W) or (n, L)
            Grids.
        y : array-like of shape (n,)
            Labels.
        classes : array-like of shape (n_classes,), default=None
            Every class that will ever be seen; needed on the first call when this batch lacks some.

        Returns
        -------
        self : GridCNNClassifier
            The estimator, trained one more epoch.
        """
        if not self.__sklearn_is_fitted__():
            self._validate_parameters()
        return self._fit(X, y, incremental=True, epochs=1, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, one row per grid, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like or tensor of grids
            Same layout and grid size as in `fit`.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
            Rows sum to 1.
        """
        check_is_fitted(self)
        n, batches = self._batches(X, 1024)
        if self.spec_.embedding is not None:
            batches = self._checked_ids(batches)
        logits = predict_logits(self.model_, batches, n, self.device_, self.precision)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        """The most probable class of each grid.

        Parameters
        ----------
        X : array-like or tensor of grids
            Same layout and grid size as in `fit`.

        Returns
        -------
        y : ndarray of shape (n,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # first, so an unfitted estimator raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]

    def summary(self, input_shape=None, n_classes=None):
        """Keras-style table of layers, output shapes and parameters.

        Parameters
        ----------
        input_shape : tuple (C, H, W), default=None
            Needed before `fit`; after it, defaults to the fitted grid shape.
        n_classes : int, default=None
            Outputs of the head; defaults to the fitted classes, or 2 before `fit`.

        Returns
        -------
        summary : gridcnn.backbone.Summary
            Prints as the table; ``rows`` and totals are attributes.
        """
        shape = input_shape or getattr(self, "input_shape_", None)
        if shape is None:
            raise GridCNNError("summary() before fit needs input_shape=(channels, height, width).")
        n_out = n_classes or (len(self.classes_) if hasattr(self, "classes_") else 2)
        return self._resolve_spec(tuple(shape)).summary(tuple(shape), n_out)

    def save(self, path):
        """Write the fitted model to the folder ``path`` (weights as safetensors, the rest as JSON).

        Parameters
        ----------
        path : str or Path
            Folder to create; `gridcnn.load` reads it back without running any code from it.
        """
        check_is_fitted(self)
        write_model(path, self)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state and self.device_.type != "cpu":  # so the pickle opens on a machine without the GPU
            state["model_"] = copy.deepcopy(self.model_).cpu()
            state.pop("optimizer_", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "model_" in state:
            self.device_ = next(self.model_.parameters()).device

    # -- internals ----------------------------------------------------------------------------------------------

    def _validate_parameters(self, names=None):
        validate_params(self, names)
        names = list(names or self._parameter_constraints)
        if "callbacks" in names:
            check_callbacks(self.callbacks)
        if "input_shape" in names:
            check_input_shape(self.input_shape)
        for name in {"kernel_size", "stride", "padding", "pool_size"} & set(names):
            check_sizes(name, getattr(self, name))

    def _resolve_spec(self, grid=None):
        keys = ("filters", "kernel_size", "stride", "padding", "pool", "pool_size", "batch_norm", "block_dropout",
                "hidden", "dropout", "global_pool", "activation")
        params = {k: getattr(self, k) for k in keys}
        layers = ("filters", "kernel_size", "pool")
        if self.architecture is None and self.modality == "text" and all(params[k] is None for k in layers):
            # Token-by-embedding grids get Kim's network: the image default's 3x3 kernels over the embedding axis
            # stayed at chance on Rotten Tomatoes (train accuracy 49.6% after 8 of its epochs).
            return self._with_embedding(resolve_spec("kim", **params))
        if self.architecture is None and grid is not None and params["filters"] is None and params["pool"] is None:
            # the default network, sized to the grid; a dropout given still wins
            params.update({k: v for k, v in grid_defaults(grid).items() if params.get(k) is None})
        return self._with_embedding(resolve_spec(self.architecture, **params))

    def _with_embedding(self, spec):
        if self.embedding is not None:
            spec = dataclasses.replace(spec, embedding=emb.table_shape(self.embedding),
                                       embedding_dropout=float(self.embedding_dropout))
        return spec

    def _grids(self, X, *, reset: bool, y=None):
        """Validate X (and y) and return float32 grids of shape (n, C, H, W)."""
        if torch.is_tensor(X):
            X = X.detach().cpu().numpy()
        X = as_cells(X)
        if not reset and isinstance(X, np.ndarray):
            # Before validate_data, whose "X has 1 features, expecting 8" would hide that it is the grid that differs.
            hint = explain_shape(X.shape, self.input_shape_, self.n_features_in_, type(self).__name__)
            if hint:
                raise GridCNNError(hint)
            if X.ndim >= 3:
                self._check_grid(X.shape, self.input_shape_)
        kw = dict(allow_nd=True, dtype=np.float32, reset=reset)
        if y is None:
            X = validate_data(self, X, **kw)
        else:
            X, y = validate_data(self, X, y, **kw)
        if X.ndim > 4:
            raise GridCNNError(
                f"X must be 2-D (n, L), 3-D (n, H, W) or 4-D (n, C, H, W). Got a {X.ndim}-D array of shape {X.shape}."
            )
        check_axes(X.shape)
        shape = grid_shape(X.shape, self.input_shape) if reset else self.input_shape_
        self._check_grid(X.shape, shape)
        if reset and y is not None and X.ndim == 2:
            self._check_table(X)
        X = X.reshape((X.shape[0], *shape))
        if reset:
            self.input_shape_ = tuple(int(v) for v in shape)
        return X if y is None else (X, y)

    def _stream_grids(self, X, y, *, reset: bool, rank: int, world_size: int):
        """Prepare a `StreamedGrids` for training (grid shape; the cache, built on its first use) and return the
        labels of its rows (files its cache build skipped are dropped with their labels)."""
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise GridCNNError(
                f"y must hold one label per file of the StreamedGrids: it has {len(X)} files and y has shape "
                f"{y.shape}. Pass the labels that go with its paths, in the same order."
            )
        if world_size > 1:  # a cache build under torchrun splits the files between the ranks
            ensure_process_group(self.device_ if not reset else resolve_device(self.device))
        X.prepare(rank, world_size)
        grid = tuple(X.grid_shape_)
        if not reset:
            self._check_grid((len(X), *grid), self.input_shape_)
        elif self.input_shape is not None and tuple(int(v) for v in self.input_shape) not in (grid, grid[1:]):
            raise GridCNNError(
                f"input_shape={tuple(self.input_shape)} cannot reshape streamed grids: they come as {grid} "
                "(C, H, W) from the adapter. Leave input_shape=None."
            )
        if reset:
            self.input_shape_, self.n_features_in_ = grid, grid[0]
        return y[X.kept_]

    def _batches(self, X, size: int):
        """(rows in X, iterator over X's validated grids ``size`` rows at a time): a memory-mapped X is read (and
        copied) one batch at a time."""
        if isinstance(X, StreamedGrids):  # files decoded batch by batch, in order
            X.prepare()
            self._check_grid((len(X), *X.grid_shape_), self.input_shape_)
            rows = X.rows()
            return len(rows), (g.numpy() for _, g in X.read([rows[s : s + size] for s in range(0, len(rows), size)]))
        if torch.is_tensor(X):
            X = X.detach().cpu()
        if not isinstance(getattr(X, "shape", None), tuple) or len(X.shape) == 0 or X.shape[0] == 0:
            # Lists and the like are in memory already; empty X raises sklearn's "Found array with 0 sample(s)".
            X = self._grids(X, reset=False)
            return len(X), (X[start : start + size] for start in range(0, len(X), size))
        take = X.iloc if hasattr(X, "iloc") else X
        return X.shape[0], (self._grids(take[s : s + size], reset=False) for s in range(0, X.shape[0], size))

    def _checked_ids(self, batches):
        for xb in batches:
            emb.check_token_ids(xb, self.input_shape_, self.spec_.embedding[0], type(self).__name__)
            yield xb

    def _check_grid(self, x_shape, grid):
        """X's rows must hold the grid the network was built for (same values, same (C, H, W) when 4-D)."""
        if int(np.prod(x_shape[1:])) != int(np.prod(grid)) or (len(x_shape) == 4 and tuple(x_shape[1:]) != tuple(grid)):
            raise GridCNNError(
                f"X has grids of shape {tuple(x_shape[1:])}, but this {type(self).__name__} was fitted on grids of "
                f"shape {tuple(grid)} (C, H, W). Resize the input to the fitted grid size."
            )

    def _encode_labels(self, y, *, reset: bool, classes):
        if reset:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            if len(self.classes_) < 2:
                raise GridCNNError(
                    f"{type(self).__name__} needs at least 2 classes, but y holds 1 class only: "
                    f"{self.classes_.tolist()[0]!r}. Add examples of another class."
                )
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise GridCNNError(
                f"y holds labels not seen when the network was built: {unseen.tolist()}. Known classes: "
                f"{self.classes_.tolist()}. Pass every class to the first partial_fit with classes=..."
            )
        return np.searchsorted(self.classes_, y)

    def _check_table(self, X):
        """Warn about (or refuse) 2-D input that looks like an unordered table rather than a sequence."""
        if self.check_input == "off" or self.input_shape is not None:
            return
        from gridcnn.suitability import quick_check

        report = quick_check(X, random_state=0)
        if not report.suitable:
            message = f"X looks like a table, not a grid: {report.evidence[0]} {report.recommendation}"
            if self.check_input == "error":
                raise GridCNNError(message + " Pass check_input='off' to train anyway.")
            warnings.warn(message, UserWarning, stacklevel=3)

    def _fit(self, X, y, *, incremental: bool, epochs: int, classes=None, resume_from=None):
        """The one path of `fit` and `partial_fit`: go on training the fitted network when ``incremental`` (and
        there is one), else build a new one; ``resume_from`` a checkpoint goes on from its last finished epoch."""
        if y is None:
            raise GridCNNError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        if len(np.asarray(y)):  # missing, mixed or continuous labels, before X's checks (empty: sklearn's message)
            check_labels(y)
        reset = not (incremental and self.__sklearn_is_fitted__())
        rank, world_size, _ = world()
        streamed = isinstance(X, StreamedGrids)
        if streamed:
            files = X
            y = self._stream_grids(X, y, reset=reset, rank=rank, world_size=world_size)
        else:
            X, y = self._grids(X, reset=reset, y=y)
        y_idx = self._encode_labels(y, reset=reset, classes=classes)
        if reset:
            self.device_ = resolve_device(self.device)
            self.spec_ = self._resolve_spec(self.input_shape_)
            self.history_, self.n_iter_ = [], 0
        if self.spec_.embedding is not None and not streamed:
            emb.check_token_ids(X, self.input_shape_, self.spec_.embedding[0], type(self).__name__)
        if reset or not hasattr(self, "augment_"):  # a model read back by gridcnn.load has no augment_ yet
            self.modality_ = infer_modality(self.input_shape_, self.spec_) if self.modality == "auto" else self.modality
            self.augment_ = resolve_augment(
                self.modality_, self.input_shape_, shift=self.augment_shift, flip=self.augment_flip,
                time_mask=self.augment_time_mask, freq_mask=self.augment_freq_mask,
                token_dropout=self.augment_token_dropout)
        if reset and self.modality_ == "text" and self.spec_.embedding is None and self.input_shape_[2] == 1:
            raise GridCNNError(
                f"X holds text grids one column wide, {self.input_shape_}: token ids (EmbeddingGrid(output='ids')), "
                f"not vectors. A network over ids needs the table they index: pass {type(self).__name__}("
                "embedding=...) the adapter's embedding (a recipe does it itself), or use output='vectors'."
            )
        if self.checkpoint is not None:
            ckpt.check_checkpoint_path(self.checkpoint)
        if world_size > 1:
            ensure_process_group(self.device_)
        # Hashing X costs a pass over it: only when a checkpoint is written or checked.
        data = None
        if self.checkpoint is not None or resume_from is not None:
            data = ckpt.data_fingerprint(X, y_idx, self.input_shape_, self.classes_)
        if resume_from is not None:
            header, tensors = ckpt.read_checkpoint(resume_from)
            ckpt.check_resumable(header, self.get_params(deep=False), data, resume_from)
            seed = header["seed"]
        else:
            seed = broadcast_int(int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)), self.device_)
        X_val = y_val = None
        fraction = self.validation_fraction or (0.1 if self.early_stopping else None)
        if fraction is not None:
            counts = np.bincount(y_idx)
            counts = counts[counts > 0]
            stratify = y_idx if counts.min() >= 2 else None
            size = fraction
            if stratify is not None and np.ceil(fraction * len(y_idx)) < len(counts):
                # A stratified share smaller than the classes cannot hold one of each (28 rows, 4 classes, 10%):
                # take one row per class instead (4 of 28), as small zero-config folders need.
                size = len(counts)
            # A stream is split by row positions: the same split train_test_split makes of the grids themselves.
            X, X_val, y_idx, y_val = train_test_split(X.rows() if streamed else X, y_idx, test_size=size,
                                                      random_state=seed, stratify=stratify)
        if streamed:  # files decoded batch by batch (or read from their cache) in the loop's order
            pin = self.device_.type == "cuda"
            train = StreamSource(files, X if fraction is not None else files.rows(), y_idx, pin)
            valid = None if X_val is None else StreamSource(files, X_val, y_val, pin)
        else:
            # Data that fits stays on the device for the whole fit; otherwise it stays put and batches travel.
            home = data_device(X.nbytes + (0 if X_val is None else X_val.nbytes), self.device_)
            train = TensorSource.from_arrays(X, y_idx, home)
            valid = None if X_val is None else TensorSource.from_arrays(X_val, y_val, home)
        steps = steps_per_epoch(len(train), self.batch_size, world_size)
        if epochs == "auto":
            epochs = auto_epochs(steps)
        self.max_epochs_ = epochs
        config = LoopConfig(epochs=epochs, batch_size=self.batch_size, seed=seed, precision=self.precision,
                            compile=self.compile, augment=self.augment_ or None, rank=rank, world_size=world_size)

        # Forking the RNG keeps the caller's global torch seed untouched while making this fit reproducible.
        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            if reset:
                check_network_fits(self.spec_, self.input_shape_, len(self.classes_), self.batch_size, self.device_)
                self.model_ = self.spec_.build(self.input_shape_, len(self.classes_)).to(self.device_)
                if self.spec_.embedding is not None:
                    emb.load_pretrained(self.model_, self.embedding)
            if reset or not hasattr(self, "optimizer_"):
                # A model read back by gridcnn.load (or unpickled from a GPU) has weights but no optimiser state:
                # fine-tuning it starts a fresh optimiser, as after any model download.
                params = (self.model_.parameters() if self.spec_.embedding is None else
                          emb.param_groups(self.model_, self.lr, self.embedding_lr))
                self.optimizer_ = make_optimizer(self.optimizer, params, self.lr, self.weight_decay)
            for group in self.optimizer_.param_groups:  # a schedule from an earlier fit must not leak into this one
                group["lr"] = self.lr * group.get(emb.LR_SCALE, 1.0)
            peaks = [g["lr"] for g in self.optimizer_.param_groups]

            def schedule(planned: int):  # built by the loop, and again when a time limit re-plans the epochs
                return make_scheduler(self.lr_schedule if planned > 1 else "constant", self.optimizer_, peaks,
                                      planned, steps)

            resume = None if resume_from is None else ckpt.resume_state(header, tensors, self.optimizer_)
            try:
                run_epochs(self.model_, self.optimizer_, train, config, self._hooks(data, steps, rank), valid=valid,
                           schedule=schedule, scaler=self._make_scaler(), history=self.history_, resume=resume)
            finally:
                self.n_iter_ = len(self.history_)
        return self

    def _hooks(self, data, steps: int, rank: int) -> list:
        """What runs after each epoch, in this order: the NaN guard first (a spoilt epoch reaches no other hook),
        early stopping before the checkpoint (which saves its state), the checkpoint before user callbacks."""
        hooks = [NanGuard()]
        if self.early_stopping:
            hooks.append(EarlyStopping(self.n_iter_no_change))
        if self.checkpoint is not None and rank == 0:
            hooks.append(Checkpoint(self.checkpoint, estimator_config(self, history=False), data))
        if self.verbose and rank == 0:
            hooks.append(ProgressBar(steps))
        if self.callbacks:
            plain = [c for c in self.callbacks if not isinstance(c, Hook)]
            if plain:
                hooks.append(Callbacks(self, plain))
            hooks += [c for c in self.callbacks if isinstance(c, Hook)]  # such as the CLI's --time-limit
        return hooks

    def _make_scaler(self):
        if self.precision != "fp16":
            return None
        return torch.amp.GradScaler(self.device_.type)

