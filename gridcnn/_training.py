"""Plain training functions: device, optimiser and schedule, one epoch, evaluation, batched prediction."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._distributed import all_reduce_sum, ceil_div, world
from .exceptions import GridCNNError

def resolve_device(device: str) -> torch.device:
    """Map "auto" to cuda (this process's GPU under torchrun) > mps > cpu; refuse a device this machine lacks."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", world()[2]) if world()[1] > 1 else torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise GridCNNError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'. Got {device!r} instead."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GridCNNError(f"device {device!r} was asked for, but this machine has no CUDA GPU. Use device='auto' or 'cpu'.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GridCNNError(f"device {device!r} was asked for, but MPS is not available here. Use device='auto' or 'cpu'.")
    return dev


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser called ``name``; SGD gets Nesterov momentum 0.9, the setting most CNN papers use."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise AssertionError(name)  # the estimator's parameter validation lets no other name through


def make_scheduler(name: str, optimizer, lr: float, epochs: int, steps_per_epoch: int):
    """A per-batch learning-rate schedule over ``epochs``, or None for a constant rate."""
    if name == "constant":
        return None
    total = max(1, epochs * steps_per_epoch)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    if name == "warmup_cosine":  # one-cycle's shape with a short warm-up: 5% of the steps, then cosine to ~0
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=0.05)
    raise AssertionError(name)


# The step budget of max_epochs="auto" and its bounds (see GridCNNClassifier's docstring for the measurements).
AUTO_STEPS, AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS = 2000, 10, 100


def auto_epochs(steps_per_epoch: int) -> int:
    """Epochs giving about `AUTO_STEPS` optimiser steps, clipped to [`AUTO_MIN_EPOCHS`, `AUTO_MAX_EPOCHS`]."""
    return int(min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, -(-AUTO_STEPS // max(1, steps_per_epoch)))))


def data_device(nbytes: int, device: torch.device) -> torch.device:
    """Where training data of ``nbytes`` should live: on the GPU when it takes at most half of the free memory
    (batches are then taken by indexing, with no copy), else in CPU memory with each batch copied over."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= free // 2 else torch.device("cpu")


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch of ``n`` rows; with several ranks, each takes its share of rows and of a batch."""
    return ceil_div(ceil_div(n, world_size), ceil_div(batch_size, world_size))


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` ("32" turns it off); bf16 and fp16 compute in half precision."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)


def train_epoch(net, batches, optimizer, scheduler=None, *, device: torch.device, augment=None, generator=None,
                precision: str = "32", scaler=None, on_batch=None):
    """One pass over ``batches`` of (grids, class indices); returns (mean loss, accuracy) on them, summed over the
    ranks (DDP averages the gradients, so each rank passes its share of every global batch)."""
    net.train()
    sums = torch.zeros(3, device=device)  # loss x rows, correct, rows
    loss_fn = nn.CrossEntropyLoss()
    for i, (xb, yb) in enumerate(batches, 1):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        if augment is not None:
            xb = augment(xb, generator)
        with autocast(device, precision):
            logits = net(xb)
            loss = loss_fn(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16: scale the loss so small gradients do not underflow to zero
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        # Summed on the device: a .item() per batch would force a sync and slow GPU training.
        sums[0] += loss.detach().float() * len(yb)
        sums[1] += (logits.argmax(1) == yb).sum()
        sums[2] += len(yb)
        if on_batch is not None:
            on_batch(i)
    total_loss, correct, rows = all_reduce_sum(sums).tolist()
    return total_loss / rows, correct / rows


@torch.no_grad()
def predict_logits(model, batches, n: int, device: torch.device, precision: str = "32") -> torch.Tensor:
    """Logits of ``n`` rows given as an iterable of float32 batches (numpy), moved to ``device`` one at a time and
    written into one tensor allocated once, so memory stays flat however many rows come."""
    model.eval()
    out, start = None, 0
    for xb in batches:
        if not xb.flags.writeable:  # a read-only memory map: torch wants arrays it may write to; copy one batch
            xb = np.array(xb)
        with autocast(device, precision):
            logits = model(torch.from_numpy(xb).to(device)).float().cpu()
        if out is None:
            out = torch.empty((n, logits.shape[1]))
        out[start : start + len(logits)] = logits
        start += len(logits)
    # Fewer than n rows came when a stream skipped unreadable files (on_error="skip").
    return out[:start] if out is not None else torch.empty(0)


@torch.no_grad()
def evaluate(model, source, batch_size: int, precision: str = "32", rank: int = 0, world_size: int = 1):
    """Mean cross-entropy and accuracy of ``model`` on a data source, each rank taking every ``world_size``-th row
    from its ``rank``-th, summed over the ranks."""
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(3, dtype=torch.float64)  # loss, correct, rows
    for xb, yb in source.batches(torch.arange(rank, len(source), world_size), batch_size):
        with autocast(device, precision):
            logits = model(xb.to(device)).float()
        yb = yb.to(device)
        sums[0] += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        sums[1] += int((logits.argmax(1) == yb).sum())
        sums[2] += len(yb)
    if world_size > 1:
        sums = all_reduce_sum(sums.to(device)).cpu()
    loss, correct, rows = sums.tolist()
    return loss / rows, correct / rows
