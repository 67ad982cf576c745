"""The network as data: a frozen `BackboneSpec` of branches of `ConvBlock` s, independent of the input size.

A network is one or more parallel *branches* of [Conv2d, (BatchNorm), activation, Pool, (Dropout)] blocks whose
flattened outputs are concatenated and fed to fully connected layers and a linear head. A plain CNN has one branch;
Kim's text CNN has three (kernel heights 3, 4, 5 spanning the full embedding width). The architecture families
(ResNet, GoogLeNet, DenseNet, MobileNetV2, EfficientNet-Lite) are one branch of stages of other kinds
(`gridcnn.backbone.blocks`): a block is then a whole stage, its JSON names its ``kind``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gridcnn.backbone.blocks import KINDS
from gridcnn.backbone.shapes import Summary, plan
from gridcnn.backbone.modules import GridCNN

POOLS = ("max", "avg", "sum", "none")


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
    # The families' settings; a spec at these defaults writes none of them (model files of plain CNNs are unchanged).
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (mean, std) per channel, in the network
    bn_eps: float = 1e-5  # GoogLeNet's and EfficientNet-Lite's weights were trained with 1e-3
    min_size: int = 1  # the smallest grid side the network takes: its total downsampling, for the refusal

    _OPTIONAL = {"embedding": None, "embedding_dropout": 0.0, "normalize": None, "bn_eps": 1e-5, "min_size": 1}

    def build(self, input_shape, n_outputs: int) -> "GridCNN":
        """Return the ``nn.Module`` for grids of ``input_shape`` = (C, H, W) and ``n_outputs`` classes."""
        return plan(self, input_shape, n_outputs)[0]

    def summary(self, input_shape, n_outputs: int) -> "Summary":
        """Return the Keras-style summary (layer, output shape, parameters) for this input shape."""
        return plan(self, input_shape, n_outputs)[1]

    def to_dict(self) -> dict:
        """A JSON-ready description, inverse of `from_dict`."""
        d = dataclasses.asdict(self)
        if d["embedding"] is None:  # a network over grids writes the spec it always wrote
            del d["embedding"], d["embedding_dropout"]
        for k in ("normalize", "bn_eps", "min_size"):
            if d[k] == self._OPTIONAL[k]:
                del d[k]
        d["branches"] = [[_block_dict(b) for b in branch] for branch in self.branches]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneSpec":
        """Rebuild a spec written by `to_dict` (lists come back as tuples)."""
        branches = tuple(tuple(_block(b) for b in branch) for branch in d["branches"])
        rest = {k: _tuplify(v) for k, v in d.items() if k != "branches"}
        return cls(branches=branches, **rest)


def _block_dict(block) -> dict:
    d = dataclasses.asdict(block)
    if not isinstance(block, ConvBlock):
        d = {"kind": block.kind, **d}
    return d


def _block(d: dict):
    d = dict(d)
    kind = d.pop("kind", None)
    return (ConvBlock if kind is None else KINDS[kind])(**_tuplify(d))


def _tuplify(v):
    if isinstance(v, dict):
        return {k: _tuplify(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    return v
