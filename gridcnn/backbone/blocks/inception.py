"""GoogLeNet's inception block (Szegedy et al., 2015): four parallel branches, concatenated along channels: 1x1;
1x1 then 3x3; 1x1 then a second 3x3 (torchvision's published weights have 3x3 where the paper has 5x5, so
``b3_kernel`` says which); 3x3 max pool then 1x1. An optional pool follows the block, as between GoogLeNet's
stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gridcnn.backbone.blocks.common import ConvBNAct, Context, check_fits, pool_out, stage_pool


class InceptionModule(nn.Module):
    """The branches, named as GoogLeNet's weights name them (branch1..branch4), and the pool after them."""

    kind = "inception"  # the summary names its row by it

    def __init__(self, spec: "Inception", cin: int, ctx: Context):
        super().__init__()
        self.branch1 = ConvBNAct(cin, spec.b1, 1, ctx)
        self.branch2 = nn.Sequential(ConvBNAct(cin, spec.b2_reduce, 1, ctx), ConvBNAct(spec.b2_reduce, spec.b2, 3, ctx))
        self.branch3 = nn.Sequential(ConvBNAct(cin, spec.b3_reduce, 1, ctx),
                                     ConvBNAct(spec.b3_reduce, spec.b3, spec.b3_kernel, ctx))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBNAct(cin, spec.b4, 1, ctx))
        self.pool = stage_pool(spec.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        return x if self.pool is None else self.pool(x)


@dataclass(frozen=True)
class Inception:
    """Output channels ``b1 + b2 + b3 + b4``; the grid size is kept (then ``pool``)."""

    b1: int
    b2_reduce: int
    b2: int
    b3_reduce: int
    b3: int
    b4: int
    b3_kernel: int = 3
    pool: str = "none"  # one of STAGE_POOLS

    kind: ClassVar[str] = "inception"
    SCHEMA: ClassVar[dict] = {"b1": "width", "b2_reduce": "width", "b2": "width", "b3_reduce": "width", "b3": "width",
                              "b4": "width", "b3_kernel": "odd_kernel", "pool": "stage_pool"}

    def reduction(self) -> int:
        return 1 if self.pool == "none" else 2

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        module = InceptionModule(self, c, ctx)
        size = pool_out((h, w), self.pool)
        check_fits(size, where)
        cout = self.b1 + self.b2 + self.b3 + self.b4
        detail = f" ({self.b1}+{self.b2}+{self.b3}+{self.b4}" + (f", {self.pool} pool)" if self.pool != "none" else ")")
        return module, (cout, *size), [("inception", detail, (size[0], size[1], cout), module)]
