"""Batch norm and activation alone: the last step of a pre-activation network (DenseNet's norm5 and the ReLU after
it), whose stages end on a convolution."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from gridcnn.backbone.blocks.common import Context


class BNActModule(nn.Sequential):
    """bn, act."""

    kind = "bn_act"  # the summary names its row by it


@dataclass(frozen=True)
class BNAct:
    """Keeps shape and channels; takes no size parameters (``kind`` only)."""

    kind: ClassVar[str] = "bn_act"
    SCHEMA: ClassVar[dict] = {}

    def reduction(self) -> int:
        return 1

    def build(self, in_shape: tuple, ctx: Context, where: str):
        c, h, w = in_shape
        module = BNActModule(OrderedDict([("bn", ctx.bn(c)), ("act", ctx.act())]))
        return module, (c, h, w), [("bn_act", "", (h, w, c), module)]
