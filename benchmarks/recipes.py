"""Train shipped recipes end to end and report test accuracy and wall time, with the machine.

Run:  python -m benchmarks.recipes [image audio text sequence lenet5 ...] [--out runs/bench]
Each recipe runs exactly as `gridcnn fit recipes/<name>.toml` would; the markdown table goes to stdout and the run
folders stay under --out for inspection.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gridcnn.workflow.recipes import RECIPES_DIR, read_recipe
from gridcnn.workflow.runs import fit_recipe

from benchmarks.common import machine_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["image", "audio", "text", "sequence"])
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()
    rows = []
    for name in args.names:
        recipe = read_recipe(RECIPES_DIR / f"{name}.toml")
        t = time.perf_counter()
        result = fit_recipe(recipe, Path(args.out) / name, verbose=0)
        wall = time.perf_counter() - t
        timings = result["timings"]
        rows.append(f"| {name} | {result['accuracy'] * 100:.2f}% | {result['n_train']} / {result['n_samples']} | "
                    f"{result['epochs']} | {timings['fit_s']:.0f} s | {wall:.0f} s |")
        print(rows[-1], flush=True)
    print(f"\nMachine: {machine_line()}\n")
    print("| recipe | test accuracy | train / test | epochs | training | whole run |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
