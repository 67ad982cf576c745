"""Adapters: scikit-learn transformers that turn raw data into float32 grids of shape (n, C, H, W).

Each adapter is registered under the short name a recipe's ``[adapter]`` section uses.
"""

from gridcnn.adapters.base import ADAPTERS, GridAdapter, get_adapter
from gridcnn.adapters.audio.adapter import SpectrogramGrid
from gridcnn.adapters.image import ImageGrid
from gridcnn.adapters.sequence import SequenceGrid
from gridcnn.adapters.text.adapter import EmbeddingGrid

__all__ = ["ADAPTERS", "EmbeddingGrid", "GridAdapter", "ImageGrid", "SequenceGrid", "SpectrogramGrid", "get_adapter"]
