"""Reading sound clips: files or waveforms in, mono float32 at one sample rate out.

Plain functions on one clip, apart from the adapter class; the `audio_folder` loader shares the format lists.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3")
"""Formats read through soundfile (libsndfile); anything else goes to librosa, which needs ffmpeg for most."""

AUDIO_EXTENSIONS = (*SOUNDFILE_EXTENSIONS, ".m4a", ".aac", ".opus", ".wma")
"""Extensions `audio_folder` treats as sound files."""


class ClipError(Exception):
    """One clip could not be used: ``problem`` says why, ``fix`` what to do (the caller adds which clip)."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def describe(item, index: int) -> str:
    """``"Clip 3 ('a.wav')"`` or ``"Clip 3 (a waveform)"``: how errors name an input."""
    return f"Clip {index} ({os.fspath(item)!r})" if is_path(item) else f"Clip {index} (a waveform)"


def is_path(item) -> bool:
    """True when ``item`` names a file rather than holding samples."""
    return isinstance(item, (str, os.PathLike))


def read_file(path) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 (channels, samples) and its rate: soundfile, then librosa for other formats."""
    path = Path(path)
    if not path.is_file():
        missing = not path.exists()
        raise ClipError("no such file" if missing else "it is a folder, not a sound file", "check the path")
    import soundfile as sf

    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(sr)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # error_string is libsndfile's own words, without soundfile's "Error opening <path>:" prefix.
        problem = (getattr(exc, "error_string", None) or str(exc).strip() or type(exc).__name__).rstrip(".")
    if path.suffix.lower() not in SOUNDFILE_EXTENSIONS:
        try:  # librosa reaches ffmpeg/gstreamer through audioread, for formats libsndfile lacks (m4a, aac, ...)
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # librosa's "PySoundFile failed" and audioread's deprecation notes
                data, sr = librosa.load(path, sr=None, mono=False, dtype=np.float32)
            return np.atleast_2d(data), int(sr)
        except Exception as exc:  # audioread raises its own classes (NoBackendError, ...), none shared with soundfile
            problem += f"; librosa/audioread: {str(exc).strip() or type(exc).__name__}"
    raise ClipError(
        f"it cannot be decoded ({problem})",
        "re-encode it as WAV, FLAC or OGG (librosa needs ffmpeg for most other formats) or remove it",
    )


def as_waveform(item) -> np.ndarray:
    """A waveform item as float32 (channels, samples); 1-D is mono, 2-D is (channels, samples) as librosa has it."""
    if hasattr(item, "detach"):  # a torch tensor
        item = item.detach().cpu().numpy()
    try:
        data = np.asarray(item, dtype=np.float32)
    except (TypeError, ValueError):
        raise ClipError(
            f"it must be a file path or a waveform of numbers, got {type(item).__name__}",
            "pass file paths or arrays of samples",
        ) from None
    if data.ndim == 1:
        return data[None, :]
    if data.ndim == 2 and data.shape[0] > 8:  # 7.1 surround has 8 channels: an (H, W) image is no waveform
        raise ClipError(
            f"a waveform is (channels, samples) with at most 8 channels, got shape {data.shape}, which looks like an "
            "image", "pass sound (ImageGrid reads images)"
        )
    if data.ndim == 2:
        return data
    raise ClipError(
        f"a waveform must be 1-D (samples) or 2-D (channels, samples), got shape {data.shape}",
        "pass one array per clip",
    )


def load_clip(item, sample_rate: int, input_sample_rate: int | None) -> np.ndarray:
    """One input (path or waveform) as mono float32 samples at ``sample_rate``; raise `ClipError` when unusable."""
    if is_path(item):
        data, sr = read_file(item)
    else:
        data, sr = as_waveform(item), input_sample_rate or sample_rate
    if data.shape[-1] == 0:
        raise ClipError("it is empty (0 samples)", "remove it")
    # Mix down before resampling: one channel to resample instead of several, and the mean commutes with it.
    mono = data.mean(axis=0) if data.shape[0] > 1 else data[0]
    if not np.isfinite(mono).all():
        raise ClipError("it contains NaN or infinite samples", "replace them (np.nan_to_num) or remove it")
    if sr != sample_rate:
        import librosa

        # soxr_hq is librosa.load's own default, so a file read here matches librosa.load(path, sr=sample_rate).
        mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_length(clip: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop to the first ``n_samples`` samples, or pad with silence at the end."""
    if len(clip) >= n_samples:
        return clip[:n_samples]
    return np.pad(clip, (0, n_samples - len(clip)))
