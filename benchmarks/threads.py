"""Thread settings under load: the bare-defaults digits fit's epoch time with each setting, side by side.

On a 2-core machine that other jobs keep busy (load average 5-6), torch's OpenMP threads spin waiting on each other
while the other jobs hold the cores: a fit that takes a minute alone took 36. Each setting runs in a fresh Python
(OpenMP reads its environment once, when torch loads it), the settings interleaved round by round so the load they
meet is alike, and each reports the median of its epochs after the first.

``--busy N`` starts N busy-looping processes of its own for the run (a known load; else the load is whatever the
machine has), and ``--cpus 0,1`` pins everything to those cores (to mimic a 2-core machine on a bigger one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.common import REPO, machine_line

# name -> (environment, torch threads or None for torch's default): what each run sets before importing torch.
SETTINGS = {
    "torch default (2 threads, OpenMP spins)": ({}, None),
    "OMP_WAIT_POLICY=passive, 2 threads": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "1 thread": ({}, 1),
    "OMP_WAIT_POLICY=passive, 1 thread": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1),
}

CHILD = """
import json, os, sys, time
import numpy as np
from sklearn.datasets import load_digits
import torch  # before gridcnn, so that the environment given is what OpenMP reads
threads = json.loads(sys.argv[1])
if threads:
    torch.set_num_threads(threads)
from gridcnn import GridCNNClassifier
X, y = load_digits(return_X_y=True)
X = X.reshape(-1, 8, 8).astype("float32") / 16
clf = GridCNNClassifier(input_shape=(8, 8), max_epochs=int(sys.argv[2]), random_state=0)
t = time.perf_counter()
clf.fit(X, y)
print(json.dumps({"epochs": [r["time"] for r in clf.history_], "threads": torch.get_num_threads(),
                  "fit_s": time.perf_counter() - t}))
"""


def run_one(env: dict, threads, epochs: int, cpus: str | None) -> dict:
    cmd = [sys.executable, "-c", CHILD, json.dumps(threads), str(epochs)]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (the first is left out)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all settings, interleaved")
    parser.add_argument("--busy", type=int, default=0, help="busy-looping processes to start for the run")
    parser.add_argument("--cpus", default=None, help="pin every process to these cores (taskset -c)")
    args = parser.parse_args(argv)
    busy = []
    for _ in range(args.busy):
        cmd = [sys.executable, "-c", "while True: pass"]
        busy.append(subprocess.Popen(["taskset", "-c", args.cpus, *cmd] if args.cpus else cmd))
    try:
        time.sleep(2 if busy else 0)
        loads, results = [], {name: [] for name in SETTINGS}
        threads_used = {}
        for _ in range(args.rounds):
            for name, (env, threads) in SETTINGS.items():
                loads.append(os.getloadavg()[0])
                r = run_one(env, threads, args.epochs, args.cpus)
                results[name] += r["epochs"][1:]
                threads_used[name] = r["threads"]
        print(machine_line())
        print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}"
              + (f" ({args.busy} busy loops of ours" + (f" on cores {args.cpus})" if args.cpus else ")") if busy else "")
              + (f"; pinned to cores {args.cpus}" if args.cpus and not busy else ""))
        base = statistics.median(results[next(iter(SETTINGS))])
        print("\n| setting | threads | epoch (s), median | vs torch's default |\n|---|---|---|---|")
        for name, times in results.items():
            med = statistics.median(times)
            print(f"| {name} | {threads_used[name]} | {med:.3f} | {base / med:.1f}x faster |")
    finally:
        for p in busy:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
