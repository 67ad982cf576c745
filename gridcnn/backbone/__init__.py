"""The one configurable CNN: a frozen spec in (``spec``), an ``nn.Module`` out (``modules``), shapes inferred and a
Keras-style summary (``shapes``), named starting points (``presets``), and the estimator's flat parameters applied to
a preset (``params``)."""

from gridcnn.backbone.modules import ACTIVATIONS, Block, FullWidthConv2d, GridCNN, TokenEmbedding
from gridcnn.backbone.params import grid_defaults, resolve_spec
from gridcnn.backbone.presets import PRESETS, get_preset
from gridcnn.backbone.shapes import Summary
from gridcnn.backbone.spec import POOLS, BackboneSpec, ConvBlock

__all__ = ["ACTIVATIONS", "POOLS", "PRESETS", "BackboneSpec", "Block", "ConvBlock", "FullWidthConv2d", "GridCNN",
           "Summary", "TokenEmbedding", "get_preset", "grid_defaults", "resolve_spec"]
