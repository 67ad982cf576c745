"""What the block kinds share: a conv-batchnorm-activation unit, TensorFlow's "same" padding, the stem pools, and the
context (activation, batch-norm epsilon) a block is built in."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from gridcnn.backbone.modules import ACTIVATIONS
from gridcnn.exceptions import GridCNNError

# Pools after a stage, by what they do: "max3" is ResNet's and DenseNet's 3x3 stride-2 pool padded by 1;
# "max3_ceil" and "max2_ceil" are GoogLeNet's, which round the output size up instead of padding.
STAGE_POOLS = ("none", "max3", "max3_ceil", "max2_ceil")


@dataclass(frozen=True)
class Context:
    """What every block of one network shares."""

    activation: str = "relu"
    bn_eps: float = 1e-5

    def act(self) -> nn.Module:
        return ACTIVATIONS[self.activation]()

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.bn_eps)


def conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def tf_same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one axis, (before, after): the output is ceil(n / s) and the odd cell goes
    after. EfficientNet-Lite's weights were trained with it; PyTorch's symmetric padding shifts strided layers by a
    cell and moves the features."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Sequential):
    """[pad], conv (no bias: batch norm follows), batch norm, [activation]; output size from ``out_size``."""

    def __init__(self, cin: int, cout: int, k: int, ctx: Context, *, stride: int = 1, groups: int = 1,
                 act: bool = True, tf_padding: bool = False, in_size: tuple[int, int] | None = None):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if tf_padding:
            (t, b), (l, r) = (tf_same_pad(n, k, stride) for n in in_size)
            if (t, b, l, r) != (0, 0, 0, 0):
                layers["pad"] = nn.ZeroPad2d((l, r, t, b))
            padding = 0
        else:
            padding = k // 2
        layers["conv"] = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=False)
        layers["bn"] = ctx.bn(cout)
        if act:
            layers["act"] = ctx.act()
        super().__init__(layers)


def unit_out(size: tuple[int, int], k: int, stride: int, tf_padding: bool = False) -> tuple[int, int]:
    """The output size of a `ConvBNAct` on a ``size`` grid."""
    if tf_padding:
        return tuple(math.ceil(n / stride) for n in size)
    return tuple(conv_out(n, k, stride, k // 2) for n in size)


def stage_pool(kind: str) -> nn.Module | None:
    """The module of a `STAGE_POOLS` entry (None for "none")."""
    if kind == "max3":
        return nn.MaxPool2d(3, stride=2, padding=1)
    if kind == "max3_ceil":
        return nn.MaxPool2d(3, stride=2, ceil_mode=True)
    if kind == "max2_ceil":
        return nn.MaxPool2d(2, stride=2, ceil_mode=True)
    return None


def pool_out(size: tuple[int, int], kind: str) -> tuple[int, int]:
    """The output size of a `STAGE_POOLS` pool on a ``size`` grid (torch's ceil-mode rule included: a window that
    would start in the padding is dropped)."""
    if kind == "max3":
        return tuple(conv_out(n, 3, 2, 1) for n in size)
    if kind in ("max3_ceil", "max2_ceil"):
        k = 3 if kind == "max3_ceil" else 2
        out = []
        for n in size:
            o = math.ceil((n - k) / 2) + 1
            if (o - 1) * 2 >= n:
                o -= 1
            out.append(o)
        return tuple(out)
    return tuple(size)


def check_fits(size: tuple[int, int], where: str) -> None:
    """A stage whose output would be empty: the grid is smaller than the network allows."""
    if min(size) < 1:
        raise GridCNNError(
            f"The grid is too small for {where}: its output would be {size[0]}x{size[1]}. Use larger grids, or a "
            "preset made for small grids (resnet20)."
        )


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
