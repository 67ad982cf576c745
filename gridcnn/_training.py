"""Plain training functions: device and seed, one epoch, evaluation, batched prediction, learning-rate schedules."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .exceptions import GridCNNError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str) -> torch.device:
    """Map "auto" to cuda > mps > cpu; refuse a device this machine does not have."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
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
    raise AssertionError(name)


def random_shift(xb: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each grid by up to ``shift`` cells along H and W (zero fill); an axis of length 1 stays put."""
    n, c, h, w = xb.shape
    sh, sw = (0 if h == 1 else shift), (0 if w == 1 else shift)
    padded = nn.functional.pad(xb, (sw, sw, sh, sh))
    dr = torch.randint(0, 2 * sh + 1, (n, 1), generator=generator).to(xb.device)
    dc = torch.randint(0, 2 * sw + 1, (n, 1), generator=generator).to(xb.device)
    rows = (torch.arange(h, device=xb.device)[None] + dr)[:, None, :, None]
    cols = (torch.arange(w, device=xb.device)[None] + dc)[:, None, None, :]
    batch = torch.arange(n, device=xb.device)[:, None, None, None]
    chan = torch.arange(c, device=xb.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def train_epoch(model, X, y, optimizer, scheduler, batch_size: int, generator: torch.Generator, on_batch=None,
                shift: int = 0):
    """One pass over shuffled mini-batches taken by tensor indexing; returns (mean loss, accuracy) on the batches."""
    model.train()
    n = X.shape[0]
    order = torch.randperm(n, generator=generator).to(X.device)
    total_loss = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    loss_fn = nn.CrossEntropyLoss()
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb, yb = X[idx], y[idx]
        if shift:
            xb = random_shift(xb, shift, generator)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        # Summed on the device: a .item() per batch would force a sync and slow GPU training.
        total_loss += loss.detach() * len(idx)
        correct += (logits.argmax(1) == yb).sum()
        if on_batch is not None:
            on_batch(start // batch_size + 1)
    loss = float(total_loss) / n
    if not np.isfinite(loss):
        raise GridCNNError(
            f"The training loss became {loss}. Lower lr (now {optimizer.defaults['lr']}), standardise the inputs, "
            "or add batch_norm=True."
        )
    return loss, float(correct) / n


@torch.no_grad()
def predict_logits(model, X, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits for X (numpy or tensor) in batches, so memory stays flat however many rows come."""
    model.eval()
    out = []
    for start in range(0, len(X), batch_size):
        xb = torch.as_tensor(np.asarray(X[start : start + batch_size], dtype=np.float32)).to(device)
        out.append(model(xb).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def evaluate(model, X, y, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on tensors already on its device."""
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, X.shape[0], batch_size):
        logits = model(X[start : start + batch_size])
        yb = y[start : start + batch_size]
        loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return loss / X.shape[0], correct / X.shape[0]
