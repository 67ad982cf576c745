"""What one epoch of each candidate MNIST network costs, in reference epochs (the unit of RESULTS.md's MNIST training times).

Each network trains the same random batches of 128 digits (forward, cross-entropy, backward, fused AdamW step);
rounds alternate the networks, and the cost is CPU seconds per digit relative to the ``simple`` preset's (the
reference epoch's network), so the load of a shared machine cancels. This is the network alone: the recipe's fit
adds its augmentation and bookkeeping, which `benchmarks.reference_epoch` measures whole.

    python -m benchmarks.epoch_cost [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from gridcnn import GridCNNClassifier

from benchmarks.common import machine_line

CANDIDATES = {  # name: (estimator parameters on top of the "simple" preset, channels-last memory)
    "simple (the reference epoch's network)": ({}, False),
    "simple, channels-last": ({}, True),
    "simple, 16 and 32 filters": ({"filters": [16, 32]}, False),
    "3x3 stride 2, 3x3 stride 2 (no pool)": ({"filters": [32, 64], "stride": 2, "pool": "none"}, False),
    "5x5 stride 2, 3x3 stride 2 (the recipe)": ({"filters": [32, 64], "kernel_size": [5, 3], "stride": 2,
                                                 "pool": "none"}, False),
    "5x5 stride 2, 5x5 stride 2": ({"filters": [32, 64], "kernel_size": 5, "stride": 2, "pool": "none"}, False),
    "3x3 stride 2, 2, 1 (32, 64, 64)": ({"filters": [32, 64, 64], "stride": [2, 2, 1], "pool": "none"}, False),
}


def step_cost(params: dict, channels_last: bool, steps: int) -> float:
    """CPU seconds per digit of a training step at batch 128 (after two warm-up steps)."""
    torch.manual_seed(0)
    model = GridCNNClassifier(**{"architecture": "simple", **params})._resolve_spec((1, 28, 28)).build((1, 28, 28), 10)
    X, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    if channels_last:
        model, X = model.to(memory_format=torch.channels_last), X.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(steps + 2):
        if i == 2:
            start = time.process_time()
        loss = loss_fn(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.process_time() - start) / (steps * 128)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    costs = {name: [] for name in CANDIDATES}
    for _ in range(args.rounds):
        for name, (params, cl) in CANDIDATES.items():
            costs[name].append(step_cost(params, cl, args.steps))
    ref = statistics.median(next(iter(costs.values())))
    print(f"Machine: {machine_line()}")
    print(f"{args.threads} torch threads, median of {args.rounds} alternated rounds of {args.steps} steps")
    print("| network | CPU us per digit | epoch in reference epochs |\n|---|---|---|")
    for name, c in costs.items():
        print(f"| {name} | {1e6 * statistics.median(c):.0f} | {statistics.median(c) / ref:.2f} |")


if __name__ == "__main__":
    main()
