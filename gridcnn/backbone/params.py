"""The estimator's flat parameters (``filters=[32, 64]``, ``pool="max"``...) applied to a preset: a checked spec."""

from __future__ import annotations

import dataclasses

from gridcnn._registry import did_you_mean
from gridcnn.backbone.presets import get_preset
from gridcnn.backbone.shapes import _check_positive, _pair
from gridcnn.backbone.spec import POOLS, BackboneSpec, ConvBlock
from gridcnn.exceptions import GridCNNError

BLOCK_FIELDS = ("filters", "kernel_size", "stride", "padding", "pool", "pool_size", "batch_norm", "block_dropout")


def _per_block(name: str, value, n_blocks: int | None):
    """Split a flat parameter into per-block values: a list gives one per block, anything else applies to all.

    For sizes, a pair such as ``(3, "full")`` is one (h, w) size, not two blocks.
    """
    sized = name in ("kernel_size", "stride", "pool_size", "padding")
    is_pair = sized and isinstance(value, (list, tuple)) and len(value) == 2 and not any(
        isinstance(v, (list, tuple)) for v in value
    )
    if isinstance(value, (list, tuple)) and not is_pair:
        return list(value)
    return None if n_blocks is None else [value] * n_blocks


def grid_defaults(grid) -> dict:
    """The default network's blocks for grids of shape ``grid`` (C, H, W): three blocks of 32, 64 and 128 filters
    (the depth the audio and sequence recipes needed: 97.2% -> 98.7-99% on unseen voices), of which the last p
    pool, p being the halvings that leave the shorter side (of the sides longer than 1) at least 2 cells, at most 3.
    Small grids keep their resolution in the first blocks: 8x8 digits pool twice (8 -> 8 -> 4 -> 2), 28x28 MNIST,
    63x40 spectrograms and 1x40 signals three times. Dropout before the head is 0.5.
    """
    sides = [int(s) for s in grid[1:] if int(s) > 1] or [1]
    shorter, pools = min(sides), 0
    while pools < 3 and shorter // 2 >= 2:
        shorter //= 2
        pools += 1
    # Dropout 0.5 before the head (Kim's and AlexNet's rate), with the estimator's weight decay 0.05: digits' five
    # seeds went from 98.11-98.78% to 98.89-99.22% (benchmarks/RESULTS.md).
    return {"filters": [32, 64, 128], "pool": ["none"] * (3 - pools) + ["max"] * pools, "dropout": 0.5}


def resolve_spec(architecture: str | None = None, **overrides) -> BackboneSpec:
    """Start from a preset (``"simple"`` when None) and apply the flat estimator parameters that are not None.

    Per-block parameters (``filters``, ``kernel_size``, ``stride``, ``padding``, ``pool``, ``pool_size``,
    ``batch_norm``, ``block_dropout``) take one value for every block or a list with one value per block; a list's
    length sets the number of blocks (all lists must agree), and the preset's last block is repeated when the count
    grows. ``hidden``, ``dropout``, ``global_pool`` and ``activation`` apply to the whole network.
    """
    base = get_preset("simple" if architecture is None else architecture)
    unknown = set(overrides) - set(BLOCK_FIELDS) - {"hidden", "dropout", "global_pool", "activation"}
    if unknown:
        raise TypeError(f"unknown backbone parameters {sorted(unknown)}")
    if any(not isinstance(b, ConvBlock) for branch in base.branches for b in branch):
        given = [k for k in BLOCK_FIELDS if overrides.get(k) is not None]
        if given:  # a stage is not a convolution block: its filters or pool mean nothing (and would lose weights)
            raise GridCNNError(
                f"{given[0]}={overrides[given[0]]!r} sets the convolution blocks of plain presets, but {architecture!r} "
                "is built of stages (see its summary()). Leave the per-block parameters unset (remove them from a recipe); hidden, dropout, "
                "global_pool and activation still apply."
            )
        overrides = {k: v for k, v in overrides.items() if k not in BLOCK_FIELDS}
    lists = {k: v for k in BLOCK_FIELDS if (v := overrides.get(k)) is not None and _per_block(k, v, None) is not None}
    empty = [k for k, v in lists.items() if not v]
    if empty:
        raise GridCNNError(
            f"{empty[0]}=[] gives no convolution block. Give one value per block (filters=[32, 64]), or a single value."
        )
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) > 1:
        raise GridCNNError(
            f"Per-block parameters must have one value per block, but their lengths differ: {lengths}. "
            "Give every list the same length, or a single value that applies to all blocks."
        )
    branches = []
    for branch in base.branches:
        n = next(iter(lengths.values()), len(branch))
        if n < 1:
            raise GridCNNError("filters must list at least one block. Got an empty list instead.")
        blocks = [dataclasses.replace(branch[min(i, len(branch) - 1)]) for i in range(n)]
        for k in BLOCK_FIELDS:
            v = overrides.get(k)
            if v is None:
                continue
            field = "dropout" if k == "block_dropout" else k
            blocks = [dataclasses.replace(b, **{field: _as_size(x)}) for b, x in zip(blocks, _per_block(k, v, n))]
        branches.append(tuple(blocks))
    for bi, blocks in enumerate(branches, 1):
        for i, block in enumerate(blocks, 1):
            if isinstance(block, ConvBlock):  # a family's stages are checked by their presets and the schema
                _check_block(block, f"branch {bi} block {i}" if len(branches) > 1 else f"block {i}")
    rest = {k: overrides[k] for k in ("dropout", "global_pool", "activation") if overrides.get(k) is not None}
    if rest.get("global_pool") == "none":  # a string, so a recipe can switch off a preset's global pool
        rest["global_pool"] = None
    if overrides.get("hidden") is not None:
        h = overrides["hidden"]
        rest["hidden"] = (h,) if isinstance(h, int) else tuple(h)
        for j, units in enumerate(rest["hidden"], 1):
            _check_positive("hidden units", f"dense layer {j}", units)
    return dataclasses.replace(base, branches=tuple(branches), **rest)


def _check_block(block: ConvBlock, where: str) -> None:
    """The per-block values a list parameter gives (the estimator's constraints check single values only)."""
    _check_positive("filters", where, block.filters)
    kh, kw = _pair(block.kernel_size, "kernel_size")
    for name, v in (("kernel_size", kh), ("kernel_size", "full" if kw == "full" else kw), *(
            ("stride", v) for v in _pair(block.stride, "stride"))):
        if v != "full":
            _check_positive(name, where, v)
    if block.padding not in ("same", "valid") and not all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in _pair(block.padding, "padding")):
        raise GridCNNError(f"padding of {where} must be 'same', 'valid' or a non-negative int. Got {block.padding!r} instead.")
    if block.pool not in POOLS:
        raise GridCNNError(f"pool of {where} must be one of {POOLS}. Got {block.pool!r} instead." + did_you_mean(block.pool, POOLS))
    for v in _pair(block.pool_size, "pool_size"):
        _check_positive("pool_size", where, v)


def _as_size(v):
    return tuple(v) if isinstance(v, list) else v
