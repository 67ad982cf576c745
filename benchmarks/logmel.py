"""Log-mel throughput: `SpectrogramGrid` against a per-clip librosa loop, nnAudio, and the adapter's previous code.

All compute the same thing from the same one-second waveforms at 16 kHz: mel power (n_fft=512, hop 160, 64 bands,
Slaney), then ``power_to_db`` with top_db=80. The contenders run in turn, ``--repeats`` rounds, and each is
reported by its median wall time and median CPU time (all threads); on a shared machine the ratios of the medians
are what carries over. A second table times whole pipelines from WAV files: ``SpectrogramGrid().fit_transform(paths)``
against ``librosa.load`` + ``melspectrogram`` per file, on 16 kHz files and on 22.05 kHz files (resampled).

    python -m benchmarks.logmel             # 1,000 clips, 5 rounds, plus the GPU when there is one
    python -m benchmarks.logmel --clips 200 --repeats 3 # quicker
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from threadpoolctl import threadpool_limits

from gridcnn.adapters.audio.adapter import SpectrogramGrid

from benchmarks.common import machine_line

SR, N_FFT, HOP, N_MELS = 16000, 512, 160, 64


def to_db(power: np.ndarray) -> np.ndarray:
    return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0)


def librosa_loop(clips) -> np.ndarray:
    """The per-clip reference: what one would write without the adapter."""
    with threadpool_limits(1, user_api="blas"):  # its best setting: BLAS threads only slow per-clip matmuls
        return _librosa_loop(clips)


def _librosa_loop(clips) -> np.ndarray:
    out = []
    for y in clips:
        out.append(to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)).T)
    return np.stack(out)


def adapter(clips, device: str = "cpu") -> np.ndarray:
    """The adapter on the same clips, without normalisation so both outputs are comparable."""
    grid = SpectrogramGrid(SR, 1.0, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, normalize=False, device=device)
    out = grid.fit_transform(clips)[:, 0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out


def previous_adapter(clips: np.ndarray) -> np.ndarray:
    """The adapter's code before its chunked rewrite: one ``torch.stft`` per 262-clip batch, then one mel matmul, intra-op threads."""
    basis = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32))
    window = torch.hann_window(N_FFT, periodic=True)
    out = torch.empty((len(clips), 1 + clips.shape[1] // HOP, N_MELS))
    step = max(1, (1 << 22) // clips.shape[1])
    for start in range(0, len(clips), step):
        wave = torch.from_numpy(clips[start : start + step])
        spec = torch.stft(wave, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
        out[start : start + len(wave)] = (spec.real.square() + spec.imag.square()).transpose(1, 2) @ basis.T
    db = 10.0 * torch.log10(out.clamp_min(1e-10))
    return torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0).numpy()


def nnaudio_fn():
    """nnAudio's MelSpectrogram with librosa's settings (constant padding, Slaney), or None when not installed."""
    try:
        from nnAudio.features import MelSpectrogram
    except ImportError:
        return None
    layer = MelSpectrogram(sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, center=True, pad_mode="constant",
                           htk=False, norm=1, power=2.0, trainable_mel=False, trainable_STFT=False, verbose=False)

    def run(clips: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            power = layer(torch.from_numpy(clips)).transpose(1, 2)
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        return torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0).numpy()

    return run


def timed(fn, *args):
    """(result, wall seconds, CPU seconds of the whole process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def rounds(contenders: dict, args: tuple, repeats: int) -> tuple[dict, dict, dict]:
    """Run every contender once per round, in turn: (outputs, wall seconds lists, CPU seconds lists)."""
    outputs, wall, cpu = {}, {k: [] for k in contenders}, {k: [] for k in contenders}
    for fn in contenders.values():  # warm-up: imports, plans, first allocations
        fn(*(a[:4] for a in args))
    for _ in range(repeats):
        for name, fn in contenders.items():
            outputs[name], w, c = timed(fn, *args)
            wall[name].append(w)
            cpu[name].append(c)
    return outputs, wall, cpu


def chirps(n: int, seed: int = 0, sr: int = SR) -> np.ndarray:
    """``n`` one-second clips, the same for a given seed."""
    # Chirps over a random range plus noise: real spectral content, and no two clips alike.
    rng = np.random.default_rng(seed)
    lo, hi = rng.uniform(80, 1000, n), rng.uniform(2000, 7500, n)
    clips = np.stack([librosa.chirp(fmin=a, fmax=b, sr=sr, duration=1.0) for a, b in zip(lo, hi)])
    return (0.5 * clips + 0.01 * rng.standard_normal(clips.shape)).astype(np.float32)


def measure(clips: np.ndarray, devices=("cpu",), repeats: int = 3) -> dict:
    """Median seconds of every contender on the same waveforms, interleaved, and each one's largest dB difference.

    Returns ``{"clips", "repeats", "librosa_s", "adapter_s": {device: s}, "max_db_diff": {device: dB},
    "others_s": {name: s}, "others_db_diff": {name: dB}, "cpu_s": {name: s}}``.
    """
    contenders = {"librosa": librosa_loop, "previous": previous_adapter}
    contenders.update({f"adapter-{d}": (lambda c, d=d: adapter(c, d)) for d in devices})
    if (nnaudio := nnaudio_fn()) is not None:
        contenders["nnaudio"] = nnaudio
    out, wall, cpu = rounds(contenders, (clips,), repeats)
    med = {k: float(np.median(v)) for k, v in wall.items()}
    diff = {k: float(np.abs(v - out["librosa"]).max()) for k, v in out.items()}
    return {
        "clips": len(clips), "repeats": repeats, "librosa_s": med["librosa"],
        "adapter_s": {d: med[f"adapter-{d}"] for d in devices},
        "max_db_diff": {d: diff[f"adapter-{d}"] for d in devices},
        "others_s": {k: med[k] for k in contenders if k in ("previous", "nnaudio")},
        "others_db_diff": {k: diff[k] for k in contenders if k in ("previous", "nnaudio")},
        "cpu_s": {k: float(np.median(v)) for k, v in cpu.items()},
    }


def librosa_files(paths) -> np.ndarray:
    """librosa.load at 16 kHz (soxr_hq when the file's rate differs), crop/pad to one second, log-mel."""
    with threadpool_limits(1, user_api="blas"):
        return _librosa_files(paths)


def _librosa_files(paths) -> np.ndarray:
    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=SR)
        y = librosa.util.fix_length(y, size=SR)
        out.append(to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)).T)
    return np.stack(out)


def measure_files(n: int, repeats: int = 3, rates=(SR, 22050)) -> dict:
    """Whole pipelines from WAV files (16-bit PCM) at each rate: ``{rate: {"librosa_s", "adapter_s", ...}}``."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rate in rates:
            paths = []
            for i, clip in enumerate(chirps(n, seed=1, sr=rate)):
                paths.append(Path(tmp) / f"{rate}_{i}.wav")
                sf.write(paths[-1], clip, rate, subtype="PCM_16")
            out, wall, cpu = rounds({"librosa": librosa_files, "adapter": adapter}, (paths,), repeats)
            result[rate] = {
                "files": n, "librosa_s": float(np.median(wall["librosa"])),
                "adapter_s": float(np.median(wall["adapter"])),
                "cpu_s": {k: float(np.median(v)) for k, v in cpu.items()},
                "max_db_diff": float(np.abs(out["adapter"] - out["librosa"]).max()),
            }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000, help="one-second clips to transform (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--no-files", action="store_true", help="skip the WAV-file pipelines")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Machine: {machine_line()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    m = measure(chirps(args.clips), devices, args.repeats)
    t_ref = m["librosa_s"]
    rows = [("librosa loop", t_ref, 0.0, "librosa")]
    rows += [(f"SpectrogramGrid ({d})", m["adapter_s"][d], m["max_db_diff"][d], f"adapter-{d}") for d in devices]
    rows += [(k, m["others_s"][k], m["others_db_diff"][k], k) for k in m["others_s"]]
    print(f"{args.clips} clips, median of {args.repeats} interleaved rounds (wall; CPU time of all threads)")
    for label, t, diff, key in rows:
        print(f"{label:24s}: {t:7.3f} s ({m['cpu_s'][key]:6.3f} s CPU)  {args.clips / t:7.0f} clips/s  "
              f"librosa/this {t_ref / t:5.1f}x  max |dB diff| {diff:.2g}")
    if not args.no_files:
        for rate, r in measure_files(args.clips, args.repeats).items():
            print(f"{r['files']} WAV files at {rate} Hz: librosa load+melspectrogram {r['librosa_s']:.3f} s "
                  f"({r['cpu_s']['librosa']:.3f} CPU), SpectrogramGrid().fit_transform {r['adapter_s']:.3f} s "
                  f"({r['cpu_s']['adapter']:.3f} CPU), ratio {r['librosa_s'] / r['adapter_s']:.1f}x, "
                  f"max |dB diff| {r['max_db_diff']:.2g}")


if __name__ == "__main__":
    main()
