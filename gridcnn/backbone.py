"""The one configurable CNN: a frozen spec in, an ``nn.Module`` out, with shapes inferred and a Keras-style summary.

A network is one or more parallel *branches* of [Conv2d, (BatchNorm), activation, Pool, (Dropout)] blocks whose
flattened outputs are concatenated and fed to fully connected layers and a linear head. A plain CNN has one branch;
Kim's text CNN has three (kernel heights 3, 4, 5 spanning the full embedding width).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ._registry import Registry, did_you_mean
from .exceptions import GridCNNError

POOLS = ("max", "avg", "sum", "none")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class ConvBlock:
    """One [Conv2d, BatchNorm?, activation, Pool, Dropout?] block.

    Sizes are an int (square) or an ``(h, w)`` pair; the kernel width may be ``"full"`` to span the whole grid
    width at that point (text CNNs: one kernel covers every embedding dimension). A square size on an axis of
    length 1 means 1, so the same spec runs on images and on 1 x L sequences.
    """

    filters: int
    kernel_size: int | tuple = 3
    stride: int | tuple = 1
    padding: int | tuple | str = "same"
    pool: str = "max"
    pool_size: int | tuple = 2
    batch_norm: bool = False
    dropout: float = 0.0


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that defines the network, independent of the input size and the number of classes."""

    branches: tuple[tuple[ConvBlock, ...], ...]
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0
    global_pool: str | None = None
    activation: str = "relu"
    # (rows, dim) of a trainable token table in front of the branches (Kim's non-static CNN): the network then takes
    # token ids, grids (1, tokens, 1) with 0 for padding, and embeds them into (1, tokens, dim) itself.
    embedding: tuple[int, int] | None = None
    embedding_dropout: float = 0.0  # on the embedded vectors, in training

    def build(self, input_shape, n_outputs: int) -> "GridCNN":
        """Return the ``nn.Module`` for grids of ``input_shape`` = (C, H, W) and ``n_outputs`` classes."""
        return _plan(self, input_shape, n_outputs)[0]

    def summary(self, input_shape, n_outputs: int) -> "Summary":
        """Return the Keras-style summary (layer, output shape, parameters) for this input shape."""
        return _plan(self, input_shape, n_outputs)[1]

    def to_dict(self) -> dict:
        """A JSON-ready description, inverse of `from_dict`."""
        d = dataclasses.asdict(self)
        if d["embedding"] is None:  # a network over grids writes the spec it always wrote
            del d["embedding"], d["embedding_dropout"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneSpec":
        """Rebuild a spec written by `to_dict` (lists come back as tuples)."""
        branches = tuple(tuple(ConvBlock(**_tuplify(b)) for b in branch) for branch in d["branches"])
        rest = {k: _tuplify(v) for k, v in d.items() if k != "branches"}
        return cls(branches=branches, **rest)


def _tuplify(v):
    if isinstance(v, dict):
        return {k: _tuplify(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    return v


class TokenEmbedding(nn.Module):
    """Token ids (n, 1, tokens, 1), 0 for padding, -> their rows of a trainable table, (n, 1, tokens, dim).

    Row 0 is padding (zeros, never trained: ``padding_idx``) and row ``i + 1`` token ``i``'s vector, as
    ``EmbeddingGrid(output="ids")`` numbers them, so the pretrained table copied in gives, before training, exactly
    the grid the adapter's ``output="vectors"`` makes. The
    weights start at zero without drawing random numbers: the estimator copies the pretrained table in, and the
    convolutions draw the same initial weights as the static network's.
    """

    def __init__(self, rows: int, dim: int, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(rows, dim, padding_idx=0, _weight=torch.zeros(rows, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.embedding(x[:, 0, :, 0].long()).unsqueeze(1))


class Block(nn.Sequential):
    """One [conv, (bn), act, (pool), (drop)] block; its output is the block's feature map."""


class GridCNN(nn.Module):
    """Parallel convolutional branches (each a sequence of `Block` modules), concatenated, then the head."""

    def __init__(self, branches: list[nn.Sequential], head: nn.Sequential, embed: "TokenEmbedding | None" = None):
        super().__init__()
        if embed is not None:  # registered first only when present: networks over grids keep their state_dict keys
            self.embed = embed
        self.branches = nn.ModuleList(branches)
        self.head = head
        # Model files and checkpoints written before blocks were modules name layers "conv1", "b2_bn1"...: the
        # hook renames those keys, so they load unchanged.
        self._register_load_state_dict_pre_hook(self._rename_flat_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if "embed" in self._modules:
            x = self.embed(x)
        if len(self.branches) == 1:
            z = self.branches[0](x).flatten(1)
        else:
            z = torch.cat([b(x).flatten(1) for b in self.branches], dim=1)
        return self.head(z)

    @torch.no_grad()
    def feature_maps(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """The output of each block of the first branch, named "block1", "block2"..., for plots (after the
        "embedding" grid of a network that takes token ids)."""
        maps = []
        if "embed" in self._modules:  # token ids are no picture: show the grid the table makes of them
            x = self.embed(x)
            maps.append(("embedding", x))
        for name, module in self.branches[0].named_children():
            x = module(x)
            if isinstance(module, Block):
                maps.append((name, x))
        return maps

    def _rename_flat_keys(self, state_dict, prefix, *args):
        multi = len(self.branches) > 1
        renames = {}
        for b, branch in enumerate(self.branches):
            for name, block in branch.named_children():
                if isinstance(block, Block):
                    i = name.removeprefix("block")
                    for kind in block._modules:
                        old = f"{prefix}branches.{b}.{f'b{b + 1}_' if multi else ''}{kind}{i}."
                        renames[old] = f"{prefix}branches.{b}.{name}.{kind}."
        for key in list(state_dict):
            old = key[: key.rfind(".") + 1]
            if old in renames:
                state_dict[renames[old] + key[len(old):]] = state_dict.pop(key)


@dataclass(frozen=True)
class Summary:
    """Rows of (layer, output shape (H, W, C) or (features,), parameters), with totals; prints as a table."""

    rows: tuple[tuple[str, tuple, int], ...]
    total_params: int
    trainable_params: int

    def __str__(self) -> str:
        header = ("Layer", "Output shape", "Params")
        cells = [header] + [(n, str(s), f"{p:,}") for n, s, p in self.rows]
        w = [max(len(r[i]) for r in cells) for i in range(3)]
        line = "-" * (w[0] + w[1] + w[2] + 6)
        fmt = f"{{:<{w[0]}}}   {{:<{w[1]}}}   {{:>{w[2]}}}"
        out = [fmt.format(*header), line] + [fmt.format(*r) for r in cells[1:]] + [line]
        out += [f"Total params: {self.total_params:,}", f"Trainable params: {self.trainable_params:,}"]
        return "\n".join(out)

    __repr__ = __str__


# -- shape arithmetic ------------------------------------------------------------------------------------------


def _pair(v, what: str) -> tuple:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise GridCNNError(f"{what} must be an int or an (h, w) pair. Got {v!r} instead.")
        return tuple(v)
    return (v, v)


def _squeeze_unit_axes(v, extent: tuple[int, int], neutral: int, what: str) -> tuple:
    """An int size is square, except on an axis of length 1, where it is ``neutral`` (a 1 x L grid has no height)."""
    h, w = _pair(v, what)
    if not isinstance(v, (list, tuple)):
        h = neutral if extent[0] == 1 else h
        w = neutral if extent[1] == 1 else w
    return h, w


class FullWidthConv2d(nn.Conv2d):
    """A Conv2d whose kernel spans the whole grid width (Kim's text CNN), computed as the equivalent Conv1d.

    Sliding a (kh, W) kernel down a (C, H, W) grid is a 1-D convolution over the H rows with C*W input channels;
    torch runs that form about 2.5x faster, forward and backward, for embedding-wide text grids. The parameters and
    their initialisation are Conv2d's, so model files and results do not depend on which form ran.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        rows = x.transpose(2, 3).reshape(n, c * w, h)
        weight = self.weight.transpose(2, 3).reshape(self.out_channels, c * w, self.kernel_size[0])
        out = nn.functional.conv1d(rows, weight, self.bias, stride=self.stride[0], padding=self.padding[0])
        return out.unsqueeze(-1)


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _check_positive(name, where, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GridCNNError(f"{name} of {where} must be a positive int. Got {value!r} instead.")


def build_block(block: ConvBlock, in_shape: tuple, activation: str, where: str):
    """One block for an input of ``in_shape`` (C, H, W): ``(module, output shape, summary rows)``.

    Rows are ``(layer kind, detail, (H, W, C), module)``; the branch numbers them. The errors here are the ones
    that depend on the grid size; the values themselves were checked by `resolve_spec`.
    """
    c, h, w = in_shape
    kh, kw = _squeeze_unit_axes(block.kernel_size, (h, w), 1, "kernel_size")
    kw = w if kw == "full" else kw
    sh, sw = _squeeze_unit_axes(block.stride, (h, w), 1, "stride")
    if block.padding == "same":
        ph, pw = (0 if h == 1 else kh // 2), (0 if w == 1 else kw // 2)
        torch_pad = "same" if (sh, sw) == (1, 1) else (ph, pw)
    elif block.padding == "valid":
        ph = pw = 0
        torch_pad = (0, 0)
    else:
        ph, pw = _squeeze_unit_axes(block.padding, (h, w), 0, "padding")
        torch_pad = (ph, pw)
    if torch_pad == "same":
        oh, ow = h, w  # torch pads asymmetrically for even kernels so the size is kept exactly
    else:
        oh, ow = _conv_out(h, kh, sh, ph), _conv_out(w, kw, sw, pw)
    for axis, n, k, s, p, o in (("high", h, kh, sh, ph, oh), ("wide", w, kw, sw, pw, ow)):
        if o < 1:
            raise GridCNNError(
                f"Grid {h}x{w} is too small for the convolution of {where} (kernel {kh}x{kw}, stride {s}, "
                f"padding {p}): its output would be floor(({n} + 2*{p} - {k}) / {s}) + 1 = {o} {axis}. "
                "Use padding='same', a smaller kernel, or fewer pooling blocks."
            )
    full = kw == w > 1 and torch_pad != "same" and pw == 0  # spans the width: a 1-D convolution over rows
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv"] = (FullWidthConv2d if full else nn.Conv2d)(c, block.filters, (kh, kw), stride=(sh, sw),
                                                              padding=torch_pad)
    c, h, w = block.filters, oh, ow
    rows = [("conv", "", (h, w, c), layers["conv"])]
    if block.batch_norm:
        layers["bn"] = nn.BatchNorm2d(c)
        rows.append(("bn", "", (h, w, c), layers["bn"]))
    layers["act"] = ACTIVATIONS[activation]()
    rows.append(("act", f" ({activation})", (h, w, c), layers["act"]))
    if block.pool != "none":
        qh, qw = _squeeze_unit_axes(block.pool_size, (h, w), 1, "pool_size")
        if qh > h or qw > w:
            raise GridCNNError(
                f"Grid {h}x{w} is too small for the {qh}x{qw} {block.pool} pool of {where}: its output would "
                f"be floor(({h} - {qh}) / {qh}) + 1 = {(h - qh) // qh + 1} high and "
                f"floor(({w} - {qw}) / {qw}) + 1 = {(w - qw) // qw + 1} wide. "
                "Use a smaller pool_size, pool='none', or fewer blocks."
            )
        if block.pool == "max":
            layers["pool"] = nn.MaxPool2d((qh, qw))
        else:  # a sum pool is an average pool that does not divide
            layers["pool"] = nn.AvgPool2d((qh, qw), divisor_override=1 if block.pool == "sum" else None)
        h, w = h // qh, w // qw
        rows.append(("pool", f" ({block.pool} {qh}x{qw})", (h, w, c), layers["pool"]))
    if block.dropout:
        layers["drop"] = nn.Dropout(block.dropout)
        rows.append(("drop", "", (h, w, c), layers["drop"]))
    return Block(layers), (c, h, w), rows


def build_branch(blocks, input_shape: tuple, spec: "BackboneSpec", prefix: str = "", where: str = ""):
    """A branch (Kim's CNN has three): its blocks, then the global pool; ``(module, (C, H, W) out, rows)``.

    ``prefix`` ("b2_") and ``where`` ("branch 2 ") name the branch's layers and errors when there are several.
    """
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    rows, shape = [], tuple(input_shape)
    for i, block in enumerate(blocks, 1):
        modules[f"block{i}"], shape, block_rows = build_block(block, shape, spec.activation, f"{where}block {i}")
        rows += [(f"{prefix}{kind}{i}{detail}", out, m) for kind, detail, out, m in block_rows]
    if spec.global_pool is not None:
        c = shape[0]
        modules["global_pool"] = nn.AdaptiveMaxPool2d(1) if spec.global_pool == "max" else nn.AdaptiveAvgPool2d(1)
        shape = (c, 1, 1)
        rows.append((f"{prefix}global_pool ({spec.global_pool})", (1, 1, c), modules["global_pool"]))
    return nn.Sequential(modules), shape, rows


def build_head(n_in: int, spec: "BackboneSpec", n_outputs: int):
    """The fully connected part after the flattened branches: ``(module, rows)``."""
    head: OrderedDict[str, nn.Module] = OrderedDict()
    rows = []
    for j, units in enumerate(spec.hidden, 1):
        head[f"dense{j}"] = nn.Linear(n_in, units)
        head[f"dense{j}_act"] = ACTIVATIONS[spec.activation]()
        rows.append((f"dense{j} ({spec.activation})", (units,), head[f"dense{j}"]))
        if spec.dropout:
            head[f"dense{j}_drop"] = nn.Dropout(spec.dropout)
        n_in = units
    if spec.dropout and not spec.hidden:
        head["drop"] = nn.Dropout(spec.dropout)
    head["output"] = nn.Linear(n_in, n_outputs)
    rows.append(("output", (n_outputs,), head["output"]))
    return nn.Sequential(head), rows


def _plan(spec: BackboneSpec, input_shape, n_outputs: int):
    """Build the branches and the head for this input shape: the module and its summary, or what does not fit."""
    if len(tuple(input_shape)) != 3:
        raise GridCNNError(f"input_shape must be (channels, height, width). Got {tuple(input_shape)!r} instead.")
    input_shape = tuple(int(v) for v in input_shape)
    multi = len(spec.branches) > 1
    rows, branches, n_flat = [], [], 0
    embed = None
    if spec.embedding is not None:
        n_rows, dim = (int(v) for v in spec.embedding)
        if input_shape[0] != 1 or input_shape[2] != 1:
            raise GridCNNError(
                f"A network with an embedding layer takes token ids, grids of shape (1, tokens, 1). Got grids of "
                f"shape {input_shape} instead. Give the text adapter output='ids'."
            )
        embed = TokenEmbedding(n_rows, dim, spec.embedding_dropout)
        input_shape = (1, input_shape[1], dim)
        rows.append((f"embedding ({n_rows:,} x {dim})", (input_shape[1], dim, 1), embed))
    for bi, blocks in enumerate(spec.branches, 1):
        prefix, where = (f"b{bi}_", f"branch {bi} ") if multi else ("", "")
        branch, (c, h, w), branch_rows = build_branch(blocks, input_shape, spec, prefix, where)
        branches.append(branch)
        rows += branch_rows
        n_flat += c * h * w
    rows.append(("flatten" if not multi else "concatenate", (n_flat,), None))
    head, head_rows = build_head(n_flat, spec, n_outputs)
    rows += head_rows
    module = GridCNN(branches, head, embed)
    summary_rows = tuple((n, s, sum(p.numel() for p in m.parameters()) if m is not None else 0) for n, s, m in rows)
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return module, Summary(summary_rows, total, trainable)


# -- presets and flat parameters ---------------------------------------------------------------------------------

PRESETS: Registry = Registry("preset")


@PRESETS.register("simple")
def _simple() -> BackboneSpec:
    # Two 3x3 blocks with batch norm: a strong default that fits MNIST-sized grids in minutes on a CPU.
    blocks = tuple(ConvBlock(f, 3, padding="same", batch_norm=True) for f in (32, 64))
    return BackboneSpec(branches=(blocks,), hidden=(128,), dropout=0.25)


@PRESETS.register("lenet5")
def _lenet5() -> BackboneSpec:
    # LeCun et al. (1998), with the modern ReLU and max pool; padding 2 on the first conv makes a 28x28 MNIST digit
    # behave like the paper's 32x32 input (C1 28x28 -> S2 14x14 -> C3 10x10 -> S4 5x5).
    blocks = (ConvBlock(6, 5, padding=2), ConvBlock(16, 5, padding=0))
    return BackboneSpec(branches=(blocks,), hidden=(120, 84))


@PRESETS.register("kim")
def _kim() -> BackboneSpec:
    # Kim (2014): 100 filters for each of the heights 3, 4, 5, each spanning the full embedding width, max over time.
    branches = tuple((ConvBlock(100, (h, "full"), padding=0, pool="none"),) for h in (3, 4, 5))
    return BackboneSpec(branches=branches, global_pool="max", dropout=0.5)


def get_preset(name: str) -> BackboneSpec:
    """Return the spec of the preset called ``name`` (see ``PRESETS.names()``)."""
    return PRESETS.get(name)()


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
