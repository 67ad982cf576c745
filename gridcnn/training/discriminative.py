"""Fine-tuning's learning rates: lower rates for earlier stages (discriminative rates), and a schedule that starts
a new cycle when the body is unfrozen (fastai's ``fine_tune``: one cycle for the head, one for every layer)."""

from __future__ import annotations

import math

import torch

LR_SCALE = "lr_scale"  # a parameter group's rate as a fraction of the estimator's lr (also the token table's)


def stage_groups(model, body_factor: float) -> list[dict]:
    """One optimiser group per stage of ``model`` (`GridCNN.stages`): the head at 1, the first stage at
    ``body_factor``, the stages between spaced geometrically (fastai's ``slice(lr * body_factor, lr)``). The head's
    group comes first, so the rate the history records (group 0's) is the head's, as without stages."""
    stages = [(n, m) for n, m in model.stages() if n != "embed"]
    n = len(stages) - 1  # body stages; the head is the last
    groups = []
    for i, (_, module) in enumerate(stages):
        params = [p for p in module.parameters()]
        if params:
            groups.append({"params": params, LR_SCALE: body_factor ** ((n - i) / max(n, 1))})
    return groups[::-1]


class _Cycles:
    """The rate factor at each optimiser step: the named schedule run once over the frozen steps and again over the
    rest. Plain numbers only, so a checkpoint saves it and a resume goes on from the same step."""

    def __init__(self, name: str, first: int, total: int):
        self.name, self.first, self.total = name, first, total

    def __call__(self, step: int) -> float:
        if step < self.first:
            return _shape(self.name, step, self.first)
        return _shape(self.name, step - self.first, self.total - self.first)


def _shape(name: str, t: int, steps: int) -> float:
    """torch's OneCycleLR (div 25, final div 1e4, cosine), and CosineAnnealingLR to 0, as factors of the peak."""
    if name == "constant":
        return 1.0
    if name == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(t, steps) / max(steps, 1)))
    pct = 0.3 if name == "onecycle" else 0.05
    start, end = 1 / 25, 1 / 25 / 1e4
    up = max(pct * steps - 1, 1e-9)
    cos = lambda a, b, frac: b + (a - b) / 2 * (1 + math.cos(math.pi * frac))  # noqa: E731
    if t <= up:
        return cos(start, 1.0, t / up)
    return cos(1.0, end, min(1.0, (t - up) / max(steps - 1 - up, 1e-9)))


def phased_scheduler(name: str, optimizer, first_epochs: int, epochs: int, steps_per_epoch: int):
    """A per-batch schedule that restarts when the body is unfrozen after ``first_epochs`` epochs."""
    rule = _Cycles(name, first_epochs * steps_per_epoch, epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [rule] * len(optimizer.param_groups))
