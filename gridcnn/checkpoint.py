"""Training checkpoints: all a fit needs to go on exactly where it stopped, in one safetensors file.

A checkpoint holds the network's weights, the optimiser's state, the learning-rate schedule, the fp16 loss scale, the
epoch, the fit's seed, early-stopping state (best loss and weights, epochs without improvement), the torch RNG state
and the history. Tensors go in the safetensors body and everything else in its JSON header, so reading one never runs
code. It is written to a temporary file and renamed into place: a crash while writing leaves the previous epoch's
checkpoint whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from .exceptions import GridCNNError
from .persistence import jsonable, storable_params

FORMAT = "gridcnn-checkpoint"
FORMAT_VERSION = 1
# Parameters that change how a fit is shown or where it runs, not what it computes: a resume may differ in these.
RESUME_MAY_CHANGE = frozenset({"verbose", "callbacks", "checkpoint", "device", "check_input", "warm_start"})


@dataclass
class TrainingState:
    """What a fit in progress carries from epoch to epoch besides the network and the optimiser."""

    seed: int
    epochs: int
    done: int = 0
    best_loss: float = math.inf
    best_state: dict | None = None
    stale: int = 0
    scheduler: object = None
    scaler: object = None

    def finished(self, patience: int | None) -> bool:
        """All planned epochs ran, or early stopping (``patience`` epochs without improvement) ended the fit."""
        return self.done >= self.epochs or (patience is not None and self.stale >= patience)


def _optimizer_parts(optimizer):
    """Split an optimiser's state into tensors and a JSON-ready rest."""
    sd = optimizer.state_dict()
    tensors, rest = {}, {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                rest.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "state": rest}


def save_checkpoint(path, est, state: TrainingState, data: dict) -> Path:
    """Write ``est``'s training state after an epoch to ``path``, atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
        The checkpoint file (conventionally ``checkpoint.safetensors``).
    est : GridCNNClassifier
        The estimator being fitted.
    state : TrainingState
        The fit's loop state.
    data : dict
        A fingerprint of the training data (rows, grid shape, label digest), checked on resume.

    Returns
    -------
    path : Path
        The file written.
    """
    path = Path(path)
    tensors = {f"model.{k}": v for k, v in est.model_.state_dict().items()}
    opt_tensors, opt_rest = _optimizer_parts(est.optimizer_)
    tensors.update(opt_tensors)
    tensors.update({f"best.{k}": v for k, v in (state.best_state or {}).items()})
    tensors["rng.torch"] = torch.get_rng_state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": storable_params(est),
        "classes": est.classes_.tolist(),
        "classes_dtype": est.classes_.dtype.str,
        "n_features_in": int(est.n_features_in_),
        "input_shape": list(est.input_shape_),
        "spec": est.spec_.to_dict(),
        "n_iter": int(est.n_iter_),
        "history": est.history_,
        "seed": state.seed,
        "epochs": state.epochs,
        "done": state.done,
        "best_loss": state.best_loss if math.isfinite(state.best_loss) else None,
        "has_best": state.best_state is not None,
        "stale": state.stale,
        "optimizer": opt_rest,
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
        "scaler": state.scaler.state_dict() if state.scaler is not None else None,
        "data": data,
    }
    try:
        metadata = {"gridcnn": json.dumps(jsonable(header))}
    except TypeError as exc:
        raise GridCNNError(
            f"A checkpoint keeps parameters as JSON, and one of them holds a {exc} object. Pass data such as word "
            "vectors as a file path, or set checkpoint=None."
        ) from None
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(st_save(tensors, metadata=metadata))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def check_checkpoint_path(path) -> None:
    """Refuse, before training starts, a checkpoint path whose folder is missing or not writable."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise GridCNNError(
            f"checkpoint={os.fspath(path)!r}: the folder {folder} does not exist. Create it, or choose another path."
        )
    if Path(path).is_dir():
        raise GridCNNError(
            f"checkpoint={os.fspath(path)!r} is a folder; give a file path such as "
            f"{Path(path) / 'checkpoint.safetensors'}."
        )
    if not os.access(folder, os.W_OK):
        raise GridCNNError(f"checkpoint={os.fspath(path)!r}: cannot write in {folder}. Choose a writable folder.")


def read_checkpoint(path) -> tuple[dict, dict]:
    """The JSON header and the tensors of the checkpoint at ``path`` (a file, or a run folder holding one).

    Raises
    ------
    GridCNNError
        When there is no checkpoint there, or the file is not a gridcnn checkpoint of this format version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.safetensors"
    if not path.is_file():
        raise GridCNNError(
            f"No checkpoint at {path}. A run folder gets checkpoint.safetensors after its first finished epoch; "
            "start the run again without --resume."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("gridcnn", "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GridCNNError(
            f"{path} is not a readable gridcnn checkpoint ({exc}); it is damaged or another file."
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise GridCNNError(f"{path} is a safetensors file but not a gridcnn checkpoint (no '{FORMAT}' header).")
    if header.get("format_version") != FORMAT_VERSION:
        raise GridCNNError(
            f"{path} is checkpoint format version {header.get('format_version')!r}; this gridcnn reads version "
            f"{FORMAT_VERSION}. Resume it with the gridcnn version that wrote it."
        )
    return header, tensors


def prefixed(tensors: dict, prefix: str) -> dict:
    """The tensors whose names start with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_optimizer(optimizer, header: dict, tensors: dict) -> None:
    """Restore an optimiser's state written by `save_checkpoint` into a fresh optimiser over the same parameters."""
    saved = header["optimizer"]
    state: dict = {}
    for key, value in prefixed(tensors, "optimizer.").items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, rest in saved["state"].items():
        state.setdefault(int(pid), {}).update(rest)
    fresh = optimizer.state_dict()["param_groups"]
    groups = []
    for group, like in zip(saved["param_groups"], fresh):
        # JSON has no tuples; put back the ones the optimiser built (Adam's betas).
        groups.append({k: tuple(v) if isinstance(like.get(k), tuple) else v for k, v in group.items()})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def check_resumable(header: dict, params: dict, data: dict, path) -> None:
    """Refuse to resume with other training parameters or other data than the checkpoint was made with."""
    changed = sorted(
        k for k, v in header["params"].items()
        if k not in RESUME_MAY_CHANGE and k in params and jsonable(params[k]) != v
        and not (k == "random_state" and v is None)
    )
    if changed:
        diffs = "; ".join(f"{k}: {header['params'][k]!r} in the checkpoint, {params[k]!r} now" for k in changed)
        raise GridCNNError(
            f"Cannot resume from {path}: training parameters differ ({diffs}). Resume with the parameters of the "
            "interrupted fit, or start a new fit."
        )
    if header["data"] != jsonable(data):
        raise GridCNNError(
            f"Cannot resume from {path}: it was made on other training data ({header['data']}; now {jsonable(data)}). "
            "Resume with the same data and split, or start a new fit."
        )


def data_fingerprint(X, y_idx, est) -> dict:
    """What a checkpoint records of the training data (size, grid, classes, a digest), so a resume on other data is
    refused."""
    # Streamed files are known by their cache key (paths, sizes, mtimes, adapter): hashing them would decode them all.
    digest = hashlib.sha256(X.digest().encode() if hasattr(X, "digest") else np.ascontiguousarray(X).data)
    digest.update(np.ascontiguousarray(y_idx, dtype=np.int64).data)
    return {"n_samples": int(len(y_idx)), "grid": list(est.input_shape_), "classes": est.classes_.tolist(),
            "sha256": digest.hexdigest()}


def restore(est, state: TrainingState, header: dict, tensors: dict) -> None:
    """Load a checkpoint into ``est``'s freshly built network and optimiser and into the loop ``state``."""
    est.model_.load_state_dict(prefixed(tensors, "model."))
    load_optimizer(est.optimizer_, header, tensors)
    if state.scheduler is not None:
        state.scheduler.load_state_dict(header["scheduler"])
    if state.scaler is not None:
        state.scaler.load_state_dict(header["scaler"])
    state.done, state.stale = header["done"], header["stale"]
    state.best_loss = math.inf if header["best_loss"] is None else header["best_loss"]
    state.best_state = prefixed(tensors, "best.") if header["has_best"] else None
    est.history_, est.n_iter_ = header["history"], header["n_iter"]
    torch.set_rng_state(tensors["rng.torch"])
