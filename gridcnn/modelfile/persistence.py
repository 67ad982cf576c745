"""`save` and `load`: a fitted `GridCNNClassifier`, alone or behind gridcnn adapters, to a model folder and back.

The files themselves (weights in safetensors, everything else in JSON, checked on reading) are
`gridcnn.modelfile.codec`'s; this module turns them into estimators and pipelines. Loading never runs code from the
folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.training.steps import resolve_device
from gridcnn.estimator.classifier import GridCNNClassifier
from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.schema import validate_config
from gridcnn.modelfile.codec import CONFIG, apply_estimator_config, read_model, write_model


def _split_pipeline(obj):
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
    adapters, est = _split_pipeline(obj)
    check_is_fitted(est)
    return write_model(path, est, adapters)


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
    from gridcnn.adapters import ADAPTERS  # here: importing gridcnn need not import every adapter's dependencies

    path, config, arrays = read_model(path)
    # Every key, and the weights' shapes, before anything is built from the file.
    validate_config(config, arrays, path / CONFIG, GridCNNClassifier)
    cfg = config["estimator"]
    est = GridCNNClassifier(**cfg["params"])
    apply_estimator_config(est, cfg)
    est.device_ = resolve_device(device)
    model = est.spec_.build(est.input_shape_, len(est.classes_))
    model.load_state_dict({k[len("model."):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")})
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

