"""The model behind the server: request inputs (uploaded bytes, texts, grid arrays) in, predictions out.

Plain synchronous code, called from the app in a worker thread. Every problem with an input raises `RequestError`
with the status to answer and a message that names the input, so the app only turns it into JSON.
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path

import numpy as np
import torch

from gridcnn.adapters.file_advice import grid_for_person
from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.exceptions import GridCNNError
from gridcnn.serve._engine import make_engine

log = logging.getLogger("gridcnn.serve")
MAX_MAPS = 8  # feature maps shown per block: enough to see what a block reacts to, small enough to send each time


class RequestError(GridCNNError):
    """A request the server cannot answer as asked: ``status`` is the HTTP status (4xx) to send."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Predictor:
    """A loaded model and what the server says about it.

    Parameters
    ----------
    model : GridCNNClassifier or Pipeline
        A fitted model, as `gridcnn.load` returns it.
    run_dir : Path or None
        The run folder it came from: ``recipe.toml`` and ``metrics.json`` are read from it (never written).
    engine : {"auto", "onnxruntime", "torch"}
        What computes the probabilities (see ``_engine``); "auto" is onnxruntime where it is installed.
    """

    def __init__(self, model, run_dir: Path | None = None, engine: str = "auto"):
        adapters, self.estimator = split_pipeline(model)
        self.adapter = adapters[0] if adapters else None
        if self.adapter is not None and "on_error" in self.adapter.get_params():
            self.adapter.set_params(on_error="raise")  # one row per input, or an error that names the bad one
        self.kind = getattr(self.adapter, "registry_name", "") or "grid"
        self.classes = [c.item() if hasattr(c, "item") else c for c in self.estimator.classes_]
        self.grid_shape = tuple(int(v) for v in self.estimator.input_shape_)
        self.recipe, self.metrics = _run_files(run_dir)
        self.engine = make_engine(self.estimator, engine)

    # -- what the server says about the model ----------------------------------------------------------------

    def describe(self) -> dict:
        info = {
            "classes": self.classes,
            "grid_shape": list(self.grid_shape),
            "input_kind": self.kind,
            "engine": self.engine.name,
            "accepts": self.accepts(),
            "blocks": len(self.estimator.spec_.branches[0]),
            "recipe": self.recipe,
            "metrics": self.metrics,
        }
        if self.upload_kind == "image":
            info["image_size"] = [int(v) for v in self.adapter.image_size_]
            info["image_mode"] = self.adapter.mode_
        return info

    @property
    def upload_kind(self) -> str:
        """What the adapter takes as uploaded files ("image", "sound"), "" when it takes none: asked of the adapter."""
        return getattr(self.adapter, "upload_kind", "") if self.adapter is not None else ""

    @property
    def takes_text(self) -> bool:
        return bool(getattr(self.adapter, "text_inputs", False))

    def accepts(self) -> str:
        grids = f"grids shaped {list(self.grid_shape)} as JSON {{\"inputs\": [...]}}"
        if self.upload_kind:
            return f"{self.upload_kind} files (multipart field 'files') or {grids}"
        if self.takes_text:
            return "texts as JSON {\"inputs\": [\"a sentence\", ...]}"
        return grids

    # -- inputs ----------------------------------------------------------------------------------------------

    def from_files(self, files: list[tuple[str, bytes]]):
        """Uploaded files -> the grids the network reads (each decoded and run through the adapter)."""
        if not self.upload_kind:
            raise RequestError(f"This model takes {self.accepts()}; it cannot read uploaded files.", 415)
        grids = []
        for name, data in files:
            if not data:
                raise RequestError(f"File {name!r} is empty. Send a {self.upload_kind} file.")
            try:
                item = self.adapter.read_upload(name, data)  # the adapter decodes its own kind of file
            except GridCNNError as exc:
                raise RequestError(str(exc)) from None
            grids.append(self._grid(name, item))
        return np.concatenate(grids) if grids else grids

    def _grid(self, name: str, item) -> np.ndarray:
        """One decoded upload through the adapter, as the grid the network reads; a file it cannot use is explained
        to the person who sent it (adapters.file_advice, which `gridcnn predict` shares), not to a Python caller."""
        try:
            return grid_for_person(self.adapter, name, item, verb="Send")
        except GridCNNError as exc:
            raise RequestError(str(exc)) from None

    def from_json(self, inputs: list):
        """JSON inputs -> texts for text models, or a float32 grid array (n, C, H, W) for any model."""
        if all(isinstance(v, str) for v in inputs):
            if not self.takes_text:
                raise RequestError(f"This model takes {self.accepts()}; it got text.")
            if any(not v.strip() for v in inputs):
                i = next(i for i, v in enumerate(inputs) if not v.strip())
                raise RequestError(f"Input {i} is an empty text. Send at least one word.")
            return list(inputs)
        grids = []
        for i, value in enumerate(inputs):
            try:
                a = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float (10**400)
                raise RequestError(
                    f"Input {i} is not an array of numbers ({_shape_of(value)}). This model takes {self.accepts()}."
                ) from None
            if a.shape != self.grid_shape and not (self.grid_shape[0] == 1 and a.shape == self.grid_shape[1:]):
                raise RequestError(
                    f"Input {i} has shape {list(a.shape)}; this model takes grids shaped {list(self.grid_shape)}"
                    + (f" (or {list(self.grid_shape[1:])})." if self.grid_shape[0] == 1 else ".")
                )
            if not np.isfinite(a).all():
                raise RequestError(f"Input {i} contains NaN or infinite values. Send finite numbers.")
            grids.append(a.reshape(self.grid_shape))
        return np.stack(grids)

    # -- predictions -----------------------------------------------------------------------------------------

    def predict(self, X, feature_maps: bool = False) -> dict:
        """``{"predictions": [...]}`` for the inputs ``X`` (and the first input's feature maps when asked)."""
        grids = self.grids(X)
        out = self.answer(self.engine.predict_proba(grids))
        if feature_maps:
            out["feature_maps"] = self.feature_maps(np.asarray(grids[:1], dtype=np.float32))
        return out

    def grids(self, X) -> np.ndarray:
        """The grids the network reads: the adapter's output, or ``X`` when it holds grids already."""
        if isinstance(X, np.ndarray) and X.dtype == np.float32 and X.shape[1:] == self.grid_shape:
            return X  # grids sent as JSON: the adapter's input kind is not theirs
        return self.adapter.transform(X) if self.adapter is not None else X

    def warm_up(self) -> None:
        """Load now what the first requests would otherwise wait for: a text model's tokenizer and token table
        (1.7 s of the first requests' p99 in benchmarks/serve.py), the engine's first pass."""
        if self.kind == "embedding":
            self.grids(["warm up"])
        self.engine.predict_proba(np.zeros((1, *self.grid_shape), dtype=np.float32))  # zeros: padding ids too

    def answer(self, proba: np.ndarray) -> dict:
        return {"predictions": [
            {"label": self.classes[int(p.argmax())],
             "probabilities": {str(c): round(float(v), 6) for c, v in zip(self.classes, p)}}
            for p in proba
        ]}

    def feature_maps(self, grid: np.ndarray) -> list[dict]:
        """The input grid and each block's first maps, each scaled to 0-255 on its own, row by row."""
        network = self.estimator.model_
        device = next(network.parameters()).device
        x = torch.from_numpy(grid).to(device)
        stages = [("input", x)] + network.feature_maps(x)
        out = []
        for name, maps in stages:
            channels = int(maps.shape[1])
            maps = maps[0, :MAX_MAPS].float().cpu().numpy()
            lo = maps.min(axis=(1, 2), keepdims=True)
            span = np.maximum(maps.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
            scaled = np.round((maps - lo) / span * 255).astype(np.uint8)
            out.append({"name": name, "channels": channels, "shape": list(maps.shape),
                        "maps": scaled.reshape(len(maps), -1).tolist()})
        return out


def _shape_of(value) -> str:
    return f"a {type(value).__name__}" if not isinstance(value, list) else "a list of other things"


def _run_files(run_dir: Path | None):
    """The recipe (as a table) and the test metrics of a run folder; None for what is absent. A damaged one (a
    truncated metrics.json) only leaves its part out of /model, with a warning naming it: the model still serves."""
    recipe = metrics = None
    if run_dir is None:
        return recipe, metrics
    if (run_dir / "recipe.toml").is_file():
        try:
            recipe = tomllib.loads((run_dir / "recipe.toml").read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            log.warning("%s cannot be read (%s); /model leaves the recipe out.", run_dir / "recipe.toml", exc)
    if (run_dir / "metrics.json").is_file():
        try:
            m = json.loads((run_dir / "metrics.json").read_text())
            if not isinstance(m, dict):
                raise ValueError(f"it holds a JSON {type(m).__name__}, not an object")
            metrics = {k: m[k] for k in ("accuracy", "macro_f1", "n_samples", "per_class") if k in m}
        except (OSError, UnicodeDecodeError, RecursionError, ValueError) as exc:
            log.warning("%s cannot be read (%s); /model leaves the test metrics out.", run_dir / "metrics.json", exc)
    return recipe, metrics
