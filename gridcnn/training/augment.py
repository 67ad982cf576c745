"""Training-time augmentation of grid batches: one callable per fit, applied to each training batch only.

Every function takes a float batch (n, C, H, W) and the epoch's ``torch.Generator`` and returns a new batch, so
the draws follow the fit's seed and an epoch replays exactly when a fit resumes from a checkpoint (each epoch's
generator is derived from the seed and the epoch number). Nothing here runs at predict time.

Grid axes by modality (what the adapters produce): images (C, H, W); spectrograms (1, time, frequency); sequences
(C, 1, length); texts (1, tokens, embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

MODALITIES = ("image", "audio", "sequence", "signal", "text")  # "signal": the sequence adapter's name for it


def random_shift(xb: torch.Tensor, shift_h: int, shift_w: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each grid by up to ``shift_h`` rows and ``shift_w`` columns (zero fill)."""
    n, c, h, w = xb.shape
    sh, sw = (0 if h == 1 else shift_h), (0 if w == 1 else shift_w)
    if sh == 0 and sw == 0:
        return xb
    padded = nn.functional.pad(xb, (sw, sw, sh, sh))
    dr = torch.randint(0, 2 * sh + 1, (n, 1), generator=generator).to(xb.device)
    dc = torch.randint(0, 2 * sw + 1, (n, 1), generator=generator).to(xb.device)
    rows = (torch.arange(h, device=xb.device)[None] + dr)[:, None, :, None]
    cols = (torch.arange(w, device=xb.device)[None] + dc)[:, None, None, :]
    batch = torch.arange(n, device=xb.device)[:, None, None, None]
    chan = torch.arange(c, device=xb.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_flip(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half of the grids left to right (along W), chosen at random."""
    flip = (torch.rand(xb.shape[0], generator=generator) < 0.5).to(xb.device)
    return torch.where(flip[:, None, None, None], xb.flip(-1), xb)


def random_mask(xb: torch.Tensor, width: int, axis: int, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment's masking: per grid, zero a band of 0..``width`` consecutive cells along ``axis`` (2 = H, 3 = W)
    at a random position (Park et al., 2019)."""
    n, size = xb.shape[0], xb.shape[axis]
    width = min(width, size)
    if width <= 0:
        return xb
    w = torch.randint(0, width + 1, (n,), generator=generator)
    start = (torch.rand(n, generator=generator) * (size - w + 1)).long()
    pos = torch.arange(size)[None]
    keep = ~((pos >= start[:, None]) & (pos < (start + w)[:, None]))
    shape = [n, 1, 1, 1]
    shape[axis] = size
    return xb * keep.view(shape).to(device=xb.device, dtype=xb.dtype)


def token_dropout(xb: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero each token row (H) of each grid with probability ``p``: a text's words, dropped at random."""
    keep = (torch.rand(xb.shape[0], 1, xb.shape[2], 1, generator=generator) >= p).to(xb.device, xb.dtype)
    return xb * keep


@dataclass(frozen=True)
class Augment:
    """The augmentation of one fit, resolved to numbers; ``augment(batch, generator)`` applies it."""

    shift_h: int = 0
    shift_w: int = 0
    flip: bool = False
    time_mask: int = 0
    freq_mask: int = 0
    token_dropout: float = 0.0

    def __bool__(self) -> bool:
        return any((self.shift_h, self.shift_w, self.flip, self.time_mask, self.freq_mask, self.token_dropout))

    def __call__(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.shift_h or self.shift_w:
            xb = random_shift(xb, self.shift_h, self.shift_w, generator)
        if self.flip:
            xb = random_flip(xb, generator)
        if self.time_mask:
            xb = random_mask(xb, self.time_mask, 2, generator)
        if self.freq_mask:
            xb = random_mask(xb, self.freq_mask, 3, generator)
        if self.token_dropout:
            xb = token_dropout(xb, self.token_dropout, generator)
        return xb


def infer_modality(grid: tuple, spec) -> str:
    """What the grids are, from their shape and the network, when no adapter said so: "text" for a network with
    full-width kernels (the Kim preset), "sequence" for grids one row high, else "image"."""
    kernels = [getattr(b, "kernel_size", None) for branch in spec.branches for b in branch]  # stages may have none
    full_width = any(isinstance(k, tuple) and k[1] == "full" for k in kernels)
    if full_width:
        return "text"
    return "sequence" if grid[1] == 1 else "image"


def resolve_augment(modality: str, grid: tuple, *, shift="auto", flip=False, time_mask="auto", freq_mask="auto",
                    token_dropout=0.0) -> Augment:
    """Turn the estimator's augmentation parameters into numbers for grids of shape ``grid`` (C, H, W).

    "auto" sizes follow the modality: images shift by round(min(H, W) / 12) cells along both axes (1 on 8x8
    digits, 2 on 28x28 MNIST); spectrograms shift by round(time / 16) frames along time only and mask up to
    ceil(time / 8) frames and ceil(frequency / 8) bands (SpecAugment); sequences shift by round(length / 10)
    steps; texts are not augmented. Grids too small for a shift (under 6 cells, or 5 steps) are not shifted.
    """
    _, h, w = grid
    auto = lambda v, size: size if v == "auto" else int(v)  # noqa: E731
    if modality == "image":
        s = auto(shift, round(min(h, w) / 12))
        return Augment(shift_h=s, shift_w=s, flip=bool(flip), time_mask=auto(time_mask, 0),
                       freq_mask=auto(freq_mask, 0), token_dropout=token_dropout)
    if modality == "audio":  # rows are time: shifting or flipping along frequency would change the sound
        return Augment(shift_h=auto(shift, round(h / 16)), flip=bool(flip),
                       time_mask=auto(time_mask, math.ceil(h / 8)), freq_mask=auto(freq_mask, math.ceil(w / 8)),
                       token_dropout=token_dropout)
    if modality in ("sequence", "signal"):
        return Augment(shift_w=auto(shift, round(w / 10)), flip=bool(flip), time_mask=auto(time_mask, 0),
                       freq_mask=auto(freq_mask, 0), token_dropout=token_dropout)
    # text: shifting tokens along the embedding axis would scramble the word vectors; only what is asked for
    s = auto(shift, 0)
    return Augment(shift_h=s, flip=bool(flip), time_mask=auto(time_mask, 0), freq_mask=auto(freq_mask, 0),
                   token_dropout=token_dropout)
