"""Peak memory of batched prediction and transforms on a memory-mapped .npy against the same array loaded whole.

Writes N x 28 x 28 float32 MNIST digits (the 70,000 real ones repeated; 200,000 rows = 598 MiB) to a temporary
.npy, fits a LeNet-5 on 2,000 of them and saves it, then runs each case in a fresh Python process so no case
inherits another's peak. Sizes are in MiB. Each process reports:

- RSS before the call (after imports and loading the model or fitting the adapter);
- peak RSS during the call (the kernel's VmHWM, reset just before the call through /proc/self/clear_refs). The
  pages of a memory-mapped file that were read count here too, but they are the file's page cache: the kernel
  drops them under memory pressure instead of swapping;
- peak anonymous RSS (RssAnon, sampled every 2 ms from the driver process): the memory the process itself
  allocated, which is what batching keeps flat. It includes freed batch buffers that glibc keeps for reuse (its
  mmap threshold rises to 32 MiB after the first large free); the last column is the growth still held after
  the call once ``malloc_trim(0)`` has returned that free heap, which is about the output.

    python -m benchmarks.memory              # 200,000 rows, about 2 minutes on 2 cores
    python -m benchmarks.memory --rows 50000 # quicker

The temporary folder is deleted afterwards.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROWS_PER_FIT = 2000
MB = 1024 * 1024


def status_kb(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM, RssAnon...)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


# -- one case, in its own process ---------------------------------------------------------------------------------


def run_case(case: str, folder: str) -> None:
    """Import and prepare, then make the measured call; print what was measured as JSON lines for `measure`."""
    import warnings

    import numpy as np

    import gridcnn
    from gridcnn.adapters.sequence import SequenceGrid

    # torch warns once when it wraps a read-only (memory-mapped) batch; it does not write to it.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    path = os.path.join(folder, "X.npy")
    if case == "imports":
        call = None
    elif case.startswith("predict_proba"):
        model = gridcnn.load(os.path.join(folder, "model"), device="cpu")
        X = np.load(path, mmap_mode="r") if case.endswith("memmap") else np.load(path)
        call = lambda: model.predict_proba(X)  # noqa: E731
    elif case.startswith("SequenceGrid"):
        X = np.load(path, mmap_mode="r") if "memmap" in case else np.load(path)
        X = X.reshape(len(X), -1)  # each digit read row by row: a signal of 784 steps
        adapter = SequenceGrid().fit(X[:ROWS_PER_FIT])
        if case.endswith("one_batch"):  # what transform did before batching: the whole X in one conversion
            from gridcnn.adapters import base as _base

            _base.BATCH_ROWS = len(X)
        call = lambda: adapter.transform(X)  # noqa: E731
    else:
        raise SystemExit(f"unknown case {case!r}")

    print(json.dumps({"before_mb": status_kb("VmRSS") / 1024, "anon_before_mb": status_kb("RssAnon") / 1024}))
    with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS (Linux 4.0 and later)
        f.write("5")
    print("call", flush=True)  # the driver samples RssAnon from now until the next line
    start = time.perf_counter()
    out = call() if call is not None else None
    seconds = time.perf_counter() - start
    print("done", flush=True)
    hwm_kb = status_kb("VmHWM")
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back the freed heap glibc keeps; what remains is really held
    print(json.dumps({
        "hwm_mb": hwm_kb / 1024, "held_mb": status_kb("RssAnon") / 1024, "seconds": seconds,
        "out_mb": 0.0 if out is None else out.nbytes / MB,
    }), flush=True)


def measure(case: str, folder: str) -> dict:
    """Run one case in a fresh process, sampling its RssAnon every 2 ms from here while the call runs.

    Sampling from outside leaves the measured process alone: a sampling thread inside it allocates too, and its
    allocations interleave with the batches' and change how much freed memory glibc keeps.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.memory", "--case", case.replace(", ", "_").replace(" ", "_"), "--folder", folder],
        stdout=subprocess.PIPE, text=True,
    )
    result = json.loads(child.stdout.readline())
    assert child.stdout.readline().strip() == "call"
    lines, peak_kb = [], 0

    def read():
        for line in child.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    status = f"/proc/{child.pid}/status"
    while not lines:
        try:
            with open(status) as f:
                peak_kb = max(peak_kb, next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")))
        except (OSError, StopIteration):  # the process has ended
            break
        time.sleep(0.002)
    reader.join()
    if child.wait() != 0 or lines[0].strip() != "done":
        raise SystemExit(f"case {case!r} failed")
    result.update(json.loads(lines[-1]), anon_mb=max(peak_kb / 1024, result["anon_before_mb"]))
    return result


# -- the driver ---------------------------------------------------------------------------------------------------


def write_data(folder: str, rows: int) -> float:
    """MNIST repeated to ``rows`` images, written a slice at a time; returns the file size in MiB."""
    import numpy as np
    from numpy.lib.format import open_memmap

    from gridcnn.data import load_dataset

    digits, _ = load_dataset("mnist")
    path = os.path.join(folder, "X.npy")
    out = open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 28, 28))
    for start in range(0, rows, len(digits)):
        part = digits[: rows - start]
        out[start : start + len(part)] = part
    out.flush()
    del out
    return os.path.getsize(path) / MB


def fit_model(folder: str) -> None:
    from gridcnn import GridCNNClassifier
    from gridcnn.data import load_dataset

    X, y = load_dataset("mnist", split="train")
    clf = GridCNNClassifier("lenet5", max_epochs=1, random_state=0).fit(X[:ROWS_PER_FIT], y[:ROWS_PER_FIT])
    clf.save(os.path.join(folder, "model"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="images in the .npy file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # set by the driver for its child processes
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.folder)
        return

    cases = ["imports", "predict_proba, memmap", "predict_proba, in memory", "SequenceGrid.transform, memmap",
             "SequenceGrid.transform, in memory", "SequenceGrid.transform, memmap, one batch"]
    with tempfile.TemporaryDirectory(prefix="gridcnn-memory-") as folder:
        size_mb = write_data(folder, args.rows)
        fit_model(folder)
        results = {case: measure(case, folder) for case in cases}

    from benchmarks.common import machine_line  # here: the measured child processes import only what they need

    base = results.pop("imports")
    print(f"Machine: {machine_line()}.")
    print(f"Data: {args.rows:,} x 28 x 28 float32 MNIST digits (repeated), {size_mb:.0f} MiB on disk; model: LeNet-5; "
          f"predict_proba batches of 1,024 rows, adapter batches of 4,096 (\"one batch\": BATCH_ROWS = n, as before "
          "batching).")
    print(f"Baseline RSS after `import gridcnn` (numpy, torch, sklearn) in a fresh process: {base['before_mb']:.0f} "
          "MiB.")
    print()
    print("| call on X | RSS before call | peak RSS in call (VmHWM) | anonymous RSS: before -> peak | anonymous growth "
          "in call | still held after call (malloc_trim) | output | time |")
    print("|---|---|---|---|---|---|---|---|")
    for case, r in results.items():
        print(f"| {case} | {r['before_mb']:.0f} MiB | {r['hwm_mb']:.0f} MiB | {r['anon_before_mb']:.0f} -> "
              f"{r['anon_mb']:.0f} MiB | **{r['anon_mb'] - r['anon_before_mb']:+.0f} MiB** "
              f"| {r['held_mb'] - r['anon_before_mb']:+.0f} MiB | {r['out_mb']:.0f} MiB | {r['seconds']:.1f} s |")

if __name__ == "__main__":
    main()
