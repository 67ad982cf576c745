"""Log-mel throughput: `SpectrogramGrid` (batched torch) against a per-clip ``librosa.feature.melspectrogram`` loop.

Both compute the same thing from the same 1,000 one-second waveforms at 16 kHz: mel power (n_fft=512, hop 160,
64 bands, Slaney), then ``power_to_db`` with top_db=80. One timed run each, after a small warm-up call.

    python benchmarks/logmel.py             # CPU, plus the GPU when there is one
    python benchmarks/logmel.py --clips 200 # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import librosa
import numpy as np
import torch

from gridcnn.adapters.audio import SpectrogramGrid

SR, N_FFT, HOP, N_MELS = 16000, 512, 160, 64


def machine() -> str:
    """One line naming the CPU, its cores, torch's threads and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}; {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads; {gpu}"


def librosa_loop(clips: np.ndarray) -> np.ndarray:
    """The per-clip reference: what one would write without the adapter."""
    out = []
    for y in clips:
        power = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
        out.append(librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0).T)
    return np.stack(out)


def adapter(clips: np.ndarray, device: str) -> np.ndarray:
    """The adapter on the same clips, without normalisation so both outputs are comparable."""
    grid = SpectrogramGrid(SR, 1.0, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, normalize=False, device=device)
    out = grid.fit_transform(clips)[:, 0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out


def timed(fn, *args):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def chirps(n: int, seed: int = 0) -> np.ndarray:
    """``n`` one-second clips, the same for a given seed."""
    # Chirps over a random range plus noise: real spectral content, and no two clips alike.
    rng = np.random.default_rng(seed)
    lo, hi = rng.uniform(80, 1000, n), rng.uniform(2000, 7500, n)
    clips = np.stack([librosa.chirp(fmin=a, fmax=b, sr=SR, duration=1.0) for a, b in zip(lo, hi)])
    return (0.5 * clips + 0.01 * rng.standard_normal(clips.shape)).astype(np.float32)


def measure(clips: np.ndarray, devices=("cpu",)) -> dict:
    """Seconds of the librosa loop and of the adapter on each device, each after a small warm-up call.

    Returns ``{"clips", "librosa_s", "adapter_s": {device: s}, "max_db_diff": {device: dB}}``.
    """
    librosa_loop(clips[:4])
    reference, t_ref = timed(librosa_loop, clips)
    result = {"clips": len(clips), "librosa_s": t_ref, "adapter_s": {}, "max_db_diff": {}}
    for device in devices:
        adapter(clips[:4], device)
        ours, result["adapter_s"][device] = timed(adapter, clips, device)
        result["max_db_diff"][device] = float(np.abs(ours - reference).max())
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000, help="one-second clips to transform (default 1000)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    m = measure(chirps(args.clips), devices)
    t_ref = m["librosa_s"]
    print(f"{'librosa loop':22s}: {t_ref:7.3f} s  {args.clips / t_ref:7.0f} clips/s")
    for device in devices:
        t_ours = m["adapter_s"][device]
        print(
            f"{f'SpectrogramGrid ({device})':22s}: {t_ours:7.3f} s  {args.clips / t_ours:7.0f} clips/s  "
            f"ratio {t_ref / t_ours:6.1f}x  (max |dB difference| {m['max_db_diff'][device]:.2g})"
        )


if __name__ == "__main__":
    main()
