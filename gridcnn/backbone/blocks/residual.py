"""ResNet's residual stages (He et al., 2016): ``blocks`` basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 of 4x the
width) units, each adding its input back; the first unit strides and projects the shortcut when the shape changes.
The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"), which the published weights were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gridcnn.backbone.blocks.common import Context, check_fits, conv_out


class ResidualUnit(nn.Module):
    """One basic or bottleneck unit. Layer names are the ones ResNet's published weights use (conv1, bn1, ...,
    downsample), so loading them is a prefix change."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool, ctx: Context):
        super().__init__()
        cout = width * 4 if bottleneck else width
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = ctx.bn(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = ctx.bn(width)
            self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
            self.bn3 = ctx.bn(cout)
        else:
            self.conv1 = nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False)
            self.bn1 = ctx.bn(width)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.bn2 = ctx.bn(width)
        self.act = ctx.act()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), ctx.bn(cout))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if hasattr(self, "conv3"):
            out = self.bn3(self.conv3(self.act(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(out + shortcut)


class ResidualStageModule(nn.Sequential):
    """A `ResidualStage`'s units, "0", "1", ..."""

    kind = "residual"  # the summary names its row by it


@dataclass(frozen=True)
class ResidualStage:
    """``blocks`` residual units of ``filters`` width (the output is 4x that for bottlenecks); the first strides."""

    filters: int
    blocks: int = 2
    stride: int = 1
    bottleneck: bool = False

    kind: ClassVar[str] = "residual"
    SCHEMA: ClassVar[dict] = {"filters": "width", "blocks": "count", "stride": "stride", "bottleneck": "bool"}

    def reduction(self) -> int:
        return self.stride

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        units = []
        for i in range(self.blocks):
            units.append(ResidualUnit(c, self.filters, self.stride if i == 0 else 1, self.bottleneck, ctx))
            c = self.filters * 4 if self.bottleneck else self.filters
        size = tuple(conv_out(n, 3, self.stride, 1) for n in (h, w))
        check_fits(size, where)
        module = ResidualStageModule(*units)
        detail = f" ({self.blocks} x {'bottleneck' if self.bottleneck else 'basic'}, stride {self.stride})"
        return module, (c, *size), [("residual", detail, (size[0], size[1], c), module)]
