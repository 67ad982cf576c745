"""Model files that load without running code: weights (and adapter arrays) in safetensors, the rest in JSON.

A model folder holds ``model.safetensors`` and ``config.json``. The JSON names the format and its version, the
estimator's parameters and fitted attributes, any adapters in front of it (registry name, parameters, fitted
scalars), and the SHA-256 of the weights file, so a file from another version or one changed since it was written is
refused with a message instead of being half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import numpy as st
from sklearn.pipeline import Pipeline

from ._pipeline import split_pipeline
from .exceptions import GridCNNError

FORMAT = "gridcnn-model"
FORMAT_VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"


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


def storable_params(est) -> dict:
    """``est``'s parameters as a model file or checkpoint stores them: data only, nothing tied to this process."""
    params = est.get_params(deep=False)
    params["callbacks"] = None  # code, not data: callbacks are never saved
    params["checkpoint"] = None  # a path on the machine that trained; a refit elsewhere must not write there
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a generator's state is not JSON; the seed a fit drew from it is kept instead
    return params


def _split_pipeline(obj):
    from .estimator import GridCNNClassifier

    adapters, estimator = split_pipeline(obj)
    if not isinstance(estimator, GridCNNClassifier):
        raise GridCNNError(f"save() takes a GridCNNClassifier or a Pipeline ending in one. Got {type(estimator).__name__}.")
    for a in adapters:
        if not getattr(a, "registry_name", ""):
            raise GridCNNError(
                f"save() can only store gridcnn adapters in front of the classifier; {type(a).__name__} is not one. "
                "Pickle the pipeline with joblib instead."
            )
    return adapters, estimator


def save(obj, path) -> Path:
    """Write a fitted `GridCNNClassifier`, or a Pipeline of gridcnn adapters ending in one, to the folder ``path``.

    Parameters
    ----------
    obj : GridCNNClassifier or sklearn.pipeline.Pipeline
        The fitted model.
    path : str or Path
        Folder to create (or overwrite the model files in).

    Returns
    -------
    path : Path
        The folder written.
    """
    from sklearn.utils.validation import check_is_fitted

    adapters, est = _split_pipeline(obj)
    check_is_fitted(est)
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
    params = storable_params(est)
    weights = st.save(arrays)  # bytes: hashed and written once, never read back
    weights_tmp = path / (WEIGHTS + ".tmp")
    weights_tmp.write_bytes(weights)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"gridcnn": _version(), "torch": torch.__version__},
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "estimator": {
            "params": jsonable(params),
            "classes": jsonable(est.classes_.tolist()),
            "classes_dtype": est.classes_.dtype.str,
            "n_features_in": int(est.n_features_in_),
            "input_shape": list(est.input_shape_),
            "spec": est.spec_.to_dict(),
            "history": jsonable(est.history_),
            "n_iter": int(est.n_iter_),
        },
        "adapters": adapter_configs,
    }
    config_tmp = path / (CONFIG + ".tmp")
    config_tmp.write_text(json.dumps(config, indent=2))
    # Rename into place last, so an interrupted save never leaves a config that points at other weights.
    os.replace(weights_tmp, path / WEIGHTS)
    os.replace(config_tmp, path / CONFIG)
    return path


def load(path, device: str = "auto"):
    """Read a model folder written by `save` (or a run folder holding ``model/``).

    Parameters
    ----------
    path : str or Path
        The model folder, or a run folder that contains one.
    device : str, default="auto"
        Where to put the network.

    Returns
    -------
    model : GridCNNClassifier or sklearn.pipeline.Pipeline
        The fitted estimator, behind its adapters when it was saved with them.
    """
    from ._training import resolve_device
    from .adapters import ADAPTERS
    from .backbone import BackboneSpec
    from .estimator import GridCNNClassifier

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
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GridCNNError(f"{path / CONFIG} is not a gridcnn model config (no 'format': '{FORMAT}').")
    if config.get("format_version") != FORMAT_VERSION:
        raise GridCNNError(
            f"{path} was written in model format version {config.get('format_version')!r} (gridcnn "
            f"{config.get('versions', {}).get('gridcnn', '?')}); this gridcnn reads version {FORMAT_VERSION}. "
            "Load it with the gridcnn version that wrote it, or train it again."
        )
    weights = (path / WEIGHTS).read_bytes()
    if hashlib.sha256(weights).hexdigest() != config.get("weights_sha256"):
        raise GridCNNError(
            f"{path / WEIGHTS} does not match its config (SHA-256 differs): the file was changed or damaged after "
            "it was saved. Save the model again."
        )
    arrays = st.load(weights)
    cfg = config["estimator"]
    est = GridCNNClassifier(**cfg["params"])
    est.classes_ = np.array(cfg["classes"], dtype=np.dtype(cfg["classes_dtype"]))
    est.n_features_in_ = cfg["n_features_in"]
    est.input_shape_ = tuple(cfg["input_shape"])
    est.spec_ = BackboneSpec.from_dict(cfg["spec"])
    est.history_ = cfg["history"]
    est.n_iter_ = cfg["n_iter"]
    est.device_ = resolve_device(device)
    model = est.spec_.build(est.input_shape_, len(est.classes_))
    state = {k[len("model."):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")}
    model.load_state_dict(state)
    est.model_ = model.to(est.device_).eval()
    adapters = []
    for i, a in enumerate(config["adapters"]):
        adapter = ADAPTERS.get(a["name"])(**a["params"])
        for k, v in a["state"].items():
            setattr(adapter, k, v)
        prefix = f"adapter{i}."
        for k, v in arrays.items():
            if k.startswith(prefix):
                setattr(adapter, k[len(prefix):], v)
        adapters.append((a["name"], adapter))
    return Pipeline([*adapters, ("classifier", est)]) if adapters else est


def _version() -> str:
    from . import __version__

    return __version__
