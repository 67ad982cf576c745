"""Adapters: scikit-learn transformers that turn raw data into float32 grids of shape (n, C, H, W).

Each adapter is registered under the short name a recipe's ``[adapter]`` section uses.
"""

from ._base import ADAPTERS, GridAdapter, get_adapter





__all__ = ["ADAPTERS", "GridAdapter", "get_adapter"]
