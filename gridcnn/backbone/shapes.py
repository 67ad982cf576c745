"""Shape arithmetic: a spec and an input shape in, the module and its Keras-style summary out, or the block that
does not fit with its arithmetic."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from gridcnn.backbone.blocks import Context
from gridcnn.backbone.modules import ACTIVATIONS, Block, FullWidthConv2d, GridCNN, Normalize, TokenEmbedding
from gridcnn.exceptions import GridCNNError


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



def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _check_positive(name, where, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GridCNNError(f"{name} of {where} must be a positive int. Got {value!r} instead.")


def build_block(block: ConvBlock, in_shape: tuple, activation: str, where: str, bn_eps: float = 1e-5):
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
        layers["bn"] = nn.BatchNorm2d(c, eps=bn_eps)
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
    ctx = Context(spec.activation, spec.bn_eps)
    for i, block in enumerate(blocks, 1):
        if hasattr(block, "kind"):  # a stage of an architecture family (gridcnn.backbone.blocks)
            modules[f"block{i}"], shape, block_rows = block.build(shape, ctx, f"{where}block {i} ({block.kind})")
        else:
            modules[f"block{i}"], shape, block_rows = build_block(block, shape, spec.activation, f"{where}block {i}",
                                                                  spec.bn_eps)
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


def check_min_size(spec, input_shape) -> None:
    """Refuse a grid smaller than the network's ``min_size`` on a side, naming the minimum (the families' presets
    downsample by up to 32: a smaller grid would reach its last stages as a single cell, or nothing)."""
    _, h, w = input_shape
    if min(h, w) < spec.min_size:
        raise GridCNNError(
            f"Grid {h}x{w} is too small for this network: it downsamples by {spec.min_size}, so it takes grids of at "
            f"least {spec.min_size}x{spec.min_size}. Resize the grids to at least {spec.min_size} cells a side (the "
            "image adapter's size=...), or choose a preset for small grids (resnet20: 8x8 and up)."
        )


def plan(spec: BackboneSpec, input_shape, n_outputs: int):
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
    check_min_size(spec, input_shape)
    normalize = None
    if spec.normalize is not None:
        normalize = Normalize(*spec.normalize, channels=input_shape[0])
        rows.append(("normalize", (input_shape[1], input_shape[2], input_shape[0]), normalize))
    for bi, blocks in enumerate(spec.branches, 1):
        prefix, where = (f"b{bi}_", f"branch {bi} ") if multi else ("", "")
        branch, (c, h, w), branch_rows = build_branch(blocks, input_shape, spec, prefix, where)
        branches.append(branch)
        rows += branch_rows
        n_flat += c * h * w
    rows.append(("flatten" if not multi else "concatenate", (n_flat,), None))
    head, head_rows = build_head(n_flat, spec, n_outputs)
    rows += head_rows
    module = GridCNN(branches, head, embed, normalize)
    summary_rows = tuple((n, s, sum(p.numel() for p in m.parameters()) if m is not None else 0) for n, s, m in rows)
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return module, Summary(summary_rows, total, trainable)
