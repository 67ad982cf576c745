"""The schema of a model folder's config.json, checked whole before anything is built from it.

The config records the SHA-256 of the weights and of itself, so an edit or damage is refused before this runs. But
a checksum is no signature: anyone can write a file and its checksum, and what the config says is turned into
objects (an estimator, a network, adapters with attributes set from it). So every key is checked
against what `gridcnn.modelfile.persistence.save` writes (known keys, types, ranges, option names, dtype names, sizes a
machine can hold) and against the weights (the network the spec describes must have exactly the weights' tensors
and shapes; the classes must fill the output layer), and the first wrong key is named. `validate_config` is the
one entry point.
"""

from __future__ import annotations

import dataclasses
import re
from numbers import Integral, Real

import numpy as np

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

# Bounds that no trained model reaches and that keep a hostile file from asking for terabytes before a shape check.
MAX_AXIS = 1 << 24  # cells along one grid axis (a 16M-sample waveform)
MAX_CELLS = 1 << 24  # cells in one grid: 64 MB of float32, and predict pads a call to 64 grids (4 GB)
MAX_WIDTH = 1 << 16  # filters of a block, units of a dense layer
MAX_BLOCKS = 256
MAX_CLASSES = 1 << 20
TOP_KEYS = {"format", "format_version", "versions", "weights_sha256", "config_sha256", "estimator", "adapters"}
ESTIMATOR_KEYS = {"params", "classes", "classes_dtype", "n_features_in", "input_shape", "spec", "history", "n_iter"}
SPEC_KEYS = {"branches", "hidden", "dropout", "global_pool", "activation"}
# Only networks with a token table (non-static) write the first two; only the families' presets the others.
OPTIONAL_SPEC_KEYS = {"embedding", "embedding_dropout", "normalize", "bn_eps", "min_size"}
MAX_TABLE_ROWS = 1 << 24  # rows of a token table: float32 ids hold every id below 2**24 exactly
BLOCK_KEYS = {"filters", "kernel_size", "stride", "padding", "pool", "pool_size", "batch_norm", "dropout"}
ADAPTER_KEYS = {"name", "params", "state"}
# Label dtypes a model file may name: bool, signed/unsigned ints, floats, fixed-width unicode. Never object.
LABEL_KINDS = "biufU"
GLOBAL_POOLS = ("max", "avg")  # the spec stores None for no global pool


class _Bad(Exception):
    """A wrong key: ``key`` names it (dotted path), the message says what was expected and what came."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def validate_config(config, arrays: dict, where, estimator_class) -> None:
    """Check a parsed config.json (and the weights' ``arrays``) before anything is built from it.

    Parameters
    ----------
    config : object
        What ``json.loads`` returned for the config file.
    arrays : dict of str to ndarray
        The tensors of ``model.safetensors`` (already checked against ``weights_sha256``).
    where : str or Path
        The config file, for the message.
    estimator_class : type
        GridCNNClassifier (passed in: this module imports nothing that imports it back).

    Raises
    ------
    GridCNNError
        Naming the first wrong key, what it holds and what was expected.
    """
    try:
        _check(config, arrays, estimator_class)
    except _Bad as bad:
        text = str(bad).rstrip(".")
        raise GridCNNError(
            f"{where}: {bad.key}: {text}{' ' if text.endswith('?') else '. '}gridcnn never writes such a config (and "
            "its checksum matches, so it was written this way, not damaged on disk): restore the original model "
            "folder, or train the model again."
        ) from None


def _check(config, arrays: dict, estimator_class) -> None:
    _keys(config, "config", TOP_KEYS, TOP_KEYS)
    est = config["estimator"]
    _keys(est, "estimator", ESTIMATOR_KEYS, ESTIMATOR_KEYS)
    params = _params(est["params"], estimator_class)
    shape = _int_list(est["input_shape"], "estimator.input_shape", 3, 3, MAX_AXIS)
    if int(np.prod(shape, dtype=np.int64)) > MAX_CELLS:
        raise _Bad("estimator.input_shape", f"a grid of {shape} holds more than {MAX_CELLS:,} cells")
    n_features = _int(est["n_features_in"], "estimator.n_features_in", 1, int(np.prod(shape, dtype=np.int64)))
    if n_features not in (shape[0], shape[1], int(np.prod(shape))):
        raise _Bad("estimator.n_features_in", f"must be the channels, height or cells of the grid {shape}. "
                   f"Got {n_features} instead")
    classes = _classes(est["classes"], est["classes_dtype"])
    spec = _spec(est["spec"])
    _history(est["history"])
    _int(est["n_iter"], "estimator.n_iter", 0, 10**9)
    if params.get("input_shape") is not None and int(np.prod(params["input_shape"])) != int(np.prod(shape)):
        raise _Bad("estimator.params.input_shape", f"{params['input_shape']} does not hold the {shape} grid of "
                   "estimator.input_shape")
    _matches_weights(spec, shape, len(classes), arrays)
    if not isinstance(config["adapters"], list):
        raise _Bad("adapters", f"must be a list. Got {_kind(config['adapters'])} instead")
    for i, adapter in enumerate(config["adapters"]):
        # The last adapter makes the network's input: its state must give exactly that grid.
        _adapter(adapter, i, arrays, shape if i == len(config["adapters"]) - 1 else None)
    stray = sorted({k.split(".")[0] for k in arrays} - {"model"} - {f"adapter{i}" for i in range(len(config["adapters"]))})
    if stray:
        raise _Bad("adapters", f"the weights file holds arrays for {stray}, which the config does not list")


# -- pieces ---------------------------------------------------------------------------------------------------


def _kind(value) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, (dict, list)) else type(value).__name__


def _keys(d, key: str, required: set, known: set) -> None:
    if not isinstance(d, dict):
        raise _Bad(key, f"must be an object. Got {_kind(d)} instead")
    for k in d:
        if k not in known:
            raise _Bad(f"{key}.{k}" if key != "config" else k, f"unknown key.{did_you_mean(k, known)} "
                       f"Known keys: {', '.join(sorted(known))}")
    missing = sorted(required - set(d))
    if missing:
        raise _Bad(f"{key}.{missing[0]}" if key != "config" else missing[0], "missing")


def _int(value, key: str, lo: int, hi: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or not lo <= value <= hi:
        raise _Bad(key, f"must be an int in [{lo:,}, {hi:,}]. Got {_kind(value)} instead")
    return int(value)


def _int_list(value, key: str, n_min: int, n_max: int, hi: int) -> list:
    if not isinstance(value, list) or not n_min <= len(value) <= n_max:
        size = f"{n_min}" if n_min == n_max else f"{n_min} to {n_max}"
        raise _Bad(key, f"must be a list of {size} ints. Got {_kind(value)} instead")
    return [_int(v, f"{key}[{i}]", 1, hi) for i, v in enumerate(value)]


def _params(params, GridCNNClassifier) -> dict:  # noqa: N803 (the class itself)
    valid = GridCNNClassifier().get_params(deep=False)
    if not isinstance(params, dict):
        raise _Bad("estimator.params", f"must be an object. Got {_kind(params)} instead")
    for k in params:
        if k not in valid:
            raise _Bad(f"estimator.params.{k}", f"GridCNNClassifier has no parameter {k!r}.{did_you_mean(k, valid)}")
    for k in ("callbacks", "checkpoint"):  # model files never store them: code, and a path on another machine
        if params.get(k) is not None:
            raise _Bad(f"estimator.params.{k}", f"must be null in a model file. Got {_kind(params[k])} instead")
    checked = GridCNNClassifier(**params)
    for k in params:
        try:
            checked._validate_parameters([k])
            if k in ("filters", "hidden") and params[k] is not None:
                values = params[k] if isinstance(params[k], list) else [params[k]]
                for v in values:
                    _int(v, f"estimator.params.{k}", 1, MAX_WIDTH)
        except GridCNNError as exc:
            raise _Bad(f"estimator.params.{k}", str(exc).rstrip(".")) from None
    return params


def _classes(classes, dtype_name) -> np.ndarray:
    if not isinstance(dtype_name, str):
        raise _Bad("estimator.classes_dtype", f"must be a numpy dtype string such as '<i8' or '<U5'. Got {_kind(dtype_name)} instead")
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        raise _Bad("estimator.classes_dtype", f"{dtype_name!r} is not a numpy dtype name (such as '<i8' or '<U5')") from None
    if dtype.kind not in LABEL_KINDS or dtype.itemsize > 4096:
        raise _Bad("estimator.classes_dtype", f"{dtype_name!r} is not a label dtype: expected bool, int, float or "
                   "unicode ('?', '<i8', '<f8', '<U5')")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES:
        raise _Bad("estimator.classes", f"must be a list of 2 to {MAX_CLASSES:,} labels. Got {_kind(classes)} instead")
    for i, c in enumerate(classes):
        if not isinstance(c, (str, bool, Real)) or c is None:
            raise _Bad(f"estimator.classes[{i}]", f"must be a string or a number. Got {_kind(c)} instead")
    try:
        out = np.array(classes, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise _Bad("estimator.classes", f"its labels are not of classes_dtype {dtype_name!r}") from None
    if dtype.kind == "U" and any(str(c) != o for c, o in zip(classes, out.tolist())):
        raise _Bad("estimator.classes", f"a label is longer than classes_dtype {dtype_name!r} holds")
    if len(np.unique(out)) != len(out) or not np.all(out[:-1] < out[1:]):
        raise _Bad("estimator.classes", "must be distinct and sorted (as np.unique gives them)")
    return out


def _size(value, key: str, *, full: bool = False, zero: bool = False) -> None:
    lo = 0 if zero else 1
    if isinstance(value, list):
        if len(value) != 2:
            raise _Bad(key, f"must be an int or an [h, w] pair. Got {_kind(value)} instead")
        for i, v in enumerate(value):
            if not (full and i == 1 and v == "full"):
                _int(v, f"{key}[{i}]", lo, MAX_AXIS)
    else:
        _int(value, key, lo, MAX_AXIS)


def _spec(spec):
    from gridcnn.backbone import ACTIVATIONS, POOLS, BackboneSpec

    _keys(spec, "estimator.spec", SPEC_KEYS, SPEC_KEYS | OPTIONAL_SPEC_KEYS)
    if spec.get("embedding") is not None:
        rows, dim = _int_list(spec["embedding"], "estimator.spec.embedding", 2, 2, MAX_TABLE_ROWS)
        if dim > MAX_WIDTH:
            raise _Bad("estimator.spec.embedding[1]", f"must be an int in [1, {MAX_WIDTH:,}]. Got {dim!r} instead")
    if "embedding_dropout" in spec:
        _fraction(spec["embedding_dropout"], "estimator.spec.embedding_dropout")
    branches = spec["branches"]
    if not isinstance(branches, list) or not 1 <= len(branches) <= MAX_BLOCKS:
        raise _Bad("estimator.spec.branches", f"must be a list of 1 to {MAX_BLOCKS} branches. Got {_kind(branches)} instead")
    for b, branch in enumerate(branches):
        key = f"estimator.spec.branches[{b}]"
        if not isinstance(branch, list) or not 1 <= len(branch) <= MAX_BLOCKS:
            raise _Bad(key, f"must be a list of 1 to {MAX_BLOCKS} blocks. Got {_kind(branch)} instead")
        for i, block in enumerate(branch):
            bk = f"{key}[{i}]"
            if isinstance(block, dict) and "kind" in block:  # a stage of an architecture family
                _stage(block, bk)
                continue
            _keys(block, bk, BLOCK_KEYS, BLOCK_KEYS)
            _int(block["filters"], f"{bk}.filters", 1, MAX_WIDTH)
            _size(block["kernel_size"], f"{bk}.kernel_size", full=True)
            _size(block["stride"], f"{bk}.stride")
            if block["padding"] not in ("same", "valid"):
                _size(block["padding"], f"{bk}.padding", zero=True)
            _option(block["pool"], f"{bk}.pool", POOLS)
            _size(block["pool_size"], f"{bk}.pool_size")
            if not isinstance(block["batch_norm"], bool):
                raise _Bad(f"{bk}.batch_norm", f"must be true or false. Got {_kind(block['batch_norm'])} instead")
            _fraction(block["dropout"], f"{bk}.dropout")
    hidden = spec["hidden"]
    if not isinstance(hidden, list) or len(hidden) > MAX_BLOCKS:
        raise _Bad("estimator.spec.hidden", f"must be a list of layer widths. Got {_kind(hidden)} instead")
    for j, units in enumerate(hidden):
        _int(units, f"estimator.spec.hidden[{j}]", 1, MAX_WIDTH)
    _fraction(spec["dropout"], "estimator.spec.dropout")
    if spec["global_pool"] is not None:
        _option(spec["global_pool"], "estimator.spec.global_pool", GLOBAL_POOLS)
    _option(spec["activation"], "estimator.spec.activation", tuple(ACTIVATIONS))
    if spec.get("normalize") is not None:
        stats = spec["normalize"]
        if not isinstance(stats, list) or len(stats) != 2 or not all(
                isinstance(v, list) and 1 <= len(v) <= 4 for v in stats) or len(stats[0]) != len(stats[1]):
            raise _Bad("estimator.spec.normalize", f"must be [mean, std], two lists of one number per channel. Got "
                       f"{_kind(stats)} instead")
        for j, (m, sd) in enumerate(zip(*stats)):
            if not all(isinstance(v, Real) and not isinstance(v, bool) for v in (m, sd)) or not 0 < sd < 1e6 or abs(m) > 1e6:
                raise _Bad(f"estimator.spec.normalize[*][{j}]", f"must be a mean and a positive std. Got {m!r}, {sd!r} instead")
    if "bn_eps" in spec and (not isinstance(spec["bn_eps"], Real) or isinstance(spec["bn_eps"], bool)
                             or not 0 < spec["bn_eps"] < 1):
        raise _Bad("estimator.spec.bn_eps", f"must be a number in (0, 1). Got {_kind(spec['bn_eps'])} instead")
    if "min_size" in spec:
        _int(spec["min_size"], "estimator.spec.min_size", 1, MAX_AXIS)
    return BackboneSpec.from_dict(spec)


def _stage(block, key: str) -> None:
    """A stage of a family (`gridcnn.backbone.blocks`): a known kind, its fields, each in range."""
    from gridcnn.backbone.blocks import KINDS, STAGE_POOLS

    if not isinstance(block["kind"], str) or block["kind"] not in KINDS:
        _option(block["kind"], f"{key}.kind", tuple(KINDS))
    cls = KINDS[block["kind"]]
    fields = {"kind", *cls.SCHEMA}
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    _keys(block, key, required | {"kind"}, fields)
    for name, check in cls.SCHEMA.items():
        if name not in block:
            continue
        value, where = block[name], f"{key}.{name}"
        if check == "width":
            _int(value, where, 1, MAX_WIDTH)
        elif check == "count":
            _int(value, where, 1, MAX_BLOCKS)
        elif check == "expand":
            _int(value, where, 1, 16)
        elif check == "stride":
            _int(value, where, 1, 4)
        elif check in ("kernel", "odd_kernel"):
            _int(value, where, 1, 15)
            if check == "odd_kernel" and value % 2 == 0:
                raise _Bad(where, f"must be an odd kernel size (the grid size is kept). Got {value!r} instead")
        elif check == "stage_pool":
            _option(value, where, STAGE_POOLS)
        elif check == "bool":
            if not isinstance(value, bool):
                raise _Bad(where, f"must be true or false. Got {_kind(value)} instead")
        else:  # a kind declared a check this schema does not know: a programming error, not a damaged file
            raise AssertionError(f"unknown check {check!r} for {cls.__name__}.{name}")


def _option(value, key: str, options) -> None:
    if value not in options or not isinstance(value, str):
        raise _Bad(key, f"must be one of {', '.join(map(repr, options))}. Got {_kind(value)} instead"
                   + ("." + did_you_mean(value, options) if isinstance(value, str) and did_you_mean(value, options) else ""))


def _fraction(value, key: str) -> None:
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 <= value < 1:
        raise _Bad(key, f"must be a number in [0, 1). Got {_kind(value)} instead")


def _history(history) -> None:
    if not isinstance(history, list):
        raise _Bad("estimator.history", f"must be a list of per-epoch records. Got {_kind(history)} instead")
    for e, record in enumerate(history):
        if not isinstance(record, dict) or not all(
                isinstance(v, (Real, type(None))) and not isinstance(v, bool) for v in record.values()):
            raise _Bad(f"estimator.history[{e}]", "must be an object of numbers (epoch, train_loss, ...)")


def _matches_weights(spec, shape, n_classes: int, arrays: dict) -> None:
    """The network the spec describes, built on the meta device (no memory), has exactly the weights' tensors."""
    import torch

    try:
        with torch.device("meta"):
            expected = spec.build(tuple(shape), n_classes).state_dict()
    except GridCNNError as exc:
        raise _Bad("estimator.spec", f"does not fit the grid {shape}: {exc}") from None
    weights = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    for name, t in expected.items():
        if name not in weights:
            raise _Bad("estimator.spec", f"describes a layer the weights lack ({name})")
        got, want = tuple(weights[name].shape), tuple(t.shape)
        if got != want:
            if name == "head.output.weight" and got[1:] == want[1:]:
                raise _Bad("estimator.classes", f"gives {n_classes} classes, but the weights hold {name} of shape {got}")
            if name.startswith("head.") and got[0] == want[0] and len(got) == 2:  # what the grid flattens to
                raise _Bad("estimator.input_shape", f"the grid {shape} gives {name} of shape {want}, but the weights "
                           f"hold {got}: the grid size (or the spec) was changed")
            raise _Bad("estimator.spec", f"gives {name} of shape {want}, but the weights hold {got}")
        if str(weights[name].dtype) != str(t.dtype).replace("torch.", ""):
            raise _Bad("estimator.spec", f"{name} is {weights[name].dtype} in the weights, not {str(t.dtype)[6:]}")
        if weights[name].dtype.kind == "f" and not np.isfinite(weights[name]).all():  # every answer would be NaN
            raise _Bad("estimator.spec", f"the weights' {name} holds NaN or infinite values: the model is damaged")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise _Bad("estimator.spec", f"describes no layer for the weights' {extra[0]}")


_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]*_$")


def _adapter(adapter, i: int, arrays: dict, grid) -> None:
    from gridcnn.adapters import ADAPTERS

    key = f"adapters[{i}]"
    _keys(adapter, key, ADAPTER_KEYS, ADAPTER_KEYS)
    if not isinstance(adapter["name"], str) or adapter["name"] not in ADAPTERS:
        raise _Bad(f"{key}.name", f"{adapter['name']!r} is not an adapter.{did_you_mean(str(adapter['name']), ADAPTERS.names())} "
                   f"Adapters: {', '.join(ADAPTERS.names())}")
    cls = ADAPTERS.get(adapter["name"])
    valid = cls().get_params(deep=False)
    params = adapter["params"]
    if not isinstance(params, dict):
        raise _Bad(f"{key}.params", f"must be an object. Got {_kind(params)} instead")
    for k in params:
        if k not in valid:
            raise _Bad(f"{key}.params.{k}", f"{cls.__name__} has no parameter {k!r}.{did_you_mean(k, valid)}")
    built = cls(**params)
    if hasattr(built, "_validate_parameters"):
        try:
            built._validate_parameters()
        except GridCNNError as exc:
            raise _Bad(f"{key}.params", str(exc).rstrip(".")) from None
    state = adapter["state"]
    if not isinstance(state, dict):
        raise _Bad(f"{key}.state", f"must be an object. Got {_kind(state)} instead")
    names = [*state, *(k[len(f"adapter{i}."):] for k in arrays if k.startswith(f"adapter{i}."))]
    for name in names:
        # Only fitted attributes (lower_case_) are set from a file, never a method, a property or a private field.
        if not _ATTRIBUTE.match(name) or hasattr(cls, name):
            raise _Bad(f"{key}.state.{name}", f"is not a fitted attribute of {cls.__name__} (those end in '_' and "
                       "are not methods or properties)")
    for name, value in state.items():  # sizes a transform allocates by: bounded before any of them is used
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, Integral) and not isinstance(v, bool) and not -MAX_AXIS <= v <= MAX_AXIS:
                raise _Bad(f"{key}.state.{name}", f"must hold sizes in [0, {MAX_AXIS:,}]. Got {_kind(v)} instead")
    fitted = cls(**params)
    for name, value in state.items():
        setattr(fitted, name, value)
    try:
        made = fitted.state_grid_shape()
    except (AttributeError, TypeError, ValueError) as exc:  # a missing attribute, a string for a size, a contradiction
        raise _Bad(f"{key}.state", f"does not describe {cls.__name__}'s grids: {exc}") from None
    if made is not None and grid is not None and list(made) != list(grid):
        raise _Bad(f"{key}.state", f"gives grids of shape {list(made)}, but the network reads {list(grid)} "
                   "(estimator.input_shape)")
