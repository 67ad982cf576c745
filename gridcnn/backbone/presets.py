"""Named networks a recipe or the estimator's ``architecture`` names by string."""

from __future__ import annotations

from gridcnn._registry import Registry
from gridcnn.backbone.spec import BackboneSpec, ConvBlock

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
