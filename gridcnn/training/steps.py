"""Plain training functions: device, optimiser and schedule, one epoch, evaluation, batched prediction."""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import torch
from torch import nn

from gridcnn.training.distributed import all_reduce_sum, ceil_div, world
from gridcnn.exceptions import GridCNNError

# Rows per forward pass at predict time (see predict_logits): "auto" sizes it from the network's cost per row
# (`predict_chunk`), an int fixes it, None passes the caller's batches as they come (benchmarks compare them).
PREDICT_CHUNK: int | str | None = "auto"
# Multiply-adds per forward pass that "auto" aims at: about 4 ms on one core of the 2-core test machine. A pass of
# more rows gains little (64 rows of the 28x28 "simple" preset run 0.63 ms a row, 8 rows 0.67 ms) while a call of one
# row pays for the whole chunk (40 ms at 64 rows, 5 ms at 8); benchmarks/batch_invariance.py measures the choices.
PASS_MACS = 64e6
MAX_CHUNK = 64


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
    params = list(params)  # tensors, or parameter groups (dicts with "params" and their own settings)
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    # fused: one kernel updates every parameter, where the default runs a dozen small ops per parameter tensor;
    # on small networks those ops are most of a CPU step (benchmarks/keras_speed.py). CPU and CUDA have it.
    fused = {"fused": True} if tensors and all(p.device.type in ("cpu", "cuda") for p in tensors) else {}
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **fused)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **fused)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay, **fused)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise AssertionError(name)  # the estimator's parameter validation lets no other name through


def make_scheduler(name: str, optimizer, lr, epochs: int, steps_per_epoch: int):
    """A per-batch learning-rate schedule over ``epochs``, or None for a constant rate; ``lr`` is the peak rate,
    or a list of one per parameter group."""
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


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: the driver's count; CPU: the OS's available memory), None when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None


def check_network_fits(spec, input_shape, n_classes: int, batch_size: int, device: torch.device) -> None:
    """Refuse, before allocating anything, a network whose training state cannot fit in ``device``'s free memory.

    The network is built on the meta device (shapes, no storage) and a batch is passed through it to count the
    activations. Training holds about four copies of the weights (weights, gradients, two Adam moments) and each
    activation twice (kept for backward, and its gradient): a floor, so the refusal is never a false alarm.
    """
    fix = "Use fewer filters or hidden units, a smaller batch_size, or smaller grids."
    try:
        with torch.device("meta"):
            model = spec.build(tuple(input_shape), n_classes)
            sizes = []
            hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel())) for m in model.modules()
                     if not list(m.children())]
            model(torch.empty((batch_size, *input_shape)))
            for h in hooks:
                h.remove()
    except RuntimeError as exc:  # a tensor whose byte count overflows 64 bits
        raise GridCNNError(f"This network cannot be built: one of its tensors would be too large ({exc}). {fix}") from None
    n_params = sum(p.numel() for p in model.parameters())
    need = 4 * (4 * n_params + 2 * sum(sizes))
    free = free_memory(device)
    if free is not None and need > free:
        raise GridCNNError(
            f"This network cannot be trained here: it has {n_params:,} parameters and {sum(sizes):,} activations per "
            f"batch of {batch_size}, which need at least {need / 2**30:,.1f} GiB, and {device} has "
            f"{free / 2**30:,.1f} GiB free. {fix}"
        )


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch of ``n`` rows; with several ranks, each takes its share of rows and of a batch."""
    return ceil_div(ceil_div(n, world_size), ceil_div(batch_size, world_size))


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` ("32" turns it off); bf16 and fp16 compute in half precision."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:  # a disabled torch.autocast still saves and restores its state: tens of us per batch
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_epoch(net, batches, optimizer, scheduler=None, *, device: torch.device, augment=None, generator=None,
                precision: str = "32", scaler=None, on_batch=None):
    """One pass over ``batches`` of (grids, class indices); returns (mean loss, accuracy) on them, summed over the
    ranks (DDP averages the gradients, so each rank passes its share of every global batch)."""
    net.train()
    losses, correct, sizes = [], [], []  # per batch, kept on the device: a .item() per batch would sync the GPU
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
        # Two small ops per batch, summed once after the loop: three += on a sums tensor cost more on small nets.
        losses.append(loss.detach())
        correct.append((logits.argmax(1) == yb).sum())
        sizes.append(len(yb))
        if on_batch is not None:
            on_batch(i)
    sums = torch.zeros(3, device=device)  # loss x rows, correct, rows; zeros for a rank with no batches
    if losses:
        rows = torch.tensor(sizes, dtype=torch.float32, device=device)
        sums = torch.stack([torch.stack(losses).float() @ rows, torch.stack(correct).sum().float(), rows.sum()])
    total_loss, n_correct, n_rows = all_reduce_sum(sums).tolist()
    return total_loss / n_rows, n_correct / n_rows


@torch.no_grad()
def predict_logits(model, batches, n: int, device: torch.device, precision: str = "32") -> torch.Tensor:
    """Logits of ``n`` rows given as an iterable of float32 batches (numpy), moved to ``device`` one at a time and
    written into one tensor allocated once, so memory stays flat however many rows come.

    The network sees the same number of rows in every forward pass (`predict_chunk`), the last chunk padded with
    zeros: CPU kernels pick their blocking (and so the order of a row's sums) by batch size, so a row's output would
    otherwise depend on how many rows shared the call (sklearn's check_methods_subset_invariance, off by 1.5e-7 on
    AVX2; here a one-row pass and dense layers of any size differ by up to 4e-7).
    """
    model.eval()
    out, start = None, 0
    chunk = PREDICT_CHUNK
    for xb in batches:
        if not xb.flags.writeable:  # a read-only memory map: torch wants arrays it may write to; copy one batch
            xb = np.array(xb)
        if chunk == "auto":
            chunk = predict_chunk(model, xb.shape[1:], xb.dtype, device)
        for s in range(0, len(xb), chunk or len(xb)):
            part = xb[s : s + chunk] if chunk else xb
            k = len(part)
            if chunk and k < chunk:
                part = np.concatenate([part, np.zeros((chunk - k, *part.shape[1:]), dtype=part.dtype)])
            with autocast(device, precision):
                logits = model(torch.from_numpy(part).to(device)).float().cpu()[:k]
            if out is None:
                out = torch.empty((n, logits.shape[1]))
            out[start : start + k] = logits
            start += k
    # Fewer than n rows came when a stream skipped unreadable files (on_error="skip").
    return out[:start] if out is not None else torch.empty(0)


@torch.no_grad()
def predict_chunk(model, row_shape: tuple, dtype, device: torch.device) -> int:
    """Rows per forward pass for ``model`` on rows of ``row_shape``: a power of two, 1 to `MAX_CHUNK`, whose pass
    costs about `PASS_MACS` multiply-adds, so one row costs a few milliseconds for any network and a large call
    still runs in efficient passes. It depends on the architecture and the grid only, never on the call: a row
    gets the same answer alone as in any company. Counted once per network and grid shape (one pass of one row)."""
    key = (tuple(row_shape), str(dtype))
    cached = model.__dict__.get("_predict_chunk")
    if cached is not None and cached[0] == key:
        return cached[1]
    macs, me = [0], threading.get_ident()

    def count(module, inputs, output):
        if threading.get_ident() != me:  # a server thread predicting with the same network meanwhile
            return
        # Each weight of a convolution is used once per output position, of a dense layer once per row.
        positions = output.numel() // output.shape[0] // (output.shape[1] if output.dim() > 2 else output.shape[-1])
        macs[0] += module.weight.numel() * positions

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        model(torch.zeros((1, *row_shape), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    chunk = int(min(MAX_CHUNK, 2 ** max(0, int(np.floor(np.log2(PASS_MACS / max(macs[0], 1)))))))
    model.__dict__["_predict_chunk"] = (key, chunk)
    return chunk


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
