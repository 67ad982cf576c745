"""What computes the server's probabilities: the network exported to ONNX and run by onnxruntime, or torch.

onnxruntime runs this package's networks 5-9x faster than torch on one thread (benchmarks/RESULTS.md), so the
server uses it wherever the ``export`` extra is installed. Its graph is exported at start-up, in memory, from the
very weights the server loaded: it cannot be older than the model, and nothing is written anywhere. A
``model.onnx`` that `gridcnn export` left beside the model is not read (it takes raw pixels, waveforms or token
ids, not the grids the server's adapters make); when it is older than the model, the server says so at start-up.

Both engines give a row the same probabilities whatever else shares the call: onnxruntime runs every row as a
batch of one (one row takes 0.5 ms, a row in a batch of 64 0.3 ms: the difference is small beside HTTP's share),
and torch's `predict_proba` cuts calls into fixed chunks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from gridcnn.estimator.inputs import check_answers
from gridcnn.exceptions import GridCNNError

log = logging.getLogger("gridcnn.serve")
ENGINES = ("auto", "onnxruntime", "torch")


class TorchEngine:
    """The estimator's own `predict_proba`, on grids of the fitted (C, H, W) shape."""

    name = "torch"

    def __init__(self, estimator):
        self.estimator = estimator

    def predict_proba(self, grids: np.ndarray) -> np.ndarray:
        est = self.estimator
        shape = tuple(int(v) for v in est.input_shape_)
        if isinstance(grids, np.ndarray) and grids.ndim == 4 and grids.shape[1:] == shape and len(grids):
            # Grids the adapter made are (n, C, H, W) whatever form the estimator was fitted on ((n, H, W) rows,
            # say), so they go through the estimator's own fixed passes without its check of X's layout.
            from gridcnn.training.steps import predict_logits

            grids = np.ascontiguousarray(grids, dtype=np.float32)
            batches = (grids[s : s + 1024] for s in range(0, len(grids), 1024))
            logits = predict_logits(est.model_, batches, len(grids), est.device_, est.precision)
            check_answers(logits, grids, type(est).__name__)
            return torch.softmax(logits.double(), dim=1).numpy()
        return est.predict_proba(grids)  # anything else meets the estimator's checks and their messages


class OnnxEngine:
    """The network as an ONNX graph in an onnxruntime session: one thread per call, calls run side by side."""

    name = "onnxruntime"

    def __init__(self, estimator):
        import onnxruntime as ort

        from gridcnn.export.onnx import network_graph

        options = ort.SessionOptions()
        # One thread per call: requests already run in parallel threads, and on a busy machine threads that wait
        # on each other inside one call cost more than they give (see the notes of benchmarks/RESULTS.md).
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        self.session = ort.InferenceSession(network_graph(estimator), options, providers=["CPUExecutionProvider"])
        self.name_in_errors = type(estimator).__name__

    def predict_proba(self, grids: np.ndarray) -> np.ndarray:
        grids = np.ascontiguousarray(grids, dtype=np.float32)
        # A batch of one per row: the kernels then always see the same shape, so a row's answer cannot depend on
        # the requests it was batched with.
        logits = np.concatenate([self.session.run(None, {"grid": grids[i : i + 1]})[0] for i in range(len(grids))])
        check_answers(torch.from_numpy(logits), grids, self.name_in_errors)  # never NaN probabilities, as torch's engine
        return _softmax(logits)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """In float64, as the estimator's `predict_proba` computes it from its float32 logits."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def check_engine(engine: str) -> str:
    """``engine`` when it names an engine, else a `GridCNNError` with the closest one."""
    if engine not in ENGINES:
        from gridcnn._registry import did_you_mean

        raise GridCNNError(f"Unknown engine {engine!r}.{did_you_mean(engine, ENGINES)} "
                           f"Engines: {', '.join(ENGINES)}.")
    return engine


def make_engine(estimator, engine: str = "auto"):
    """The engine named ``engine``; "auto" takes onnxruntime when it is installed and the export works, else torch."""
    if check_engine(engine) == "torch":
        return TorchEngine(estimator)
    if engine == "onnxruntime":
        from gridcnn.export.onnx import require_onnx

        require_onnx()  # names the missing package and the extra to install
        return OnnxEngine(estimator)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        log.info("Serving with torch: onnxruntime is faster (pip install 'gridcnn[export]'; %s is missing).",
                 exc.name)
        return TorchEngine(estimator)
    try:
        return OnnxEngine(estimator)
    except Exception:  # an exporter or runtime that cannot take this network: torch still serves it correctly
        log.warning("Serving with torch: exporting the network to onnxruntime failed.", exc_info=True)
        return TorchEngine(estimator)


def check_exported_file(run_dir: Path | None) -> str | None:
    """A warning when ``gridcnn export`` left a ``model.onnx`` older than the model beside it, else None."""
    if run_dir is None:
        return None
    model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
    weights = [p for p in (model_dir / "model.safetensors", model_dir / "config.json") if p.is_file()]
    for onnx_file in (run_dir / "model.onnx", model_dir / "model.onnx"):
        if onnx_file.is_file() and weights and onnx_file.stat().st_mtime < max(p.stat().st_mtime for p in weights):
            return (f"{onnx_file} is older than the model beside it (it was exported before the model was last "
                    "saved), so it is stale: the server does not read it (it exports its own graph from the model at "
                    f"start-up). Refresh it with: gridcnn export {run_dir}")
    return None
