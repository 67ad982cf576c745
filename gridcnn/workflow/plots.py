"""The run folder's pictures: how the network learned (``training_curves.png``), what it confuses
(``confusion_matrix.png``), what it got most confidently wrong (``errors.png``); and, from `network_plots`, what
its first filters look for (``filters.png``), what each block makes of one example (``feature_maps.png``) and where
it looked (``explain.png``).
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
from matplotlib.ticker import MaxNLocator

from gridcnn.workflow.figures import example_title, figure, kind_of, label_fonts, save, show_example
from gridcnn.workflow.network_plots import plot_explain, plot_feature_maps, plot_filters

__all__ = ["label_fonts", "plot_confusion", "plot_explain", "plot_feature_maps", "plot_filters", "plot_history",
           "plot_top_errors"]


def plot_history(history: list[dict], path) -> None:
    """Loss and accuracy per epoch side by side, training and (when there is one) validation: linear axes, whole
    epochs, accuracy from 0 to 1 so that two runs' pictures compare at a glance."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = figure(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], marker="o", label="train")
        if history and f"valid_{key}" in history[0]:
            ax.plot(epochs, [r[f"valid_{key}"] for r in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_ylim(bottom=0)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.01)
    last = history[-1] if history else {}
    ax_loss.set_title(f"loss: {last.get('train_loss', float('nan')):.3f} after {len(history)} epochs"
                      + (f" (validation {last['valid_loss']:.3f})" if "valid_loss" in last else ""), fontsize=10)
    ax_acc.set_title(f"accuracy: {last.get('train_accuracy', float('nan')):.1%}"
                     + (f" (validation {last['valid_accuracy']:.1%})" if "valid_accuracy" in last else ""), fontsize=10)
    save(fig, path)


def plot_confusion(matrix, labels, path) -> list[str]:
    """The confusion matrix twice (rows: true class, columns: predicted): counts, and each row divided by its total
    (the share of each class that went where; the diagonal is each class's recall). Colour scales start at zero,
    empty cells stay blank, and the title gives the accuracy.

    Returns the labels that no installed font can draw (they show as boxes), so the caller can say so.
    """
    matrix = np.asarray(matrix)
    n = len(labels)
    total = int(matrix.sum())
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    families, undrawable = label_fonts(labels)
    side = max(3.5, 0.5 * n + 1.8)
    with matplotlib.rc_context({"font.family": families}):  # matplotlib falls back along the list, glyph by glyph
        fig, axes = figure(1, 2, figsize=(2 * side + 1.5, side + 0.6))
        for ax, values, what, fmt, top in ((axes[0], matrix, "counts", "{:d}", max(1, int(matrix.max()))),
                                           (axes[1], rates, "share of each true class", "{:.0%}", 1.0)):
            im = ax.imshow(values, cmap="Blues", vmin=0, vmax=top)
            ax.set_xticks(range(n), [str(c) for c in labels], rotation=45 if n > 4 else 0,
                          ha="right" if n > 4 else "center")
            ax.set_yticks(range(n), [str(c) for c in labels])
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(what, fontsize=10)
            if n <= 20:
                for i in range(n):
                    for j in range(n):
                        v = values[i, j]
                        if matrix[i, j] == 0:  # blank cells: the few mistakes stand out among the zeros
                            continue
                        ax.text(j, i, fmt.format(int(v) if fmt == "{:d}" else v), ha="center", va="center",
                                color="white" if v > top / 2 else "black", fontsize=8 if n <= 12 else 6)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(f"accuracy {np.trace(matrix) / max(total, 1):.2%} on {total} test samples")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Glyph ... missing from font": returned instead
            save(fig, path)
    return undrawable


def plot_top_errors(errors: list[dict], grids, grid_shape, modality: str, path, texts=None) -> None:
    """The test examples the model got most confidently wrong, drawn as what they are, as fastai's
    ``plot_top_losses``: images as images, spectrograms with time across and frequency up, sequences as curves,
    texts as text; each titled true / predicted / probability of the prediction."""
    n = max(1, len(errors))
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = figure(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not errors:
        axes[0, 0].text(0.5, 0.5, "no test example was misclassified", ha="center", va="center")
    kind = kind_of(grid_shape, modality)
    if kind == "text" and texts is None:
        kind = "image"
    for ax, e in zip(axes.flat, errors):
        ax.axis("on")
        g = np.asarray(grids[e["index"]], dtype=np.float32).reshape(grid_shape)
        show_example(ax, g, kind, text=texts[e["index"]] if texts is not None else None)
        title, colour = example_title(e["true"], e["predicted"], e["probability"])
        ax.set_title(title.replace(" (", "\np=").rstrip(")"), fontsize=9, color=colour)
    fig.suptitle("most confidently wrong test examples")
    save(fig, path)
