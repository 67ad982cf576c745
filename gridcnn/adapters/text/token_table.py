"""The estimator's token table (Kim's non-static CNN): the pretrained rows it starts from, the ids it accepts, and
the optimiser groups that train it apart from the convolutions.

``GridCNNClassifier(embedding=...)`` takes the same value as the text adapter's ``embedding`` parameter; the
adapter, with ``output="ids"``, gives each token's row in that table plus one (0 for padding), and the network's first
layer (`gridcnn.backbone.TokenEmbedding`) looks the rows up and trains them with the rest.
"""

from __future__ import annotations

import numpy as np
import torch

from gridcnn.exceptions import GridCNNError

# The key the estimator adds to each optimiser group: the group's rate is ``lr * lr_scale`` all along a schedule.
LR_SCALE = "lr_scale"
# embedding_lr="auto": the table learns at a fiftieth of the network's rate. MiniLM's vectors are small (entries
# about 0.04), so Adam's steps of about lr per entry rewrite them within an epoch at the convolutions' rate: on
# the text recipe (seed 0) the table at 1x lr scored 77.7%, at 0.1x 80.3%, at 0.02x 81.0% (static: see RESULTS).
AUTO_LR_SCALE = 0.02


def pretrained_table(embedding) -> np.ndarray:
    """The (rows, dim) float32 table ``embedding`` names (see `gridcnn.adapters.text.embedding_table`)."""
    from gridcnn.adapters.text.vectors import embedding_table

    return embedding_table(embedding)


def table_shape(embedding) -> tuple[int, int]:
    """(rows, dim) of the network's table: the pretrained rows and one padding row in front."""
    rows, dim = pretrained_table(embedding).shape
    return int(rows) + 1, int(dim)


def load_pretrained(model: torch.nn.Module, embedding) -> None:
    """Copy the pretrained vectors into the network's table (row 0, padding, stays zero)."""
    table = torch.from_numpy(pretrained_table(embedding))
    with torch.no_grad():
        model.embed.embedding.weight[1:].copy_(table)


def check_token_ids(X, grid, n_rows: int, owner: str) -> None:
    """Refuse grids that are not (1, tokens, 1) ids of a table of ``n_rows`` rows (the padding row included)."""
    if len(grid) != 3 or grid[0] != 1 or grid[2] != 1:
        raise GridCNNError(
            f"{owner}(embedding=...) looks token ids up in its table, so X must hold grids of shape (1, tokens, 1), "
            f"as EmbeddingGrid(output='ids') makes them. Got grids of shape {tuple(grid)}, which hold token "
            "vectors or other values. Give the adapter output='ids', or leave the classifier's embedding=None."
        )
    values = np.asarray(X)
    bad = (values != np.round(values)) | (values < 0) | (values > n_rows - 1)
    if bad.any():
        value = values.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
        raise GridCNNError(
            f"X holds {value!r}, which is not a token id of {owner}'s table (whole numbers from 0, padding, to "
            f"{n_rows - 1}). Make X with EmbeddingGrid(output='ids') and the same embedding as the classifier's."
        )


def param_groups(model: torch.nn.Module, lr: float, embedding_lr) -> list[dict]:
    """The network's parameters as optimiser groups: the token table on its own, at ``embedding_lr`` ("auto":
    `AUTO_LR_SCALE` times ``lr``), without weight decay (decay would pull every row towards zero at every step,
    even the rows of tokens no training text uses)."""
    table = model.embed.embedding.weight
    rest = [p for p in model.parameters() if p is not table]
    scale = AUTO_LR_SCALE if embedding_lr == "auto" else embedding_lr / lr
    return [{"params": rest, LR_SCALE: 1.0}, {"params": [table], "weight_decay": 0.0, LR_SCALE: scale}]
