"""`SpectrogramGrid`: sound clips (files or waveforms) to log-mel spectrogram grids, computed in batches with torch."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from gridcnn.adapters.audio.clips import AUDIO_EXTENSIONS, ClipError, describe, fit_length, is_path, load_clip
from gridcnn.adapters.audio.melspec import GPU_BATCH_SAMPLES, mel_filters, mel_spectrogram, power_to_db_
from gridcnn.training.steps import resolve_device
from gridcnn.exceptions import GridCNNError
from gridcnn.adapters.base import ADAPTERS, GridAdapter, map_rows

# A waveform array with more channels (7.1 surround has 8) or shorter clips is not sound: most likely images.
MAX_CHANNELS = 8
MIN_CLIP_SECONDS = 0.01


@ADAPTERS.register("spectrogram")
class SpectrogramGrid(GridAdapter):
    """Turn sound clips into log-mel spectrograms of shape (n, 1, frames, n_mels): rows are time, columns frequency.

    Each clip is read (wav, flac, ogg, mp3 through soundfile; other formats through librosa where it can), mixed
    down to mono, resampled to ``sample_rate``, cropped or padded with silence at the end to ``duration`` seconds,
    and turned into a mel power spectrogram in batches with ``torch.stft`` and librosa's mel filter bank. The power
    matches ``librosa.feature.melspectrogram`` with the same settings (window "hann", ``center=True``, constant
    padding, Slaney mel scale and norm) and is converted to decibels as ``librosa.power_to_db`` does.

    Parameters
    ----------
    sample_rate : int, default=16000
        Rate (Hz) every clip is resampled to.
    duration : float or "auto", default=1.0
        Seconds each clip is cropped (keeping its start) or padded to; "auto" uses the longest clip seen in `fit`.
    n_fft : int, default=512
        FFT size and window length in samples (32 ms at 16 kHz).
    hop_length : int, default=160
        Samples between frames (10 ms at 16 kHz); a clip of ``s`` samples gives ``1 + s // hop_length`` frames.
    n_mels : int, default=64
        Mel bands: the grid's width.
    f_min : float, default=0.0
        Lowest frequency (Hz) of the mel filter bank.
    f_max : float, default=None
        Highest frequency (Hz); None means ``sample_rate / 2``.
    top_db : float, default=80.0
        Floor each clip's decibels at its maximum minus ``top_db``, as ``librosa.power_to_db`` does; None for no floor.
    normalize : bool, default=True
        Standardise the decibels with the mean and standard deviation learned in `fit`.
    input_sample_rate : int, default=None
        Rate (Hz) of waveforms given as arrays; None means they are already at ``sample_rate``. Files carry
        their own rate.
    backend : {"torch", "torchaudio"}, default="torch"
        "torchaudio" uses ``torchaudio.transforms.MelSpectrogram`` (same settings, same numbers) when torchaudio
        imports; it is never required.
    device : str, default="auto"
        Where the spectrograms are computed: "auto" (a GPU when there is one), "cpu", "cuda", "cuda:N" or "mps".
    on_error : {"raise", "skip"}, default="raise"
        What an unreadable, empty or non-finite clip does: "raise" a `GridCNNError` naming the clip and the
        problem, or "skip" it with a warning. Skipping returns fewer rows than X has, so use it where you can drop
        the matching labels: ``grids = adapter.fit_transform(X); y = adapter.drop_skipped(y)``. A Pipeline cannot drop
        rows of y, so there it ends in scikit-learn's "inconsistent numbers of samples" error; read the files with
        `gridcnn.data` loaders (``audio_folder(on_error="skip")`` drops unreadable files with their labels)
        or keep ``on_error="raise"`` there.

    Attributes
    ----------
    n_samples_ : int
        Samples per clip after cropping or padding.
    duration_ : float
        ``n_samples_ / sample_rate``: the duration used, learned when ``duration="auto"``.
    n_frames_ : int
        Frames per grid (its height).
    mean_, std_ : float
        Statistics of the training decibels, when ``normalize=True``.
    skipped_, kept_ : list of dict, ndarray of bool
        The inputs the last call left out (``{"index", "input", "reason"}``) and which became rows; see
        `GridAdapter`.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(8000) / 16000
    >>> X = np.stack([np.sin(2 * np.pi * f * t) for f in (300, 600, 1200)])
    >>> SpectrogramGrid(duration=0.5, device="cpu").fit_transform(X).shape
    (3, 1, 51, 64)
    """

    registry_name = "spectrogram"
    modality = "audio"
    file_extensions = AUDIO_EXTENSIONS
    upload_kind = "sound"
    _fitted_attribute = "n_samples_"
    _nonfinite_fix = ("Its samples are too large for a float32 power spectrum (sound files read as [-1, 1]): scale "
                      "the waveform, or remove it.")

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "duration": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "n_fft": [Interval(Integral, 2, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "f_min": [Interval(Real, 0, None, closed="left")],
        "f_max": [Interval(Real, 0, None, closed="neither"), None],
        "top_db": [Interval(Real, 0, None, closed="neither"), None],
        "normalize": ["boolean"],
        "input_sample_rate": [Interval(Integral, 1, None, closed="left"), None],
        "backend": [StrOptions({"torch", "torchaudio"})],
        "device": [str],
        "on_error": [StrOptions({"raise", "skip"})],
    }

    def __init__(
        self,
        sample_rate=16000,
        duration=1.0,
        *,
        n_fft=512,
        hop_length=160,
        n_mels=64,
        f_min=0.0,
        f_max=None,
        top_db=80.0,
        normalize=True,
        input_sample_rate=None,
        backend="torch",
        device="auto",
        on_error="raise",
    ):
        self.sample_rate = sample_rate
        self.duration = duration
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.top_db = top_db
        self.normalize = normalize
        self.input_sample_rate = input_sample_rate
        self.backend = backend
        self.device = device
        self.on_error = on_error

    def read_upload(self, name: str, data: bytes):
        """An uploaded sound file's bytes -> a mono float32 waveform at the adapter's rate (``gridcnn serve``)."""
        import io

        import soundfile as sf

        try:
            wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or TypeError for bad data
            raise GridCNNError(
                f"File {name!r} is not a sound file gridcnn can read ({type(exc).__name__}). Use WAV, FLAC, OGG or "
                "MP3."
            ) from None
        if len(wave) == 0:
            raise GridCNNError(f"File {name!r} holds no samples. Use a clip with sound in it.")
        mono = wave.mean(axis=1)
        # NaN or infinite samples are not resampled (librosa refuses them with its own error): the caller's check
        # (adapters.file_advice) names them.
        if rate != self.sample_rate and np.isfinite(mono).all():
            import librosa

            mono = librosa.resample(mono, orig_sr=rate, target_sr=self.sample_rate, res_type="soxr_hq")
        return np.ascontiguousarray(mono, dtype=np.float32)

    def onnx_frontend(self):
        from gridcnn.export.frontends import spectrogram

        return spectrogram(self)

    def melspectrogram(self, X):
        """Mel power spectrograms before decibels and normalisation, as ``librosa.feature.melspectrogram`` gives.

        Parameters
        ----------
        X : list of str or path, list of array, or ndarray
            Sound file paths or waveforms.

        Returns
        -------
        power : ndarray of float32 of shape (n_kept, n_frames_, n_mels)
            Time along rows (librosa's output transposed).
        """
        check_is_fitted(self)
        self._prepare(X)
        return self._power(self._read(X)).numpy()

    # -- the conversion (GridAdapter calls these after checking parameters and inputs) ---------------------------

    def _fit_transform(self, X):
        clips = self._read(X)
        if self.duration == "auto":
            self.n_samples_ = int(max(len(c) for c in clips))
        else:
            self.n_samples_ = max(1, int(round(self.duration * self.sample_rate)))
        self.duration_ = self.n_samples_ / self.sample_rate
        self.n_frames_ = 1 + self.n_samples_ // self.hop_length
        db = self._decibels(clips)
        self._check_finite(db[:, None], X)  # before the statistics: one overflowing clip would make every grid NaN
        if self.normalize:
            self.mean_ = float(db.mean(dtype=np.float64))
            # A constant input (all silence) has std 0; 1 then leaves it centred instead of dividing by zero.
            self.std_ = float(db.std(dtype=np.float64)) or 1.0
        return self._scale(db)

    def _transform(self, X):
        if self.on_error == "raise":  # batch by batch, so only one batch of decoded clips is held at a time
            return map_rows(lambda part, start: self._scale(self._decibels(self._read(part, start))), _as_items(X))
        return self._scale(self._decibels(self._read(X)))

    def state_grid_shape(self):
        samples = int(self.n_samples_)
        if int(self.n_frames_) != 1 + samples // int(self.hop_length):
            raise ValueError(f"n_frames_={self.n_frames_} is not 1 + n_samples_ // hop_length = "
                             f"{1 + samples // int(self.hop_length)}")
        return 1, int(self.n_frames_), int(self.n_mels)

    def _check_parameters(self):
        """The checks that involve two parameters."""
        nyquist = self.sample_rate / 2
        if self.f_max is not None and self.f_max > nyquist:
            raise GridCNNError(
                f"f_max={self.f_max} is above the Nyquist frequency {nyquist:g} of sample_rate={self.sample_rate}. "
                f"Use f_max <= {nyquist:g}, f_max=None, or a higher sample_rate."
            )
        top = nyquist if self.f_max is None else self.f_max
        if self.f_min >= top:
            raise GridCNNError(f"f_min={self.f_min} must be below f_max ({top:g} Hz). Lower f_min or raise f_max.")

    def _check_modality(self, X):
        """Refuse image files (the base class) and arrays that are images rather than waveforms."""
        super()._check_modality(X)
        shape = tuple(X.shape) if hasattr(X, "shape") and not isinstance(X, (list, tuple)) else None
        if shape is None or len(shape) not in (2, 3) or getattr(X, "dtype", None) == object:
            return
        channels, samples = (1, shape[1]) if len(shape) == 2 else shape[1:]
        rate = self.input_sample_rate or self.sample_rate
        if channels > MAX_CHANNELS or samples < MIN_CLIP_SECONDS * rate:
            raise GridCNNError(
                f"SpectrogramGrid reads sound, but X of shape {shape} would be {shape[0]} clips of {channels} "
                f"channel(s) x {samples} samples ({1000 * samples / rate:.3g} ms at {rate} Hz). That looks like "
                f"images or other data, not waveforms (at most {MAX_CHANNELS} channels and "
                f"{MIN_CLIP_SECONDS * 1000:g} ms). Use ImageGrid ('image') for images, SequenceGrid ('sequence') "
                "for other signals, or pass input_sample_rate= if these really are clips at a lower rate."
            )

    def _read(self, X, offset: int = 0):
        """Decode every input to mono samples, raising or skipping (on_error) the ones that cannot be used.

        ``offset`` is the index in the caller's X of this X's first clip, so messages name the clip the user knows.
        """
        items = _as_items(X)
        clips = []
        for i, (item, clip) in enumerate(zip(items, self._decode(items))):
            if not isinstance(clip, ClipError):
                clips.append(clip)
            else:
                exc = clip
                if self.on_error == "raise":
                    raise GridCNNError(
                        f"{describe(item, offset + i)} cannot be used: {exc.problem}. Fix: {exc.fix}, or pass "
                        "on_error='skip' to leave such clips out (in a recipe: on_error = \"skip\" under [adapter])."
                    ) from None
                self._skip(offset + i, item, exc.problem)
        if not clips:
            first = self.skipped_[-len(items)]
            raise GridCNNError(
                f"None of the {len(items)} clip(s) could be used; the first: "
                f"{describe(items[first['index'] - offset], first['index'])} cannot be used: {first['reason']}. "
                "Check the paths and formats of X."
            )
        return clips

    def _decode(self, items) -> list:
        """Each item as a clip, or the `ClipError` it raised; files are decoded and resampled on a thread pool."""

        def load(item):
            try:
                return load_clip(item, self.sample_rate, self.input_sample_rate)
            except ClipError as exc:
                return exc

        # libsndfile and soxr release the GIL, so decoding and resampling files scale with the threads; arrays
        # in memory only need converting, which threads would not speed up.
        workers = min(torch.get_num_threads(), len(items)) if any(map(is_path, items)) else 1
        if workers <= 1:
            return [load(item) for item in items]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(load, items))

    def _mel_basis(self) -> np.ndarray:
        """librosa's mel filter bank (n_mels, 1 + n_fft // 2), refusing bands that no FFT bin reaches."""
        basis = mel_filters(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        empty = int((basis.max(axis=1) == 0).sum())
        if empty:
            raise GridCNNError(
                f"{empty} of the n_mels={self.n_mels} mel bands contain no FFT bin with n_fft={self.n_fft}. "
                "Use fewer mel bands, a larger n_fft, or a wider f_min..f_max range."
            )
        return basis.astype(np.float32)

    def _power(self, clips, decibels: bool = False) -> torch.Tensor:
        """Mel power (n, frames, n_mels) on the CPU, or its decibels; see `gridcnn.adapters.audio.melspec` for how."""
        device = resolve_device(self.device)
        if self.backend == "torchaudio":
            return self._torchaudio_power(clips, device, decibels)
        return mel_spectrogram(
            clips, self.n_samples_, self.n_fft, self.hop_length, self._mel_basis(), top_db=self.top_db,
            decibels=decibels, device=device,
        )

    def _decibels(self, clips) -> np.ndarray:
        """``librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db)`` of every clip: (n, frames, n_mels)."""
        return self._power(clips, decibels=True).numpy()

    def _scale(self, db: np.ndarray) -> np.ndarray:
        """Normalise and add the channel axis: float32 (n, 1, frames, n_mels)."""
        if self.normalize:
            db = (db - self.mean_) / self.std_
        return np.ascontiguousarray(db[:, None], dtype=np.float32)

    def _torchaudio_power(self, clips, device, decibels: bool) -> torch.Tensor:
        """What `_power` computes, through ``torchaudio.transforms.MelSpectrogram`` (librosa's settings)."""
        try:
            import torchaudio
        except Exception as exc:  # an ImportError, or an OSError when its compiled parts do not match torch
            raise GridCNNError(
                f"backend='torchaudio' needs torchaudio, which does not import here ({type(exc).__name__}: {exc}). "
                f"Install the torchaudio release built for torch {torch.__version__}, or use backend='torch' "
                "(the same numbers)."
            ) from None
        melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, f_min=self.f_min,
            f_max=self.f_max, n_mels=self.n_mels, window_fn=torch.hann_window, power=2.0, center=True,
            pad_mode="constant", norm="slaney", mel_scale="slaney",
        ).to(device)
        step = max(1, GPU_BATCH_SAMPLES // self.n_samples_)  # bounds the STFT's memory on long clips
        parts = []
        for start in range(0, len(clips), step):
            wave = np.stack([fit_length(c, self.n_samples_) for c in clips[start : start + step]])
            parts.append(melspec(torch.from_numpy(wave).to(device)).transpose(1, 2).cpu())
        power = torch.cat(parts)
        return power_to_db_(power, self.top_db) if decibels else power


def _as_items(X) -> list:
    """The inputs of X as a list: paths, or waveforms (rows of a 2-D or 3-D array)."""
    if is_path(X):
        raise GridCNNError(
            f"X must be a list of clips (sound file paths or waveforms). Got one path, {os.fspath(X)!r}; "
            "wrap it in a list: [path]."
        )
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim not in (2, 3):
            raise GridCNNError(
                f"An array X must have shape (n, samples) or (n, channels, samples). Got shape {X.shape} instead. "
                "For one waveform, wrap it in a list: [waveform]."
            )
        items = list(X)
    else:
        try:
            items = list(X)
        except TypeError:
            raise GridCNNError(
                f"X must be a list of clips (sound file paths or waveforms). Got {type(X).__name__} instead."
            ) from None
    if not items:
        raise GridCNNError("X holds no clips. Pass at least one sound file path or waveform.")
    return items
