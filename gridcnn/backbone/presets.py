"""Named networks a recipe or the estimator's ``architecture`` names by string."""

from __future__ import annotations

from gridcnn._registry import Registry
from gridcnn.backbone.blocks import BNAct, ConvBN, DenseStage, Inception, MBConvStage, ResidualStage
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


# The input scaling ImageNet weights were trained with (torchvision's and timm's), applied inside the network.
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# TensorFlow's ports (GoogLeNet's and EfficientNet-Lite's weights) take (x - 0.5) / 0.5, values in [-1, 1].
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


# -- the guides' families (one branch of stages; global average pool, then the linear head) ---------------------
# min_size is the network's total downsampling: a smaller grid reaches the last stages as less than one cell.


@PRESETS.register("vgg11")
def _vgg11() -> BackboneSpec:
    # Simonyan & Zisserman (2015), configuration A: eight 3x3 convolutions, five 2x2 max pools. The head is a global
    # average pool and one linear layer, not the original 4096-4096 layers (120M parameters, most of VGG's).
    plan = [(64, "max"), (128, "max"), (256, "none"), (256, "max"), (512, "none"), (512, "max"), (512, "none"),
            (512, "max")]
    blocks = tuple(ConvBlock(f, 3, padding="same", pool=pool) for f, pool in plan)
    return BackboneSpec(branches=(blocks,), global_pool="avg", dropout=0.5, normalize=IMAGENET, min_size=32)


def _resnet(units, bottleneck: bool, stem_stride: int = 2, stem_pool: str = "max3") -> tuple:
    stem = ConvBN(64, 7, stride=stem_stride, pool=stem_pool)
    return (stem, *(ResidualStage(w, n, stride=1 if i == 0 else 2, bottleneck=bottleneck)
                    for i, (w, n) in enumerate(zip((64, 128, 256, 512), units))))


@PRESETS.register("resnet18")
def _resnet18() -> BackboneSpec:
    # He et al. (2016): a 7x7 stride-2 stem and max pool, then four stages of two basic units (64-512 filters).
    return BackboneSpec(branches=(_resnet((2, 2, 2, 2), False),), global_pool="avg", normalize=IMAGENET, min_size=32)


@PRESETS.register("resnet18_small")
def _resnet18_small() -> BackboneSpec:
    # resnet18 without its stem's two halvings (stride 1, no pool): for grids from 8x8 (28x28 digits, 40-band
    # spectrograms), which the ImageNet stem would shrink to 7x7 before the first stage. Same layers and shapes as
    # resnet18, so resnet18's weights load into it.
    return BackboneSpec(branches=(_resnet((2, 2, 2, 2), False, 1, "none"),), global_pool="avg", normalize=IMAGENET,
                        min_size=8)


@PRESETS.register("resnet50")
def _resnet50() -> BackboneSpec:
    # He et al. (2016): bottleneck units (1x1, 3x3, 1x1 of 4x the width), 3-4-6-3 of them.
    return BackboneSpec(branches=(_resnet((3, 4, 6, 3), True),), global_pool="avg", normalize=IMAGENET, min_size=32)


@PRESETS.register("resnet20")
def _resnet20() -> BackboneSpec:
    # He et al. (2016), section 4.2 (CIFAR-10): a 3x3 stem and three stages of three basic units of 16, 32, 64
    # filters on 32x32 grids; 0.27M parameters. No published weights: trained from scratch.
    blocks = (ConvBN(16, 3), ResidualStage(16, 3), ResidualStage(32, 3, stride=2), ResidualStage(64, 3, stride=2))
    return BackboneSpec(branches=(blocks,), global_pool="avg", min_size=4)


@PRESETS.register("googlenet")
def _googlenet() -> BackboneSpec:
    # Szegedy et al. (2015), as torchvision builds it (batch norm after every convolution, 3x3 in the third branch)
    # without the auxiliary classifiers, which only train.
    inc = [(64, 96, 128, 16, 32, 32, "none"), (128, 128, 192, 32, 96, 64, "max3_ceil"),
           (192, 96, 208, 16, 48, 64, "none"), (160, 112, 224, 24, 64, 64, "none"), (128, 128, 256, 24, 64, 64, "none"),
           (112, 144, 288, 32, 64, 64, "none"), (256, 160, 320, 32, 128, 128, "max2_ceil"),
           (256, 160, 320, 32, 128, 128, "none"), (384, 192, 384, 48, 128, 128, "none")]
    blocks = (ConvBN(64, 7, stride=2, pool="max3_ceil"), ConvBN(64, 1), ConvBN(192, 3, pool="max3_ceil"),
              *(Inception(*v[:6], pool=v[6]) for v in inc))
    return BackboneSpec(branches=(blocks,), global_pool="avg", dropout=0.2, bn_eps=1e-3, normalize=INCEPTION,
                        min_size=32)


@PRESETS.register("densenet121")
def _densenet121() -> BackboneSpec:
    # Huang et al. (2017), DenseNet-BC-121: growth 32, dense blocks of 6-12-24-16 layers, transitions between them,
    # a final batch norm and ReLU.
    blocks = (ConvBN(64, 7, stride=2, pool="max3"), DenseStage(6), DenseStage(12), DenseStage(24),
              DenseStage(16, transition=False), BNAct())
    return BackboneSpec(branches=(blocks,), global_pool="avg", normalize=IMAGENET, min_size=32)


@PRESETS.register("mobilenetv2")
def _mobilenetv2() -> BackboneSpec:
    # Sandler et al. (2018), width 1.0: (expansion, channels, repeats, stride) as in the paper's table 2.
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    blocks = (ConvBN(32, 3, stride=2), *(MBConvStage(c, n, stride=s, expand=t) for t, c, n, s in table),
              ConvBN(1280, 1))
    return BackboneSpec(branches=(blocks,), global_pool="avg", dropout=0.2, activation="relu6", normalize=IMAGENET,
                        min_size=32)


@PRESETS.register("efficientnet_lite0")
def _efficientnet_lite0() -> BackboneSpec:
    # Tan & Le (2019), the Lite variant for mobile accelerators: EfficientNet-B0's stages without squeeze-excitation,
    # ReLU6 instead of swish, and TensorFlow's padding and batch-norm epsilon, which its weights were trained with.
    table = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
             (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]
    blocks = (ConvBN(32, 3, stride=2, tf_padding=True),
              *(MBConvStage(c, n, stride=s, expand=t, kernel_size=k, tf_padding=True) for t, c, n, s, k in table),
              ConvBN(1280, 1, tf_padding=True))
    return BackboneSpec(branches=(blocks,), global_pool="avg", dropout=0.2, activation="relu6", bn_eps=1e-3,
                        normalize=INCEPTION, min_size=32)


def get_preset(name: str) -> BackboneSpec:
    """Return the spec of the preset called ``name`` (see ``PRESETS.names()``)."""
    return PRESETS.get(name)()
