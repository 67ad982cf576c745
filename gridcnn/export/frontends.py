"""What an exported graph computes before the network: each adapter's preprocessing as a small torch module.

One function per kind of preprocessing returns a `Frontend`: the module, the graph's input (name, dtype, shape), an
example batch to trace with, and a description of what a caller does before feeding the graph. Each adapter's
``onnx_frontend`` method calls its function, so the exporter asks the adapter and keeps no table of adapters. They
read only the adapters' parameters and fitted attributes, so the graph computes what ``model.predict_proba``
computes from the same input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gridcnn.exceptions import GridCNNError
from gridcnn.export.guards import check_name


@dataclass
class Frontend:
    module: nn.Module
    input_name: str
    dtype: str
    shape: list  # "batch" for the dynamic batch axis, "length" where any length is cropped or padded in the graph
    example: np.ndarray
    outside: list[str]  # what the caller does before the graph, in order
    in_graph: list[str]  # what the graph does before the network
    files: dict = field(default_factory=dict)  # extra files written beside the model: name -> bytes
    min_opset: int = 13
    # Further int64 inputs the graph refuses unless they equal the value (export.guards): name -> value. What the
    # graph cannot see in its main input but would misread without, such as a clip's sample rate.
    required: dict = field(default_factory=dict)


def _f32(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


class _Image(nn.Module):
    """uint8 pixels (n, H, W, C) -> scaled (and standardised) float grids (n, C, H, W), as ImageGrid does."""

    def __init__(self, scale: float, mean, std):
        super().__init__()
        self.scale = float(scale)
        self.standardize = mean is not None
        self.register_buffer("mean", _f32(mean if mean is not None else [0.0]).reshape(1, -1, 1, 1))
        self.register_buffer("std", _f32(std if std is not None else [1.0]).reshape(1, -1, 1, 1))

    def forward(self, x):
        x = x.permute(0, 3, 1, 2).to(torch.float32) / self.scale
        return (x - self.mean) / self.std if self.standardize else x


def image(adapter) -> Frontend:
    h, w = (int(v) for v in adapter.image_size_)
    c = int(adapter.n_channels_)
    scale = 255.0 if adapter.scale == "auto" else float(adapter.scale)
    mode = "gray (L, ITU-R 601-2 luma)" if adapter.mode_ == "L" else "RGB"
    outside = [f"decode the image and convert it to {mode} (PIL: image.convert({adapter.mode_!r}))"]
    if adapter.size is not None:
        how = {"squash": "", "crop": ", after cutting the centre of the image to that aspect ratio (PIL's "
               "resize with box=)", "pad": ", keeping the aspect ratio: the image fitted inside and centred on "
               "black (0) bands"}[getattr(adapter, "aspect", "squash")]
        outside.append(f"resize to {w}x{h} (width x height) with PIL's {adapter.interpolation} filter{how}")
    outside.append(f"stack as uint8 (n, {h}, {w}, {c}), channels last")
    in_graph = [f"cast to float32 and divide by {scale:g}"]
    if adapter.mean_ is not None:
        in_graph.append(f"subtract the channel means {np.round(adapter.mean_, 6).tolist()} and divide by the "
                        f"deviations {np.round(adapter.std_, 6).tolist()}")
    in_graph.append("move channels first: (n, C, H, W)")
    example = np.random.default_rng(0).integers(0, 256, (2, h, w, c), dtype=np.uint8)
    return Frontend(_Image(scale, adapter.mean_, adapter.std_), "image", "uint8", ["batch", h, w, c], example,
                    outside, in_graph)


class _LogMel(nn.Module):
    """Waveforms (n, any length) -> normalised log-mel grids (n, 1, frames, n_mels), as SpectrogramGrid computes.

    The crop or zero padding to the fitted length happens here too, so a caller feeds clips of any length.
    """

    def __init__(self, adapter, basis: np.ndarray):
        super().__init__()
        self.n_samples, self.n_fft, self.hop = int(adapter.n_samples_), int(adapter.n_fft), int(adapter.hop_length)
        self.top_db = None if adapter.top_db is None else float(adapter.top_db)
        self.normalize = bool(adapter.normalize)
        self.mean = float(getattr(adapter, "mean_", 0.0) or 0.0)
        self.std = float(getattr(adapter, "std_", 1.0) or 1.0)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True))
        self.register_buffer("basis_t", torch.from_numpy(np.ascontiguousarray(basis.T, dtype=np.float32)))

    def forward(self, wave):
        # Append n_samples zeros, then keep the first n_samples: a crop or a pad with silence, for any input length.
        wave = torch.cat([wave, torch.zeros_like(wave[:, :1]).expand(-1, self.n_samples)], dim=1)[:, : self.n_samples]
        # return_complex=False: ONNX's STFT op (opset 17) returns (real, imaginary) pairs, not complex numbers.
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
                          return_complex=False)
        mel = spec.square().sum(-1).transpose(1, 2) @ self.basis_t
        db = 10.0 * torch.log10(mel.clamp_min(1e-10))
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - self.top_db)
        if self.normalize:
            db = (db - self.mean) / self.std
        return db[:, None]


def spectrogram(adapter) -> Frontend:
    import librosa

    # The adapter's own filter bank: librosa's Slaney mel filters from the same public parameters.
    basis = librosa.filters.mel(sr=adapter.sample_rate, n_fft=adapter.n_fft, n_mels=adapter.n_mels,
                                fmin=adapter.f_min, fmax=adapter.f_max)
    sr, n = int(adapter.sample_rate), int(adapter.n_samples_)
    outside = [
        "decode the clip to float32 samples in [-1, 1] (soundfile.read, or the wave module for 16-bit WAV / 32768)",
        "mix channels down to mono by their mean",
        f"resample to {sr} Hz when the file has another rate (librosa.resample, soxr_hq)",
        f"pass the rate as the second input, sample_rate = {sr} (int64, shape [1]: np.array([RATE]))",
    ]
    in_graph = [
        f"refuse the call unless sample_rate is {sr}: onnxruntime raises, naming the node "
        f"{check_name('sample_rate', sr)} (a clip at another rate would be misread, not answered)",
        f"crop to the first {n} samples or pad with silence at the end ({n / sr:g} s)",
        f"STFT (n_fft {adapter.n_fft}, hop {adapter.hop_length}, periodic Hann window, centred with zero padding)",
        f"power through a {adapter.n_mels}-band Slaney mel filter bank (f_min {adapter.f_min:g} Hz, "
        f"f_max {adapter.f_max or sr / 2:g} Hz)",
        "10 * log10(max(power, 1e-10))" + (f", floored at each clip's maximum minus {adapter.top_db:g} dB"
                                           if adapter.top_db is not None else ""),
    ]
    if adapter.normalize:
        in_graph.append(f"subtract {adapter.mean_:.6g} and divide by {adapter.std_:.6g} (training statistics)")
    t = np.arange(n, dtype=np.float32) / sr
    example = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in (440.0, 1000.0)]).astype(np.float32)
    return Frontend(_LogMel(adapter, basis.astype(np.float32)), "waveform", "float32", ["batch", "length"], example,
                    outside, in_graph, min_opset=17, required={"sample_rate": sr})


class _Lookup(nn.Module):
    """Token ids (n, any length), -1 for padding or unknown words -> embedding grids (n, 1, max_tokens, dim)."""

    def __init__(self, table: np.ndarray, max_tokens: int):
        super().__init__()
        self.max_tokens = int(max_tokens)
        zero = np.zeros((1, table.shape[1]), np.float32)  # row V: what padding and unknown words look up
        self.register_buffer("table", torch.from_numpy(np.concatenate([table.astype(np.float32), zero])))

    def forward(self, ids):
        pad = torch.full_like(ids[:, :1], -1).expand(-1, self.max_tokens)
        ids = torch.cat([ids, pad], dim=1)[:, : self.max_tokens]
        ids = torch.where(ids < 0, torch.full_like(ids, self.table.shape[0] - 1), ids)
        return self.table[ids][:, None]


class _Ids(nn.Module):
    """Token ids (n, any length), -1 for padding -> id grids (n, 1, max_tokens, 1) for a network with a table."""

    def __init__(self, max_tokens: int):
        super().__init__()
        self.max_tokens = int(max_tokens)

    def forward(self, ids):
        pad = torch.full_like(ids[:, :1], -1).expand(-1, self.max_tokens)
        # +1: the network's row 0 is padding (what -1 becomes), row i + 1 token i, as EmbeddingGrid(output="ids").
        return (torch.cat([ids, pad], dim=1)[:, : self.max_tokens] + 1).to(torch.float32)[:, None, :, None]


def embedding(adapter, table, files: dict, outside: list[str]) -> Frontend:
    """The token table lookup; the adapter gives its table, the tokenizer files and what the caller does first
    (`EmbeddingGrid.onnx_frontend`: only it knows how its texts become ids)."""
    m, dim = int(adapter.max_tokens_), int(adapter.embedding_dim_)
    ids = getattr(adapter, "output", "vectors") == "ids"  # the network holds the (fine-tuned) table itself
    in_graph = [f"pad with -1 or crop to {m} tokens", f"look each id up in the {dim}-wide embedding table "
                "(-1 gives a zero row)", "add the channel axis: (n, 1, max_tokens, dim)"]
    if ids:
        in_graph = [f"pad with -1 or crop to {m} tokens", "shape the ids as grids (n, 1, max_tokens, 1)",
                    f"look each id up in the network's own {dim}-wide table, trained with it (-1 gives a zero row)"]
    example = np.random.default_rng(0).integers(-1, len(table), (2, m), dtype=np.int64)
    module = _Ids(m) if ids else _Lookup(np.asarray(table), m)
    return Frontend(module, "token_ids", "int64", ["batch", "length"], example, outside, in_graph, files)


class _Sequence(nn.Module):
    def __init__(self, mean, scale):
        super().__init__()
        self.standardize = mean is not None
        self.register_buffer("mean", _f32(mean if mean is not None else 0.0))
        self.register_buffer("scale", _f32(scale if scale is not None else 1.0))

    def forward(self, x):
        x = (x - self.mean) / self.scale if self.standardize else x
        return x[:, :, None, :]


def sequence(adapter) -> Frontend:
    c = int(adapter.n_channels_)
    width = int(adapter.window or adapter.length_)
    mean = scale = None
    if adapter.mean_ is not None:
        mean, scale = np.asarray(adapter.mean_, np.float32), np.asarray(adapter.scale_, np.float32)
        if adapter.standardize == "channel":
            mean, scale = mean[:, None], scale[:, None]
    outside = [f"shape the signals as float32 (n, {c}, {width})"]
    if adapter.window:
        outside.append(f"cut each signal into windows of {width} steps, stride {adapter.window_stride or width}; "
                       "average the probabilities of a signal's windows")
    in_graph = ([f"standardise per {adapter.standardize} with the training mean and deviation"] if mean is not None
                else []) + ["add the grid axis: (n, C, 1, width)"]
    example = np.random.default_rng(0).standard_normal((2, c, width)).astype(np.float32)
    return Frontend(_Sequence(mean, scale), "signal", "float32", ["batch", c, width], example, outside, in_graph)


def grid(input_shape) -> Frontend:
    shape = [int(v) for v in input_shape]
    example = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    return Frontend(nn.Identity(), "grid", "float32", ["batch", *shape], example,
                    [f"shape the inputs as the grids the model was trained on: float32 (n, {', '.join(map(str, shape))})"
                     ],
                    [])

