"""The run folder's pictures: training curves, confusion matrix, first-layer filters, feature maps of one example.

These are the four pictures that explain a CNN: how it learned, what it confuses, what its first filters look for,
and what each block makes of one input.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(rows=1, cols=1, figsize=None, squeeze=True):
    """A Figure drawn by the Agg canvas, not pyplot: files only, and the caller's backend and figures stay as they
    were (pyplot's global state is never touched)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_history(history: list[dict], path) -> None:
    """Loss and accuracy per epoch, training and (when there is one) validation."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = _figure(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], marker="o", label="train")
        if history and f"valid_{key}" in history[0]:
            ax.plot(epochs, [r[f"valid_{key}"] for r in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")
    _save(fig, path)


def label_fonts(labels) -> tuple[list[str], list[str]]:
    """Font families that draw every character of ``labels`` (DejaVu Sans, then installed fonts that cover what it
    lacks, such as a CJK font), and the labels holding characters no installed font has (drawn as boxes)."""
    from matplotlib import font_manager, ft2font

    def charmap(path):
        try:
            return ft2font.FT2Font(path).get_charmap()
        except (OSError, RuntimeError):
            return {}

    missing = {ch for t in labels for ch in str(t) if not ch.isspace()}
    missing -= {chr(c) for c in charmap(font_manager.findfont("DejaVu Sans"))}
    families = ["DejaVu Sans"]
    for entry in font_manager.fontManager.ttflist if missing else ():
        if entry.name.startswith("Last Resort"):  # maps every character to a placeholder box: no help
            continue
        cmap = charmap(entry.fname)
        covered = {ch for ch in missing if ord(ch) in cmap}
        if covered and entry.name not in families:
            families.append(entry.name)
            missing -= covered
        if not missing:
            break
    return families, [str(t) for t in labels if set(str(t)) & missing]


def plot_confusion(matrix, labels, path) -> list[str]:
    """The confusion matrix with counts in the cells (rows: true class, columns: predicted).

    Returns the labels that no installed font can draw (they show as boxes), so the caller can say so.
    """
    matrix = np.asarray(matrix)
    n = len(labels)
    families, undrawable = label_fonts(labels)
    with matplotlib.rc_context({"font.family": families}):  # matplotlib falls back along the list, glyph by glyph
        fig, ax = _figure(figsize=(max(4, 0.6 * n + 2), max(3.5, 0.6 * n + 1.5)))
        im = ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(n), [str(c) for c in labels], rotation=45, ha="right")
        ax.set_yticks(range(n), [str(c) for c in labels])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
        fig.colorbar(im, ax=ax)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Glyph ... missing from font": returned instead
            _save(fig, path)
    return undrawable


def plot_filters(model, path, max_filters: int = 32) -> None:
    """The first convolution's kernels (averaged over input channels), one small image each."""
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    w = conv.weight.detach().cpu().float().mean(1).numpy()[:max_filters]
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    fig, axes = _figure(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, w):
        ax.imshow(k, cmap="RdBu_r", vmin=-np.abs(k).max(), vmax=np.abs(k).max(), aspect="auto")
    fig.suptitle(f"first-layer filters {tuple(conv.kernel_size)}")
    _save(fig, path)


def plot_feature_maps(model, grid, path, max_maps: int = 8) -> None:
    """One input grid and, per block, its first ``max_maps`` feature maps."""
    device = next(model.parameters()).device
    model.eval()
    x = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None].to(device)
    stages = [("input", x)] + model.feature_maps(x)
    cols = max_maps
    fig, axes = _figure(len(stages), cols, figsize=(1.4 * cols, 1.5 * len(stages)), squeeze=False)
    for r, (name, maps) in enumerate(stages):
        maps = maps[0].detach().cpu().float().numpy()
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(maps):
                ax.imshow(maps[c], cmap="viridis", aspect="auto")
        axes[r, 0].set_title(f"{name} {maps.shape[1]}x{maps.shape[2]}", fontsize=8, loc="left")
    _save(fig, path)


def plot_top_errors(errors: list[dict], grids, grid_shape, modality: str, path, texts=None) -> None:
    """The test examples the model got most confidently wrong, drawn as what they are, as fastai's
    ``plot_top_losses``: images as images, spectrograms with time across and frequency up, sequences as curves,
    texts as text; each titled true / predicted / probability of the prediction."""
    import textwrap

    n = max(1, len(errors))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = _figure(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not errors:
        axes[0, 0].text(0.5, 0.5, "no test example was misclassified", ha="center", va="center")
    for ax, e in zip(axes.flat, errors):
        g = np.asarray(grids[e["index"]], dtype=np.float32).reshape(grid_shape)  # rows, (H, W) or (C, H, W)
        title = f"true {e['true']} / pred {e['predicted']}\np={e['probability']:.3f}"
        if modality == "text" and texts is not None:
            ax.text(0, 1, "\n".join(textwrap.wrap(str(texts[e["index"]]), 38)[:9]), va="top", ha="left", fontsize=8,
                    wrap=True, transform=ax.transAxes)
        elif modality == "sequence" or g.shape[1] == 1:
            ax.axis("on")
            for c in range(g.shape[0]):
                ax.plot(g[c, 0], lw=1)
            ax.set_xticks([])
            ax.set_yticks([])
        elif modality == "audio":
            ax.imshow(g[0].T, origin="lower", aspect="auto", cmap="magma")
            ax.set_xlabel("time")
            ax.set_ylabel("mel band")
        else:
            img = np.moveaxis(g, 0, -1) if g.shape[0] == 3 else g[0]
            lo, hi = float(img.min()), float(img.max())
            ax.imshow((img - lo) / (hi - lo or 1.0), cmap=None if g.shape[0] == 3 else "gray")
        ax.set_title(title, fontsize=9, color="firebrick")
    fig.suptitle("most confidently wrong test examples")
    _save(fig, path)
