"""DenseNet-BC's dense block (Huang et al., 2017): each of ``layers`` layers (BN, act, 1x1 conv to ``bn_size`` x
``growth`` channels, BN, act, 3x3 conv to ``growth``) sees the concatenation of the block's input and every earlier
layer's output; an optional transition (BN, act, 1x1 conv halving the channels, 2x2 average pool) follows."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gridcnn.backbone.blocks.common import Context, check_fits


def _layer(cin: int, growth: int, bn_size: int, ctx: Context) -> nn.Sequential:
    # Names as DenseNet's published weights name them (norm1, conv1, norm2, conv2).
    return nn.Sequential(OrderedDict([
        ("norm1", ctx.bn(cin)), ("relu1", ctx.act()), ("conv1", nn.Conv2d(cin, bn_size * growth, 1, bias=False)),
        ("norm2", ctx.bn(bn_size * growth)), ("relu2", ctx.act()),
        ("conv2", nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)),
    ]))


class DenseStageModule(nn.Module):
    """denselayer1..N, then the transition when there is one."""

    kind = "dense"  # the summary names its row by it

    def __init__(self, spec: "DenseStage", cin: int, ctx: Context):
        super().__init__()
        for i in range(spec.layers):
            self.add_module(f"denselayer{i + 1}", _layer(cin + i * spec.growth, spec.growth, spec.bn_size, ctx))
        c = cin + spec.layers * spec.growth
        if spec.transition:
            self.transition = nn.Sequential(OrderedDict([
                ("norm", ctx.bn(c)), ("relu", ctx.act()), ("conv", nn.Conv2d(c, c // 2, 1, bias=False)),
                ("pool", nn.AvgPool2d(2, stride=2)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, layer in self.named_children():
            if name.startswith("denselayer"):
                x = torch.cat([x, layer(x)], dim=1)
        return self.transition(x) if "transition" in self._modules else x


@dataclass(frozen=True)
class DenseStage:
    """Adds ``layers * growth`` channels; a transition halves channels and grid."""

    layers: int
    growth: int = 32
    bn_size: int = 4
    transition: bool = True

    kind: ClassVar[str] = "dense"
    SCHEMA: ClassVar[dict] = {"layers": "count", "growth": "width", "bn_size": "count", "transition": "bool"}

    def reduction(self) -> int:
        return 2 if self.transition else 1

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        module = DenseStageModule(self, c, ctx)
        c += self.layers * self.growth
        if self.transition:
            c, h, w = c // 2, h // 2, w // 2
        check_fits((h, w), where)
        detail = f" ({self.layers} layers" + (", transition)" if self.transition else ")")
        return module, (c, h, w), [("dense", detail, (h, w, c), module)]
