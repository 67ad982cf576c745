"""Pictures of the network itself: its first filters (``filters.png``), one example through every block
(``feature_maps.png``) and where it looked in a few test examples (``explain.png``, Grad-CAM)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.gridspec import GridSpec
from matplotlib.ticker import MaxNLocator

from gridcnn.backbone.explain import grad_cam
from gridcnn.workflow.figures import example_title, figure, kind_of, save, show_example

STACKED = 16  # one-dimensional maps (text, signals) drawn as rows of one picture: this many channels


def _device_tensor(model, grids) -> torch.Tensor:
    return torch.as_tensor(np.asarray(grids, dtype=np.float32)).to(next(model.parameters()).device)


def plot_filters(model, path, max_filters: int = 32, *, modality: str = "image", grids=None, tokens=None) -> None:
    """The first convolution's kernels as what they look for: colour patches for a colour model, time across for
    spectrograms, curves for signals; for texts (kernels as wide as the 384 embedding dimensions mean nothing as
    pictures) the test n-grams that excite each filter most, given the test ``grids`` and their ``tokens``."""
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    w = conv.weight.detach().cpu().float().numpy()[:max_filters]  # (filters, in channels, kh, kw)
    if modality == "text":
        return _text_filters(model, path, grids, tokens)
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    fig, axes = figure(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    colour = w.shape[1] == 3
    signal = modality == "sequence" or w.shape[2] == 1
    for ax, k in zip(axes.flat, w):
        if colour:  # each kernel's weights around mid-grey: the colour it adds where it fires
            ax.imshow(np.clip(0.5 + np.moveaxis(k, 0, -1) / (2 * np.abs(k).max() + 1e-12), 0, 1))
        elif signal:
            ax.axis("on")
            ax.axhline(0, color="#bbb", lw=0.8)
            ax.plot(k.mean(0)[0], marker="o", ms=3)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            k = k.mean(0).T if modality == "audio" else k.mean(0)
            ax.imshow(k, cmap="RdBu_r", vmin=-np.abs(k).max(), vmax=np.abs(k).max(), origin="lower"
                      if modality == "audio" else "upper")
    shape = "x".join(str(s) for s in conv.kernel_size)
    how = ("in colour: the colour pattern each looks for" if colour else "weights over the kernel's steps"
           if signal else "time across, red positive, blue negative" if modality == "audio"
           else "red positive, blue negative")
    fig.suptitle(f"first-layer filters {shape} ({how})", fontsize=10)
    save(fig, path)


def _text_filters(model, path, grids, tokens, per_branch: int = 8, n_examples: int = 500) -> None:
    """For each branch of a text CNN, the first filters and the three test n-grams they answer most strongly."""
    fig, ax = figure(1, 1, figsize=(11, 0.8))
    ax.axis("off")
    lines = []
    one_block = all(sum(model.is_block(m) for m in b.children()) == 1 for b in model.branches)
    if grids is None or tokens is None or not one_block:
        lines.append("Text filters span the whole embedding: as pictures they mean nothing, and this network's "
                     "filters cannot be read back as n-grams (it needs one convolution per branch and the test texts).")
    else:
        with torch.no_grad():
            _, last, grid = model.forward_with_maps(_device_tensor(model, grids[:n_examples]))
        for name, maps in last:
            maps = maps[..., 0].float().cpu().numpy()  # (texts, filters, positions)
            h = grid.shape[2] - maps.shape[2] + 1  # a valid convolution: its n-gram length
            for f in range(min(per_branch, maps.shape[1])):
                order = np.argsort(-maps[:, f].ravel())
                seen, shown = set(), []
                for flat in order:
                    i, p = divmod(int(flat), maps.shape[2])
                    gram = " ".join(t for t in tokens[i][p:p + h]) or "(padding)"
                    if gram not in seen:
                        seen.add(gram)
                        shown.append(f"“{gram}” {maps[i, f, p]:.2f}")
                    if len(shown) == 3:
                        break
                lines.append(f"{name}  {h}-gram filter {f + 1}:   " + "   ·   ".join(shown))
    fig.set_size_inches(11, 0.9 + 0.22 * len(lines))
    ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=8, family="DejaVu Sans Mono",
            transform=ax.transAxes, linespacing=1.5)
    fig.suptitle("first-layer filters of a text CNN: the test n-grams each answers most strongly (its activation)",
                 fontsize=10)
    save(fig, path)


def plot_feature_maps(model, grid, path, max_maps: int = 8, *, modality: str = "image", true=None, predicted=None,
                      probability=None, text=None, tokens=None) -> None:
    """One test example as a person sees it, with its true and predicted class, then its first ``max_maps``
    feature maps after each block (one-dimensional maps, of texts and signals, as rows of one picture)."""
    g = np.asarray(grid, dtype=np.float32)
    model.eval()
    stages = model.feature_maps(_device_tensor(model, g[None]))
    kind = kind_of(g.shape, modality)
    rows = 1 + len(stages)
    fig = figure(0, 0, figsize=(1.45 * max_maps, 2.6 + 1.55 * len(stages)))[0]
    spec = GridSpec(rows, max_maps, figure=fig, height_ratios=[1.6] + [1] * len(stages))
    if kind == "text":
        fig.set_size_inches(1.45 * max_maps, 1.6 + 1.55 * len(stages))
    wide = kind in ("audio", "sequence", "text")
    ax = fig.add_subplot(spec[0, : (max_maps if kind in ("text", "sequence") else 5 if wide else 3)])
    show_example(ax, g, kind, text=text, tokens=tokens, weights=None if tokens is None else [0.0] * len(tokens))
    about = "test example" + ("" if true is None else f": true {true}") + (
        "" if predicted is None else f", predicted {predicted}") + (
        "" if probability is None else f" (p={probability:.2f})")
    colour = "black" if true is None or predicted is None else example_title(true, predicted)[1]
    ax.set_title(about, fontsize=10, loc="left", color=colour)
    for r, (name, maps) in enumerate(stages, start=1):
        maps = maps[0].detach().cpu().float().numpy()
        c, h, w = maps.shape
        title = f"{name}: {c} map{'s' if c > 1 else ''} of {h}x{w}"
        if kind == "text" and c == 1:  # the token vectors a table gives: tokens across, dimensions up
            ax = fig.add_subplot(spec[r, :])
            ax.imshow(maps[0].T, cmap="viridis", aspect="auto", interpolation="nearest", origin="lower")
            ax.set_yticks([])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("token position", fontsize=7)
            ax.set_title(f"{name}: each token's {w} numbers, one column per token", fontsize=8, loc="left")
            continue
        if h == 1 or w == 1:  # one position axis: channels as rows, positions across
            ax = fig.add_subplot(spec[r, :])
            ax.imshow(maps[:STACKED].reshape(min(c, STACKED), -1), cmap="viridis", aspect="auto",
                      interpolation="nearest")
            ax.set_yticks([])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("token position" if kind == "text" else "position", fontsize=7)
            ax.set_title(title + (f" (rows: the first {STACKED})" if c > STACKED else " (one per row)"), fontsize=8,
                         loc="left")
            continue
        for j in range(max_maps):
            ax = fig.add_subplot(spec[r, j])
            ax.axis("off")
            if j < c:
                m = maps[j].T if kind == "audio" else maps[j]
                ax.imshow(m, cmap="viridis", aspect="auto", origin="lower" if kind == "audio" else "upper")
            if j == 0:
                ax.set_title(title + (f" (the first {max_maps})" if c > max_maps else ""), fontsize=8, loc="left")
    save(fig, path)


def plot_explain(model, grids, path, *, modality: str, classes, y_true, texts=None, tokens=None) -> None:
    """Where the network looked in each of a few test examples, for the class it predicted: Grad-CAM over the
    example (red: most evidence), or each token's weight for texts (green for the class, red against)."""
    grids = np.asarray(grids, dtype=np.float32)
    explained = grad_cam(model, grids)
    kind = kind_of(grids.shape[1:], modality)
    n = len(grids)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = figure(rows, cols, figsize=(3.8 * cols, (2.4 if kind == "text" else 3.4) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.axis("on")
        t = int(explained.targets[i])
        heat = explained.heatmaps[i] if kind != "text" else None
        if kind == "sequence":
            heat = heat[0] if heat is not None else None
        show_example(ax, grids[i], kind, heat=heat, text=None if texts is None else texts[i],
                     tokens=None if tokens is None else tokens[i],
                     weights=None if tokens is None else explained.row_weights[i, :len(tokens[i])])
        title, colour = example_title(y_true[i], classes[t], float(explained.probabilities[i, t]))
        ax.set_title(title, fontsize=9, color=colour)
    method = "each token's weight (gradient x input)" if kind == "text" else f"Grad-CAM on {', '.join(explained.layers)}"
    fig.suptitle(f"where the network looked, for the class it predicted: {method}", fontsize=10)
    save(fig, path)
