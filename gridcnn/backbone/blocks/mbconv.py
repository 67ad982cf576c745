"""MobileNetV2's inverted residual (Sandler et al., 2018), EfficientNet's MBConv without squeeze-excitation (as in
EfficientNet-Lite): 1x1 expansion by ``expand`` (none when 1), depthwise ``kernel_size`` convolution (which strides),
linear 1x1 projection; the input is added back when the shape is kept. A stage is ``repeats`` such units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gridcnn.backbone.blocks.common import ConvBNAct, Context, check_fits, unit_out


class MBConvUnit(nn.Module):
    """expand (1x1, when ``expand`` > 1), depthwise, project (1x1, no activation); residual when it fits."""

    def __init__(self, cin: int, cout: int, stride: int, spec: "MBConvStage", ctx: Context, size: tuple[int, int]):
        super().__init__()
        mid = cin * spec.expand
        if spec.expand != 1:
            self.expand = ConvBNAct(cin, mid, 1, ctx)
        self.depthwise = ConvBNAct(mid, mid, spec.kernel_size, ctx, stride=stride, groups=mid,
                                   tf_padding=spec.tf_padding, in_size=size)
        self.project = ConvBNAct(mid, cout, 1, ctx, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if "expand" in self._modules else x
        out = self.project(self.depthwise(out))
        return x + out if self.residual else out


class MBConvStageModule(nn.Sequential):
    """A `MBConvStage`'s units, "0", "1", ..."""

    kind = "mbconv"  # the summary names its row by it


@dataclass(frozen=True)
class MBConvStage:
    """``repeats`` inverted residuals to ``filters`` channels; the first strides by ``stride``."""

    filters: int
    repeats: int = 1
    stride: int = 1
    expand: int = 6
    kernel_size: int = 3
    tf_padding: bool = False  # TensorFlow's "same" padding (EfficientNet-Lite's weights) instead of kernel_size // 2

    kind: ClassVar[str] = "mbconv"
    SCHEMA: ClassVar[dict] = {"filters": "width", "repeats": "count", "stride": "stride", "expand": "expand",
                              "kernel_size": "odd_kernel", "tf_padding": "bool"}

    def reduction(self) -> int:
        return self.stride

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        units, size = [], (h, w)
        for i in range(self.repeats):
            stride = self.stride if i == 0 else 1
            units.append(MBConvUnit(c, self.filters, stride, self, ctx, size))
            size = unit_out(size, self.kernel_size, stride, self.tf_padding)
            c = self.filters
        check_fits(size, where)
        module = MBConvStageModule(*units)
        detail = f" ({self.repeats} x k{self.kernel_size} e{self.expand}, stride {self.stride})"
        return module, (c, *size), [("mbconv", detail, (size[0], size[1], c), module)]
