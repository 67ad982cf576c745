"""How gridcnn's objects become JSON and tensors and back, for model files and checkpoints alike.

One place owns: the model folder's files (`write_model` / `read_model`), the JSON form of values (`jsonable`), of
an estimator's parameters (`storable_params`) and of its fitted state (`estimator_config` /
`apply_estimator_config`), the split of a nested state into a JSON tree and named tensors (`split_tensors` /
`join_tensors`), and the check of a file's format and version (`check_format`), followed by `gridcnn.modelfile.schema` before
anything is built from what was read. Nothing here imports the estimator, so the estimator, checkpoints and model
files can all import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from safetensors import numpy as st

from gridcnn.backbone import BackboneSpec
from gridcnn.exceptions import GridCNNError

# Version 2: config.json records the SHA-256 of its own content (config_sha256), so any edit is refused.
MODEL_FORMAT, MODEL_FORMAT_VERSION = "gridcnn-model", 2
WEIGHTS, CONFIG = "model.safetensors", "config.json"
_TENSOR = "__tensor__"  # the JSON tree's stand-in for a tensor kept in the safetensors body under this name


def jsonable(value):
    """``value`` with numpy scalars and arrays, tuples and paths turned into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(type(value).__name__)


def to_json(doc: dict, what: str, **dumps) -> str:
    """``doc`` as JSON text; a parameter that is not data (an object, a function) gets one message naming the fix."""
    try:
        return json.dumps(jsonable(doc), **dumps)
    except TypeError as exc:
        raise GridCNNError(
            f"A {what} keeps parameters as JSON (so reading it never runs code), and one of them holds a {exc} "
            "object. Pass data such as word vectors as a file path instead."
        ) from None


def storable_params(est) -> dict:
    """``est``'s parameters as a model file or checkpoint stores them: data only, nothing tied to this process."""
    params = est.get_params(deep=False)
    params["callbacks"] = None  # code, not data: callbacks are never saved
    params["checkpoint"] = None  # a path on the machine that trained; a refit elsewhere must not write there
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a generator's state is not JSON; the seed a fit drew from it is kept instead
    return params


def storable_classes(classes: np.ndarray) -> np.ndarray:
    """``classes`` as a model file keeps them: bool, int, float or fixed-width unicode, never object.

    Labels that arrive as an object array (what pandas gives for text) hold one Python type (`check_labels` saw to
    it), so they have an exact numpy dtype; the array is converted to it, and the conversion is checked to lose
    nothing. A label no dtype holds exactly gets a message naming it and the fix, not a broken file."""
    if classes.dtype.kind in "biufU":
        return classes
    values = classes.tolist()
    converted = None
    # The first label that stops a conversion, for the message: an int beyond int64, or the first of another type.
    lost = next((v for v in values if isinstance(v, int) and not -2**63 <= v < 2**63), values[0] if values else None)
    if classes.dtype == object and values:
        if all(isinstance(v, str) for v in values):
            converted = np.array(values, dtype=str)
        elif all(isinstance(v, (bool, np.bool_)) for v in values):
            converted = np.array(values, dtype=bool)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
            converted = np.array(values, dtype=np.int64) if all(-2**63 <= v < 2**63 for v in values) else None
        elif all(isinstance(v, (float, int, np.floating, np.integer)) for v in values):
            converted = np.array(values, dtype=np.float64)
    if converted is not None and len(np.unique(converted)) == len(values) and converted.tolist() == values:
        return converted
    if converted is not None:
        lost = next((v for v, c in zip(values, converted.tolist()) if v != c), lost)
    raise GridCNNError(
        f"This model's labels cannot be written to a model file: {lost!r} ({type(lost).__name__}, classes_ of dtype "
        f"{classes.dtype}) is not kept exactly as a bool, int, float or text label. Fit it again with labels "
        "converted to text (y.astype(str)) or to ints."
    )


def estimator_config(est, *, history: bool = True) -> dict:
    """A fitted estimator's parameters and fitted attributes (all but the weights), for `to_json`."""
    classes = storable_classes(est.classes_)
    config = {
        "params": storable_params(est),
        "classes": jsonable(classes.tolist()),
        "classes_dtype": classes.dtype.str,
        "n_features_in": int(est.n_features_in_),
        "input_shape": list(est.input_shape_),
        "spec": est.spec_.to_dict(),
    }
    if history:
        config.update(history=jsonable(est.history_), n_iter=int(est.n_iter_))
    return config


def apply_estimator_config(est, config: dict) -> None:
    """Set the fitted attributes `estimator_config` wrote on ``est`` (made from ``config["params"]``)."""
    est.classes_ = np.array(config["classes"], dtype=np.dtype(config["classes_dtype"]))
    est.n_features_in_ = config["n_features_in"]
    est.input_shape_ = tuple(config["input_shape"])
    est.spec_ = BackboneSpec.from_dict(config["spec"])
    est.history_ = config.get("history", [])
    est.n_iter_ = config.get("n_iter", len(est.history_))


def versions() -> dict:
    """The versions of what a file, a run's metrics or a benchmark record depend on: the one place that says them
    (gridcnn's own is the running code's ``__version__``, so a source tree that was never installed says it too)."""
    import sklearn

    from gridcnn import __version__

    return {"gridcnn": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


def check_format(doc, *, fmt: str, format_version: int, where, kind: str, container: str, advice: str) -> None:
    """Refuse ``doc`` (a file's JSON header) unless it is a gridcnn ``fmt`` of version ``format_version``.

    Parameters
    ----------
    doc : object
        What the file's JSON held.
    fmt, format_version : str, int
        The format name and the version this gridcnn reads.
    where : str or Path
        The file, for the message.
    kind : {"model", "checkpoint"}
        What the file should be.
    container : str
        What the file is when it is not that ("JSON", "a safetensors file").
    advice : str
        What to do with a file of another version.
    """
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise GridCNNError(f"{where} is {container} but not a gridcnn {kind} file (no 'format': '{fmt}' in it).")
    if doc.get("format_version") != format_version:
        written_by = doc["versions"].get("gridcnn", "?") if isinstance(doc.get("versions"), dict) else "?"
        raise GridCNNError(
            f"{where} was written in {kind} format version {doc.get('format_version')!r} (gridcnn {written_by}); "
            f"this gridcnn reads version {format_version}. {advice}"
        )


def write_tmp(path: Path, data: bytes, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` + ".tmp", for the caller to rename into place. A write that fails (a full disk)
    removes the partial file and names the path, instead of leaving a stray .tmp and the OS's words."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GridCNNError(
            f"Cannot write {path}: {exc.strerror or exc}. Free some space (or choose a folder on another disk); "
            "files written before stay whole."
        ) from None
    return tmp


def split_tensors(tree, prefix: str = "") -> tuple[object, dict]:
    """(``tree`` with every tensor replaced by a named stand-in, {name: tensor on the CPU}); names are the dotted
    paths of the tensors in the tree."""
    tensors: dict = {}

    def walk(value, path):
        if torch.is_tensor(value):
            if path in tensors:
                raise AssertionError(f"two tensors named {path}")
            tensors[path] = value.detach().cpu().contiguous()
            return {_TENSOR: path}
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
        return value

    return walk(tree, prefix), tensors


def join_tensors(tree, tensors: dict):
    """Inverse of `split_tensors`: the stand-ins in ``tree`` replaced by their tensors."""
    if isinstance(tree, dict):
        if set(tree) == {_TENSOR}:
            return tensors[tree[_TENSOR]]
        return {k: join_tensors(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_tensors(v, tensors) for v in tree]
    return tree


def optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """An optimiser's state read back from JSON, as ``optimizer.load_state_dict`` takes it: JSON turned its integer
    keys into strings and its tuples (Adam's betas) into lists."""
    fresh = optimizer.state_dict()["param_groups"]
    groups = [{k: tuple(v) if isinstance(like.get(k), tuple) else v for k, v in group.items()}
              for group, like in zip(saved["param_groups"], fresh)]
    return {"state": {int(k): v for k, v in saved["state"].items()}, "param_groups": groups}


def write_model(path, est, adapters=()) -> Path:
    """Write a fitted estimator (and the fitted gridcnn adapters in front of it) to the model folder ``path``.

    The folder holds ``model.safetensors`` (weights, adapters' arrays) and ``config.json``: the format and its
    version, the estimator's `estimator_config`, each adapter's registry name, parameters and fitted values, and the
    SHA-256 of the weights file, so a file from another version or changed since is refused, not half-loaded.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {f"model.{k}": v.detach().cpu().contiguous().numpy() for k, v in est.model_.state_dict().items()}
    adapter_configs = []
    for i, a in enumerate(adapters):
        state = {}
        for k, v in vars(a).items():
            if not k.endswith("_") or k.startswith("_"):
                continue
            if isinstance(v, np.ndarray):
                arrays[f"adapter{i}.{k}"] = np.ascontiguousarray(v)
            else:
                state[k] = jsonable(v)
        try:
            params = jsonable(a.get_params(deep=False))
        except TypeError as exc:
            raise GridCNNError(
                f"{type(a).__name__}'s parameters hold a {exc} object, which a model file cannot store (it keeps "
                "parameters as JSON so loading never runs code). Pass data such as word vectors as a file path instead."
            ) from None
        adapter_configs.append({"name": a.registry_name, "params": params, "state": state})
    weights = st.save(arrays)  # bytes: hashed and written once, never read back
    config = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "versions": versions(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "estimator": estimator_config(est),
        "adapters": adapter_configs,
    }
    # The digest is taken of the config as a reader parses it back, so what is checked is exactly what was written.
    doc = json.loads(to_json(config, "model file"))
    doc["config_sha256"] = config_digest(doc)
    text = json.dumps(doc, indent=2)
    weights_tmp = write_tmp(path / WEIGHTS, weights)
    try:
        config_tmp = write_tmp(path / CONFIG, text.encode())
    except GridCNNError:
        weights_tmp.unlink(missing_ok=True)
        raise
    # Rename into place last, so an interrupted save never leaves a config that points at other weights.
    os.replace(weights_tmp, path / WEIGHTS)
    os.replace(config_tmp, path / CONFIG)
    return path


def config_digest(config: dict) -> str:
    """The SHA-256 of a parsed config.json without its ``config_sha256`` key, in one canonical JSON form (sorted
    keys, no spaces): what that key records. It covers the weights too, through the ``weights_sha256`` it holds."""
    rest = {k: v for k, v in config.items() if k != "config_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_model(path) -> tuple[Path, dict, dict]:
    """(the model folder, its checked config, its arrays) for ``path``: a model folder or a run folder holding
    ``model/``. Refuses a folder that is not one, another format version, or weights changed since saving."""
    path = Path(path)
    if (path / "model" / CONFIG).is_file():
        path = path / "model"
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise GridCNNError(
            f"{path} is not a gridcnn model folder: expected {CONFIG} and {WEIGHTS} in it (or in {path / 'model'}). "
            "Point to a folder written by gridcnn fit or GridCNNClassifier.save()."
        )
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GridCNNError(f"{path / CONFIG} is not valid JSON ({exc}); the model folder is damaged.") from None
    except RecursionError:
        raise GridCNNError(f"{path / CONFIG} nests JSON too deeply to be a gridcnn config; the model folder is "
                           "damaged. Restore it, or train the model again.") from None
    check_format(config, fmt=MODEL_FORMAT, format_version=MODEL_FORMAT_VERSION, where=path / CONFIG, kind="model",
                 container="JSON", advice="Load it with the gridcnn version that wrote it, or train it again.")
    if config_digest(config) != config.get("config_sha256"):
        raise GridCNNError(
            f"{path / CONFIG} was changed after it was saved: its content no longer matches the SHA-256 it records "
            "(config_sha256). A model file is refused after any edit, since a renamed class or another activation "
            "would change its answers silently; restore the file, or train the model again."
        )
    weights = (path / WEIGHTS).read_bytes()
    if hashlib.sha256(weights).hexdigest() != config.get("weights_sha256"):
        raise GridCNNError(
            f"{path / WEIGHTS} does not match its config (SHA-256 differs): the file was changed or damaged after "
            "it was saved. Restore it, or train the model again."
        )
    try:
        arrays = st.load(weights)
    except Exception as exc:  # noqa: BLE001 (safetensors raises its own SafetensorError, or ValueError, for bad bytes)
        raise GridCNNError(
            f"{path / WEIGHTS} is not a safetensors file ({exc}); the model folder is damaged. Restore it, or train the "
            "model again."
        ) from None
    return path, config, arrays
