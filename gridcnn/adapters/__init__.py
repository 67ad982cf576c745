"""Adapters: scikit-learn transformers that turn raw data into float32 grids of shape (n, C, H, W).

Each adapter is registered under the short name a recipe's ``[adapter]`` section uses.
"""

from ._base import ADAPTERS, GridAdapter, get_adapter
from .audio import SpectrogramGrid
from .image import ImageGrid
from .sequence import SequenceGrid
from .text import EmbeddingGrid

__all__ = ["ADAPTERS", "EmbeddingGrid", "GridAdapter", "ImageGrid", "SequenceGrid", "SpectrogramGrid", "get_adapter"]
