"""The block kinds beyond the plain `ConvBlock`, one small module each, registered by the ``kind`` a spec's JSON
names them by: the stages of the guides' architecture families (ResNet, GoogLeNet, DenseNet, MobileNetV2 and
EfficientNet-Lite)."""

from gridcnn.backbone.blocks.bn_act import BNAct
from gridcnn.backbone.blocks.common import STAGE_POOLS, Context
from gridcnn.backbone.blocks.conv_bn import ConvBN
from gridcnn.backbone.blocks.dense import DenseStage
from gridcnn.backbone.blocks.inception import Inception
from gridcnn.backbone.blocks.mbconv import MBConvStage
from gridcnn.backbone.blocks.residual import ResidualStage

# kind -> dataclass; a block written without "kind" is a plain ConvBlock (model files before the families).
KINDS = {cls.kind: cls for cls in (ConvBN, ResidualStage, Inception, DenseStage, MBConvStage, BNAct)}

__all__ = ["KINDS", "STAGE_POOLS", "BNAct", "Context", "ConvBN", "DenseStage", "Inception", "MBConvStage",
           "ResidualStage"]
