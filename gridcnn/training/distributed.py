"""torch.distributed under torchrun: who this process is, the process group, and each rank's share of an epoch.

Nothing here starts processes; torchrun does (``gridcnn fit --nproc N`` calls it). A process started by torchrun finds
RANK, WORLD_SIZE and LOCAL_RANK in its environment; without them everything runs as the single rank 0 of 1.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from gridcnn.exceptions import GridCNNError


class OtherRankFailed(GridCNNError):
    """Raised on the ranks other than 0 when rank 0 refused something and has already said why: the CLI exits with
    the usual code without printing the same line once per process."""


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def is_main() -> bool:
    """True in the one process that writes files and prints: rank 0, or the only process."""
    return world()[0] == 0


def ceil_div(a: int, b: int) -> int:
    """``a / b`` rounded up: the rows each of ``b`` ranks takes so that together they cover ``a``."""
    return -(-a // b)


def ensure_process_group(device: torch.device) -> None:
    """Join torchrun's process group once: gloo for CPU tensors, nccl for CUDA ones."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)


def shard(order: torch.Tensor, rank: int, size: int) -> torch.Tensor:
    """This rank's rows of an epoch's permutation, with `DistributedSampler`'s semantics.

    Every rank draws the same permutation (same seed); it is padded by repeating its start until its length divides
    by ``size``, and rank r takes positions r, r + size, ... So the ranks see disjoint shards of equal length that
    together cover every row, reshuffled each epoch.
    """
    n = order.numel()
    total = ceil_div(n, size) * size
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank:total:size]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over all ranks (a copy); unchanged when there is one process."""
    if not dist.is_initialized():
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def sync_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank, so all ranks hold one model."""
    if not dist.is_initialized():
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (a seed drawn from an unseeded generator differs between processes)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def broadcast_object(obj, device=None):
    """Rank 0's picklable ``obj`` on every rank, joining torchrun's process group first; ``obj`` outside torchrun.

    Every rank waits here for rank 0, so it doubles as the barrier after work rank 0 alone does (the run folder).
    """
    if world()[1] == 1:
        return obj
    ensure_process_group(torch.device(device) if device is not None else torch.device("cpu"))
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
