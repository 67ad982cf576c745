"""Augmentations of training batches: callables ``augment(xb, generator) -> xb`` that `run_epochs` applies to every
training batch, on its device, drawing from the epoch's generator (so a fit stays reproducible and resumable)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def random_shift(xb: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each grid by up to ``shift`` cells along H and W (zero fill); an axis of length 1 stays put."""
    n, c, h, w = xb.shape
    sh, sw = (0 if h == 1 else shift), (0 if w == 1 else shift)
    padded = nn.functional.pad(xb, (sw, sw, sh, sh))
    dr = torch.randint(0, 2 * sh + 1, (n, 1), generator=generator).to(xb.device)
    dc = torch.randint(0, 2 * sw + 1, (n, 1), generator=generator).to(xb.device)
    rows = (torch.arange(h, device=xb.device)[None] + dr)[:, None, :, None]
    cols = (torch.arange(w, device=xb.device)[None] + dc)[:, None, None, :]
    batch = torch.arange(n, device=xb.device)[:, None, None, None]
    chan = torch.arange(c, device=xb.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


@dataclass(frozen=True)
class RandomShift:
    """The ``augment_shift`` augmentation: `random_shift` by up to ``cells`` cells."""

    cells: int

    def __call__(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_shift(xb, self.cells, generator)
