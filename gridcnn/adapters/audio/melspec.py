"""Mel power and log-mel spectrograms of many equal-length clips: the arithmetic behind `SpectrogramGrid`.

The numbers are librosa's (``librosa.feature.melspectrogram`` with window "hann", ``center=True``, constant
padding, then ``librosa.power_to_db``); the speed comes from three choices, measured in benchmarks/logmel.py:

- Clips go through in chunks of a quarter of a million samples, each from waveform to decibels in one pass (frames,
  ``rfft``, power, mel matmul, log), so a chunk's intermediates stay near the cache instead of streaming a whole
  batch's complex spectrum through memory several times.
- On the CPU the chunks are shared among a pool of Python threads, each running torch on one thread. torch
  releases the GIL inside its kernels, so the threads run in parallel with no intra-op barrier per kernel: with
  the default intra-op threading, every small kernel waits on every core, which costs little on a quiet machine
  but several times the work on a busy one.
- Power and mel filtering are one matmul over the squared real and imaginary parts side by side: elementwise
  kernels over the strided halves of a complex tensor (``re * re + im * im``, ``abs() ** 2``) cost more than the
  FFT on the CPU.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

AMIN = 1e-10
"""librosa.power_to_db's floor: silence maps to -100 dB instead of -inf."""

CHUNK_SAMPLES = 1 << 18
"""Samples per chunk (16 one-second clips at 16 kHz; its frames take 3.3 MB): 16 clips beat 8, 32, 64 and 128."""

GPU_BATCH_SAMPLES = 1 << 22
"""Samples per batch on a GPU, where one large kernel beats many small ones; bounds the STFT's memory."""


def mel_spectrogram(clips, n_samples: int, n_fft: int, hop_length: int, basis: np.ndarray, *, top_db=None,
                    decibels: bool = False, device=torch.device("cpu")) -> torch.Tensor:
    """Mel power, or its decibels, of every clip: float32 (n, 1 + n_samples // hop_length, n_mels) on the CPU.

    ``clips`` are 1-D float32 arrays, cropped or padded with silence at the end to ``n_samples``; ``basis`` is the
    mel filter bank (n_mels, 1 + n_fft // 2). ``top_db`` floors each clip's decibels at its maximum minus it.
    """
    device = torch.device(device)
    # Each bin's row twice, so squared real and imaginary parts go through one matmul (see `_mel`).
    basis_2 = torch.from_numpy(np.repeat(basis.T.astype(np.float32), 2, axis=0)).to(device)
    window = torch.hann_window(n_fft, periodic=True, device=device)  # scipy's "hann", as librosa uses
    frames = 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length
    out = torch.empty((len(clips), frames, basis.shape[0]), dtype=torch.float32)

    def run(start, stop):
        wave = torch.from_numpy(_padded(clips[start:stop], n_samples, n_fft // 2)).to(device)
        mel = _mel(wave, n_fft, hop_length, window, basis_2)
        if decibels:
            power_to_db_(mel, top_db)
        out[start:stop] = mel.cpu()

    if device.type != "cpu":
        step = max(1, GPU_BATCH_SAMPLES // n_samples)
        for start in range(0, len(clips), step):
            run(start, start + step)
        return out
    step = max(1, CHUNK_SAMPLES // n_samples)
    starts = range(0, len(clips), step)
    workers = min(torch.get_num_threads(), len(starts))
    if workers <= 1:
        for start in starts:
            run(start, start + step)
        return out
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # process-wide: each pool thread is one core's worth; restored below
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda start: run(start, start + step), starts))  # list() re-raises a worker's error
    finally:
        torch.set_num_threads(threads)
    return out


def power_to_db_(power: torch.Tensor, top_db=None) -> torch.Tensor:
    """``librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db)`` per clip (first axis), in place."""
    db = power.clamp_(min=AMIN).log10_().mul_(10.0)
    if top_db is not None:
        floor = db.amax(dim=tuple(range(1, db.ndim)), keepdim=True) - top_db
        torch.maximum(db, floor, out=db)
    return db


def _mel(padded: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor, basis_2: torch.Tensor):
    """Mel power (n, frames, n_mels) of padded waveforms (n, samples + 2 * (n_fft // 2)): torch.stft by hand."""
    # unfold is a view; the product with the window is the frames' one copy.
    spec = torch.view_as_real(torch.fft.rfft(padded.unfold(-1, n_fft, hop_length) * window))
    # re**2 and im**2 in place, side by side, then one matmul with each basis row repeated: the same sum as
    # re*re + im*im, without elementwise kernels on the strided halves of a complex tensor (slow on the CPU).
    return spec.square_().flatten(-2) @ basis_2


def _padded(clips, n_samples: int, pad: int) -> np.ndarray:
    """Clips cropped or padded with silence at the end to ``n_samples``, with ``pad`` zeros on both sides.

    The outer padding is ``center=True`` with constant padding, as torch.stft and librosa do it; one copy into a
    zeroed array does the stack, the crop or padding, and the centring.
    """
    out = np.zeros((len(clips), n_samples + 2 * pad), dtype=np.float32)
    for row, clip in zip(out, clips):
        clip = clip[:n_samples]
        row[pad : pad + len(clip)] = clip
    return out


def mel_filters(sr: float, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``, bit for bit: Slaney's mel
    scale and area normalisation, float32 (n_mels, 1 + n_fft // 2).

    The same steps in numpy, so predicting from sound does not import librosa (with numba and scipy.signal, 1 s of
    CPU of the 5 s that ``gridcnn predict`` took for two WAV files); tests compare it with librosa.
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((int(n_mels), int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mels = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), int(n_mels) + 2)
    mel_f = _mel_to_hz(mels)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(int(n_mels)):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]  # constant energy per band
    return weights


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, 200/3 Hz per mel; logarithmic above.
_F_SP, _MIN_LOG_HZ, _LOGSTEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP


def _hz_to_mel(hz: float) -> float:
    hz = np.asanyarray(hz)
    return _MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP if hz >= _MIN_LOG_HZ else hz / _F_SP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs
