"""Sound folders in voices never heard: zero-config's choices one at a time, and pretrained against from scratch.

Run:  python -m benchmarks.sound_folders [--set spoken_words spoken_digits] [--train-voices 20] [--pretrained]

The data are `gridcnn.data.audio`'s synthesised sets, written as a class-per-folder tree with ``train/`` and
``test/`` whose test voices are never heard in training (every fifth voice): ``spoken_words`` (Speech Commands'
"yes", "no", "up", ...) and ``spoken_digits``. On each, side by side on the same split and seed:

* zero-config before issue 26 (its rule, kept here: clips cut to the 95th percentile of the durations, 40 mel
  bands, a hop giving about 64 frames, spectrogram augmentation (time shift + SpecAugment masks), 10% of the
  training files held out for validation);
* ``make_pipeline(SpectrogramGrid(), GridCNNClassifier())`` with bare defaults (1 s, 64 bands, hop 160; the
  estimator, not told the grids are sound, augments them as pictures: shifted along both axes, no masks);
* the old zero-config with one choice changed to the bare pipeline's, each alone;
* zero-config now: `auto_recipe` on the folder, exactly what ``gridcnn fit FOLDER`` trains;
* with ``--pretrained``, on spoken digits: EfficientNet-Lite0 from ImageNet (one-channel spectrograms into its
  three-channel stem by summed weights) against the same network from scratch and against zero-config now.

Fit time is the estimator's ``fit`` alone (the spectrograms are computed once per adapter setting, outside it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line

#: (label, adapter changes, estimator changes) from the old zero-config; each changes one choice to the bare one's.
SINGLE_CHANGES = (
    ("clip length 1.0 s (not the 95th percentile)", {"duration": 1.0, "hop_length": None}, {}),
    ("64 mel bands (not 40)", {"n_mels": 64}, {}),
    ("hop 160, 10 ms (not ~64 frames)", {"hop_length": 160}, {}),
    ("no validation hold-out (not 10%)", {}, {"validation_fraction": None}),
    ("no SpecAugment masks", {}, {"augment_time_mask": 0, "augment_freq_mask": 0}),
    ("augmented as pictures (shift both axes, no masks)", {}, {"modality": "image"}),
)


def write_folder(name: str, voices: int, takes: int, train_voices: int | None, root: Path) -> Path:
    """``root/name/{train,test}/<class>/*.wav``: copies of the synthesised clips, test voices held out; training
    from the first ``train_voices`` of the training voices (in espeak-ng's mixed order), testing on all test voices."""
    from gridcnn.data import load_dataset

    out = root / name
    for split in ("train", "test"):
        X, y = load_dataset(name, split=split, voices=voices, takes=takes)
        voice = [Path(p).name.split("_")[0] for p in X]
        keep = set(sorted(set(voice), key=lambda v: (zlib.crc32(v.encode()), v))[:train_voices or None])
        for path, label, v in zip(X, y, voice):
            if split == "train" and v not in keep:
                continue
            folder = out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / Path(path).name)
    return out


def old_rule(paths) -> dict:
    """Zero-config's spectrogram settings before issue 26 (gridcnn/workflow/auto.py's `_audio_adapter` then)."""
    import soundfile as sf

    durations = [sf.info(str(f)).frames / sf.info(str(f)).samplerate for f in paths[:: max(1, len(paths) // 200)]]
    duration = round(min(max(float(np.percentile(durations, 95)), 0.1), 10.0), 2)
    return {"name": "spectrogram", "sample_rate": 16000, "duration": duration, "n_fft": 512,
            "hop_length": max(64, int(16000 * duration / 64)), "n_mels": 40}


class Grids:
    """Spectrograms of the split under each adapter setting, computed once per setting."""

    def __init__(self, X_train, y_train, X_test):
        self.X_train, self.y_train, self.X_test, self.cache = X_train, y_train, X_test, {}

    def __call__(self, adapter: dict):
        from gridcnn.adapters import get_adapter

        key = tuple(sorted(adapter.items()))
        if key not in self.cache:
            a = get_adapter(adapter["name"], **{k: v for k, v in adapter.items() if k != "name"}, device="cpu")
            self.cache[key] = (a.fit_transform(self.X_train), a.transform(self.X_test))
        return self.cache[key]


def score(grids: Grids, adapter: dict, estimator: dict, y_test) -> dict:
    from gridcnn import GridCNNClassifier

    G_train, G_test = grids(adapter)
    est = GridCNNClassifier(**estimator)
    t = time.perf_counter()
    est.fit(G_train, grids.y_train)
    fit_s = time.perf_counter() - t
    return {"accuracy": float(est.score(G_test, y_test)), "fit_s": fit_s, "epochs": int(est.n_iter_),
            "grid": "x".join(map(str, G_train.shape[2:]))}


def compare(name: str, folder: Path, seeds: list[int], pretrained: bool, singles: bool):
    from gridcnn.data.reader import read_data
    from gridcnn.workflow.auto import auto_recipe

    train, test = read_data(folder, split="train"), read_data(folder, split="test")
    grids = Grids(list(train.X), np.asarray(train.y), list(test.X))
    old = old_rule(list(train.X))
    old_est = {"validation_fraction": 0.1, "modality": "audio"}
    auto = auto_recipe(folder)
    now = dict(auto.recipe.adapter)
    now_est = {k: v for k, v in auto.recipe.estimator.items() if k != "random_state"}
    now_est["modality"] = "audio"  # what build_pipeline tells the estimator
    rows = [("zero-config before issue 26", old, old_est),
            ("bare `make_pipeline(SpectrogramGrid(), GridCNNClassifier())`", {"name": "spectrogram"}, {})]
    if singles:
        for label, a, e in SINGLE_CHANGES:
            adapter = {**old, **a}
            if adapter["hop_length"] is None:  # the old hop rule, applied to the new length
                adapter["hop_length"] = max(64, int(16000 * adapter["duration"] / 64))
            rows.append((f"before, {label}", adapter, {**old_est, **e}))
    rows.append(("zero-config now (`gridcnn fit FOLDER`)", now, now_est))
    if singles:
        rows += [("now, but 64 mel bands", {**now, "n_mels": 64}, now_est),
                 ("now, but 1.0 s clips", {**now, "duration": 1.0}, now_est),
                 ("now, but 10% held out for validation", now, {**now_est, "validation_fraction": 0.1}),
                 ("now, but with SpecAugment masks", now,
                  {k: v for k, v in now_est.items() if not k.endswith("_mask")})]
    if pretrained:
        from gridcnn.workflow.auto import PRETRAINED_ARCH, PRETRAINED_EPOCHS

        tuned = {**now_est, "max_epochs": PRETRAINED_EPOCHS, "batch_size": 32}
        rows.append((f"{PRETRAINED_ARCH} from ImageNet, {PRETRAINED_EPOCHS} epochs", now,
                     {**tuned, "architecture": PRETRAINED_ARCH, "pretrained": True}))
        rows.append((f"{PRETRAINED_ARCH} from scratch, {PRETRAINED_EPOCHS} epochs", now,
                     {**tuned, "architecture": PRETRAINED_ARCH}))
    results = []
    for label, adapter, estimator in rows:
        runs = [score(grids, adapter, {**estimator, "random_state": seed}, np.asarray(test.y)) for seed in seeds]
        acc = [100 * r["accuracy"] for r in runs]
        settings = ", ".join(f"{k}={v}" for k, v in adapter.items() if k not in ("name", "sample_rate", "n_fft"))
        each = f" ({', '.join(f'{a:.1f}' for a in acc)})" if len(acc) > 1 else ""
        print(f"| {name} | {label} | {settings or 'defaults'} | {runs[0]['grid']} | {np.mean(acc):.1f}%{each} | "
              f"{runs[0]['epochs']} | {np.mean([r['fit_s'] for r in runs]):.0f} |", flush=True)
        results.append((label, acc))
    return len(train.y), len(test.y)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs="+", default=["spoken_words", "spoken_digits"],
                        choices=["spoken_words", "spoken_digits"], help="which synthesised sets")
    parser.add_argument("--voices", type=int, default=100, help="espeak-ng voices (every fifth is a test voice)")
    parser.add_argument("--takes", type=int, default=1, help="clips per voice and word, each in another accent")
    parser.add_argument("--train-voices", type=int, default=20,
                        help="train on this many of the training voices (few: where the choices matter)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (mean, then each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--no-singles", action="store_true", help="leave out the one-change rows")
    parser.add_argument("--pretrained", action="store_true",
                        help="add EfficientNet-Lite0 from ImageNet and from scratch (on spoken_digits only)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"Machine: {machine_line()}\n")
    print("| data | zero-config's choice | spectrogram | grid (frames x bands) | test accuracy, unseen voices: "
          "mean (each seed) | epochs | fit (s), mean |\n|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="sound_folders-") as tmp:
        sizes = []
        for name in args.set:
            folder = write_folder(name, args.voices, args.takes, args.train_voices, Path(tmp))
            n = compare(name, folder, args.seeds, args.pretrained and name == "spoken_digits", not args.no_singles)
            sizes.append(f"{name} {n[0]} / {n[1]}")
    print(f"\nTrain / test files: {'; '.join(sizes)} ({args.train_voices} training voices of {args.voices}, "
          f"{args.takes} take(s), seeds {' '.join(map(str, args.seeds))}). Whole run {(time.perf_counter() - start) / 60:.1f} min; load average at the end "
          f"{os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
