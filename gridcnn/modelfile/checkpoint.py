"""Training checkpoints: all a fit needs to go on exactly where it stopped, in one safetensors file.

A checkpoint is the loop's state plus each hook's (`FitState.state_dict`): the network's weights, the optimiser's
state, the learning-rate schedule, the fp16 loss scale, the epoch, the fit's seed, the torch RNG state, the history
and early stopping's best loss, weights and patience count; next to it, the estimator's parameters and fitted
attributes and a fingerprint of the training data. Tensors go in the safetensors body and everything else in its
JSON header, so reading one never runs code. It is written to a temporary file and renamed into place: a crash while
writing leaves the previous epoch's checkpoint whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.codec import (check_format, join_tensors, jsonable, optimizer_state, split_tensors, to_json, versions,
                            write_tmp)

FORMAT = "gridcnn-checkpoint"
FORMAT_VERSION = 2
# Parameters that change how a fit is shown or where it runs, not what it computes: a resume may differ in these.
RESUME_MAY_CHANGE = frozenset({"verbose", "callbacks", "checkpoint", "device", "check_input", "warm_start"})


def save_checkpoint(path, training: dict, estimator: dict, data: dict) -> Path:
    """Write a training state to ``path``, atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
        The checkpoint file (conventionally ``checkpoint.safetensors``).
    training : dict
        `FitState.state_dict` of the fit: JSON-ready values and tensors.
    estimator : dict
        The estimator's parameters and fitted attributes (`gridcnn.modelfile.codec.estimator_config` without history).
    data : dict
        A fingerprint of the training data (rows, grid shape, label digest), checked on resume.

    Returns
    -------
    path : Path
        The file written.
    """
    path = Path(path)
    tree, tensors = split_tensors(training)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(), "estimator": estimator,
              "data": data, **tree}
    metadata = {"gridcnn": to_json(header, "checkpoint")}
    os.replace(write_tmp(path, st_save(tensors, metadata=metadata), sync=True), path)
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
    check_format(header, fmt=FORMAT, format_version=FORMAT_VERSION, where=path, kind="checkpoint",
                 container="a safetensors file", advice="Resume it with the gridcnn version that wrote it, or start "
                 "a new fit.")
    return header, tensors


def resume_state(header: dict, tensors: dict, optimizer) -> dict:
    """The `FitState.state_dict` a checkpoint holds, ready for ``load_state_dict`` (``optimizer`` is the fresh one
    it goes into)."""
    keys = ("seed", "epochs", "done", "history", "model", "optimizer", "scheduler", "scaler", "rng", "hooks")
    state = join_tensors({k: header[k] for k in keys}, tensors)
    state["optimizer"] = optimizer_state(state["optimizer"], optimizer)
    return state


def check_resumable(header: dict, params: dict, data: dict, path) -> None:
    """Refuse to resume with other training parameters or other data than the checkpoint was made with."""
    saved = header["estimator"]["params"]
    changed = sorted(
        k for k, v in saved.items()
        if k not in RESUME_MAY_CHANGE and k in params and jsonable(params[k]) != v
        and not (k == "random_state" and v is None)
    )
    if changed:
        diffs = "; ".join(f"{k}: {saved[k]!r} in the checkpoint, {params[k]!r} now" for k in changed)
        raise GridCNNError(
            f"Cannot resume from {path}: training parameters differ ({diffs}). Resume with the parameters of the "
            "interrupted fit, or start a new fit."
        )
    if header["data"] != jsonable(data):
        raise GridCNNError(
            f"Cannot resume from {path}: it was made on other training data ({header['data']}; now {jsonable(data)}). "
            "Resume with the same data and split, or start a new fit."
        )


def data_fingerprint(X, y_idx, input_shape, classes) -> dict:
    """What a checkpoint records of the training data (size, grid, classes, a digest), so a resume on other data is
    refused."""
    # Streamed files are known by their cache key (paths, sizes, mtimes, adapter): hashing them would decode them all.
    digest = hashlib.sha256(X.digest().encode() if hasattr(X, "digest") else np.ascontiguousarray(X).data)
    digest.update(np.ascontiguousarray(y_idx, dtype=np.int64).data)
    return {"n_samples": int(len(y_idx)), "grid": list(input_shape), "classes": jsonable(classes.tolist()),
            "sha256": digest.hexdigest()}
