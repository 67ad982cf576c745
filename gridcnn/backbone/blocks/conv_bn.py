"""A stem or head convolution: conv (no bias), batch norm, activation, and an optional pool (ResNet's and DenseNet's
7x7 stem with its 3x3 max pool, MobileNet's 3x3 stride-2 stem, EfficientNet's 1x1 head convolution)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from gridcnn.backbone.blocks.common import (ConvBNAct, Context, check_fits, pool_out, stage_pool, unit_out)


class ConvBNStage(nn.Sequential):
    """A `ConvBN` block's module: [pad], conv, bn, act, [pool]."""

    kind = "conv_bn"  # the summary names its row by it


@dataclass(frozen=True)
class ConvBN:
    """conv ``kernel_size`` x ``kernel_size`` / ``stride`` -> batch norm -> activation -> ``pool``."""

    filters: int
    kernel_size: int = 3
    stride: int = 1
    pool: str = "none"  # one of STAGE_POOLS
    tf_padding: bool = False  # TensorFlow's "same" padding (EfficientNet-Lite) instead of kernel_size // 2

    kind: ClassVar[str] = "conv_bn"
    SCHEMA: ClassVar[dict] = {"filters": "width", "kernel_size": "kernel", "stride": "stride", "pool": "stage_pool",
                              "tf_padding": "bool"}

    def reduction(self) -> int:
        return self.stride * (1 if self.pool == "none" else 2)

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        unit = ConvBNAct(c, self.filters, self.kernel_size, ctx, stride=self.stride, tf_padding=self.tf_padding,
                         in_size=(h, w))
        size = unit_out((h, w), self.kernel_size, self.stride, self.tf_padding)
        check_fits(size, where)
        module = ConvBNStage(OrderedDict(unit.named_children()))
        pool = stage_pool(self.pool)
        if pool is not None:
            module.add_module("pool", pool)
            size = pool_out(size, self.pool)
            check_fits(size, where)
        detail = f" ({self.kernel_size}x{self.kernel_size}/{self.stride}" + (
            f", {self.pool} pool)" if pool is not None else ")")
        out = (self.filters, *size)
        return module, out, [("conv_bn", detail, (size[0], size[1], self.filters), module)]
