"""Export a trained model to ONNX: its adapter's preprocessing and the network in one graph, a JSON sidecar beside it.

The graph takes the adapter's raw input where ONNX has the ops (uint8 pixels, waveforms, token ids, signals) and
returns ``probabilities`` (batch, n_classes) in the order of the sidecar's ``classes``. The sidecar says what stays
outside the graph (decoding files, resizing images, resampling sound, tokenising text) and what the graph does.
A sound model's graph also takes the clip's ``sample_rate`` and refuses any rate but the model's (export.guards):
resampling stays outside, as the server and ``predict`` do it (librosa's soxr_hq, which ONNX has no op for).
torch's TorchScript-based exporter writes it (``dynamo=False``): it needs no package beyond ``onnx``, exports in
a second, and sets the opset exactly (17 where ONNX's STFT is needed, 13 otherwise).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from gridcnn.estimator.pipeline import split_pipeline
from gridcnn.export import frontends as frontends
from gridcnn.export import guards
from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

FORMATS = ("onnx",)
SIDECAR_FORMAT = "gridcnn-onnx"


def check_format(name: str) -> str:
    """``name`` when it is an export format, else a `GridCNNError` with the closest one."""
    if name not in FORMATS:
        raise GridCNNError(
            f"Unknown export format {name!r}.{did_you_mean(name, FORMATS)} Formats: {', '.join(FORMATS)}."
        )
    return name


def check_output(out) -> Path:
    """``out`` as a Path when it names an .onnx file (the sidecar takes the same name with .json)."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise GridCNNError(f"The exported file must end in .onnx (its JSON sidecar takes the same name); got {out}. "
                           "Pass --out NAME.onnx.")
    return out


def check_free(out: Path, extra_files, overwrite: bool) -> None:
    """Refuse to replace files silently: any of the export's files that exists needs ``overwrite``, and a sidecar
    (or extra file) that is not an earlier export's is never replaced, since the user named only the .onnx file."""
    sidecar = out.with_suffix(".json")
    ours = _sidecar_files(sidecar)
    targets = [out, sidecar, *(out.parent / name for name in extra_files)]
    there = [p for p in targets if p.exists() or p.is_symlink()]
    if there and not overwrite:
        raise GridCNNError(
            f"{there[0]} exists; gridcnn export does not replace files unless asked. Pass --overwrite to replace "
            f"{'it' if len(there) == 1 else 'them (' + ', '.join(p.name for p in there) + ')'}, or choose another --out."
        )
    for p in there:
        if p != out and (ours is None or (p != sidecar and p.name not in ours)):
            why = "it is not a gridcnn sidecar" if p == sidecar else f"no gridcnn sidecar {sidecar.name} lists it"
            raise GridCNNError(
                f"{p} exists and was not written by gridcnn export ({why}), but exporting to {out.name} writes its own "
                f"{p.name} there. Choose another --out, or move {p} away."
            )


def _sidecar_files(sidecar: Path):
    """The extra files an earlier export's sidecar lists, or None when ``sidecar`` is not a gridcnn sidecar."""
    try:
        doc = json.loads(sidecar.read_text()) if sidecar.is_file() and sidecar.stat().st_size < 16 << 20 else None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        return None
    return {str(f) for f in doc.get("files", []) if isinstance(f, str)}


def require_onnx():
    """Import onnx and onnxruntime, or say how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise GridCNNError(
            f"Exporting to ONNX needs the packages onnx and onnxruntime ({exc.name} is missing). "
            "Install them with: pip install 'gridcnn[export]'"
        ) from None
    return onnx, onnxruntime


class _Exported(torch.nn.Module):
    """Front end, network, softmax: raw input in, class probabilities out."""

    def __init__(self, front: torch.nn.Module, network: torch.nn.Module):
        super().__init__()
        self.front, self.network = front, network

    def forward(self, x):
        return torch.softmax(self.network(self.front(x)), dim=1)


def parts(model):
    """``(adapter or None, estimator)`` of a loaded model; an error for pipelines gridcnn cannot export."""
    adapters, estimator = split_pipeline(model)
    if len(adapters) > 1:
        raise GridCNNError(f"gridcnn exports one adapter in front of the classifier; this model has {len(adapters)}.")
    return (adapters[0] if adapters else None), estimator


def frontend(adapter, estimator) -> frontends.Frontend:
    """The `Frontend` for ``adapter`` (the bare grid when None): the adapter's own `onnx_frontend`."""
    if adapter is None:
        return frontends.grid(estimator.input_shape_)
    if not callable(getattr(adapter, "onnx_frontend", None)):
        raise GridCNNError(f"gridcnn cannot export a model whose adapter is {type(adapter).__name__}.")
    return adapter.onnx_frontend()


def export_onnx(model, out, *, opset: int | None = None, overwrite: bool = True) -> tuple[Path, Path]:
    """Write ``model`` as an ONNX graph to ``out`` and its description to the JSON beside it.

    Parameters
    ----------
    model : str, Path, GridCNNClassifier or Pipeline
        A run or model folder (read with `gridcnn.load`), or a fitted model.
    out : str or Path
        The ``.onnx`` file to write; the sidecar is the same path with ``.json``.
    opset : int, default=None
        ONNX opset; None picks the lowest the graph's operators need (13, or 17 for the STFT of sound models).
    overwrite : bool, default=True
        Replace files already there (``gridcnn export`` passes False unless ``--overwrite``). Either way a sidecar
        or extra file that an earlier export did not write is never replaced.

    Returns
    -------
    onnx_path, json_path : Path
        The files written. The graph was checked with onnxruntime against torch before they were written.
    """
    onnx, ort = require_onnx()
    out = check_output(out)
    if isinstance(model, (str, Path)):
        from gridcnn.modelfile.persistence import load

        model = load(model, device="cpu")
    adapter, est = parts(model)
    front = frontend(adapter, est)
    check_free(out, front.files, overwrite)
    opset = opset or front.min_opset
    if opset < front.min_opset:
        raise GridCNNError(f"This model's graph needs opset {front.min_opset} or later (got opset={opset}).")
    graph = _Exported(front.module, _network_copy(est)).eval()
    example = torch.from_numpy(front.example)
    dynamic = {front.input_name: {i: str(d) for i, d in enumerate(front.shape) if isinstance(d, str)},
               "probabilities": {0: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation, and STFT's return_complex=False is deprecated in
        # eager torch; both are what ONNX needs here and say nothing about this model.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=[front.input_name], output_names=["probabilities"], dynamic_axes=dynamic)
        with torch.no_grad():
            expected = graph(example).numpy()
    proto = onnx.load_from_string(buffer.getvalue())
    for name, value in front.required.items():
        guards.require_value(proto, name, value, front.input_name)
    sidecar = describe(model, front, opset)
    proto.metadata_props.add(key="gridcnn", value=json.dumps(sidecar))
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the refusals checked below would each log an error line on the terminal
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feeds = {front.input_name: front.example, **{k: np.array([v], np.int64) for k, v in front.required.items()}}
    got = session.run(None, feeds)[0]
    if not np.allclose(got, expected, atol=1e-4):  # a guard against exporter bugs; the tests hold it to 1e-5
        raise RuntimeError(f"onnxruntime's output differs from torch's by {np.abs(got - expected).max():.3g}")
    _check_refusals(session, feeds, front.required)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(sidecar, indent=2))
    for name, content in front.files.items():
        (out.parent / name).write_bytes(content)
    return out, json_path


def _check_refusals(session, feeds: dict, required: dict) -> None:
    """A guard against a graph that would answer for a value it must refuse (an optimiser dropping the check)."""
    for name, value in required.items():
        try:
            session.run(None, {**feeds, name: np.array([value + 1], np.int64)})
        except Exception as exc:  # onnxruntime's own error types differ between versions
            if guards.check_name(name, value) in str(exc):
                continue
            raise RuntimeError(f"the graph refused {name}={value + 1} without naming its check: {exc}") from None
        raise RuntimeError(f"the graph answered for {name}={value + 1}; it must refuse anything but {value}")


def network_graph(estimator) -> bytes:
    """The fitted network alone as an ONNX graph: float32 grids ``(batch, C, H, W)`` in, ``logits`` out.

    What `gridcnn serve` runs through onnxruntime, built in memory from the weights it serves, so it can never be
    older than the model; the adapter's preprocessing stays in Python, where the server already runs it.
    """
    onnx, _ = require_onnx()
    network = _network_copy(estimator).eval()
    shape = tuple(int(v) for v in estimator.input_shape_)
    # Token ids for a network that holds its own table (0 is padding), else any grid of the right shape.
    example = (torch.zeros((2, *shape)) if estimator.spec_.embedding is not None
               else torch.from_numpy(np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
        torch.onnx.export(network, (example,), buffer, dynamo=False, opset_version=13, input_names=["grid"],
                          output_names=["logits"], dynamic_axes={"grid": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _network_copy(est) -> torch.nn.Module:
    """A CPU copy of the fitted network, with full-width kernels as plain convolutions (see below)."""
    network = est.spec_.build(est.input_shape_, len(est.classes_))
    network.load_state_dict({k: v.detach().cpu() for k, v in est.model_.state_dict().items()})
    _plain_convolutions(network)
    return network


def _plain_convolutions(network: torch.nn.Module) -> None:
    """Run full-width kernels as the Conv2d they are: the faster Conv1d form reshapes its weights by the input's
    shape, which a traced graph cannot hold as a constant kernel. Same parameters, same outputs."""
    from gridcnn.backbone import FullWidthConv2d

    for module in network.modules():
        if isinstance(module, FullWidthConv2d):
            module.forward = torch.nn.Conv2d.forward.__get__(module)


def describe(model, front: frontends.Frontend, opset: int) -> dict:
    """The sidecar: classes, grid shape, the graph's input and output, and the preprocessing on each side."""
    from gridcnn.modelfile.codec import jsonable

    adapter, est = parts(model)
    return jsonable({
        "format": SIDECAR_FORMAT,
        "format_version": 2,  # 2: the inputs list; a sound graph takes sample_rate
        "opset": opset,
        "classes": est.classes_.tolist(),
        "grid_shape": list(est.input_shape_),
        "input_kind": getattr(adapter, "registry_name", "") or "grid",
        "input": {"name": front.input_name, "dtype": front.dtype, "shape": front.shape},
        # Every input the graph needs, the one above first; the others must hold the given value or the graph
        # refuses the call (onnxruntime raises, naming the check), e.g. a sound model's sample_rate.
        "inputs": [{"name": front.input_name, "dtype": front.dtype, "shape": front.shape},
                   *({"name": k, "dtype": "int64", "shape": [1], "value": v,
                      "otherwise": f"refused: onnxruntime raises, naming the node {guards.check_name(k, v)}"}
                     for k, v in front.required.items())],
        "output": {"name": "probabilities", "dtype": "float32", "shape": ["batch", len(est.classes_)]},
        "preprocessing": {"outside_graph": front.outside, "in_graph": front.in_graph},
        "files": sorted(front.files),
        **({"sample_rate": {"hz": sr, "other_rates": "refused by the graph, not resampled: resample first (e.g. "
                            f"librosa.resample(x, orig_sr=RATE, target_sr={sr})) and pass sample_rate={sr}"}}
           if (sr := front.required.get("sample_rate")) else {}),
        "adapter": None if adapter is None else {"name": adapter.registry_name,
                                                 "params": _params(adapter)},
    })


def _params(adapter) -> dict:
    """The adapter's parameters as JSON; an embedding given as arrays is named, not copied."""
    params = adapter.get_params(deep=False)
    if isinstance(params.get("embedding"), (tuple, list)):
        params["embedding"] = "(vocabulary, matrix) pair: see vocabulary.json"
    return params
