"""What every run-folder picture shares: a figure that leaves pyplot alone, fonts that draw the class names, and one
way to draw an example as a person sees it (a photo in colour, a spectrogram with time across, a signal as a curve,
a text as text), with a Grad-CAM heatmap or token weights laid over it when there are some."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

HEAT_CMAP = "jet"  # the colours Grad-CAM pictures use: blue where little speaks for the class, red where most does
RIGHT, WRONG = "#1a7f37", "#c62828"  # titles of examples the model got right and wrong


def figure(rows=1, cols=1, figsize=None, squeeze=True):
    """A Figure drawn by the Agg canvas, not pyplot: files only, and the caller's backend and figures stay as they
    were (pyplot's global state is never touched)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, (fig.subplots(rows, cols, squeeze=squeeze) if rows and cols else None)


def save(fig, path, tight=True):
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)


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


def kind_of(grid_shape, modality: str) -> str:
    """How a grid is drawn: "text", "audio" (time across), "sequence" (curves) or "image"."""
    if modality == "text":
        return "text"
    if modality == "sequence" or grid_shape[1] == 1:
        return "sequence"
    return "audio" if modality == "audio" else "image"


def show_example(ax, grid, kind: str, *, text=None, heat=None, tokens=None, weights=None) -> None:
    """Draw one example on ``ax`` as a person sees it, with ``heat`` (a Grad-CAM map over the grid, 0 to 1) or
    ``tokens`` and their ``weights`` (-1 to 1) over it."""
    g = np.asarray(grid, dtype=np.float32)
    ax.set_xticks([])
    ax.set_yticks([])
    if kind == "text":
        for side in ax.spines.values():
            side.set_visible(False)
        if tokens is not None and weights is not None:
            show_tokens(ax, tokens, weights)
        else:
            ax.text(0, 1, "\n".join(textwrap.wrap(str(text or ""), 38)[:9]), va="top", ha="left", fontsize=8,
                    transform=ax.transAxes)
        return
    if kind == "sequence":
        for c in range(g.shape[0]):
            ax.plot(g[c, 0], lw=1)
        ax.set_xlim(0, g.shape[-1] - 1)
        if heat is not None:  # a band under the curve, as wide as the signal
            lo, hi = ax.get_ylim()
            ax.imshow(heat_rgba(np.asarray(heat).reshape(1, -1), strength=0.6), aspect="auto", zorder=0,
                      extent=(0, g.shape[-1] - 1, lo, hi), interpolation="bilinear")
        ax.set_xlabel("step", fontsize=7)
        return
    if kind == "audio":  # grid rows are time frames: transposed, time runs across and low bands sit at the bottom
        ax.imshow(g[0].T, origin="lower", aspect="auto", cmap="magma")
        if heat is not None:
            ax.imshow(heat_rgba(np.asarray(heat).T), origin="lower", aspect="auto", interpolation="bilinear")
        ax.set_xlabel("time →", fontsize=7)
        ax.set_ylabel("mel band", fontsize=7)
        return
    img = np.moveaxis(g, 0, -1) if g.shape[0] == 3 else g[0]
    lo, hi = float(img.min()), float(img.max())
    ax.imshow((img - lo) / (hi - lo or 1.0), cmap=None if g.shape[0] == 3 else "gray", vmin=0, vmax=1)
    if heat is not None:
        ax.imshow(heat_rgba(heat), interpolation="bilinear")


def heat_rgba(heat, strength: float = 1.0) -> np.ndarray:
    """A heatmap (0 to 1) as colours whose opacity grows with the value: where nothing speaks for the class the
    example shows through, so the picture stays readable under it."""
    from matplotlib import colormaps

    heat = np.clip(np.asarray(heat, dtype=np.float32), 0, 1)
    rgba = colormaps[HEAT_CMAP](heat)
    rgba[..., 3] = strength * (0.1 + 0.6 * heat)
    return rgba


def show_tokens(ax, tokens, weights, fontsize: float = 8, max_lines: int = 9) -> None:
    """A text's tokens in a monospaced font, each on a background as strong as its weight: green for the class,
    red against it (word pieces "##x" join the word before them)."""
    # Characters per line from the axes' width: DejaVu Sans Mono advances 0.602 em per character.
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    per_line = max(10, int(width_pt / (0.602 * fontsize)) - 1)
    x = line = 0
    for token, w in zip(tokens, weights):
        piece = token.startswith("##")
        token = token[2:] if piece else token
        if x and not piece:
            x += 1
        if x + len(token) > per_line:
            x, line = 0, line + 1
        if line >= max_lines:
            ax.text(0, 1 - line / max_lines, "…", transform=ax.transAxes, fontsize=fontsize, family="DejaVu Sans Mono",
                    va="top")
            break
        colour = (0.10, 0.59, 0.25) if w >= 0 else (0.84, 0.19, 0.15)
        ax.text(x / per_line, 1 - line / max_lines, token, transform=ax.transAxes, fontsize=fontsize, va="top",
                family="DejaVu Sans Mono", color="white" if abs(w) > 0.6 else "black",
                bbox={"facecolor": (*colour, min(1.0, abs(float(w)))), "edgecolor": "none", "pad": 1.0})
        x += len(token)


def example_title(true, predicted, probability=None) -> tuple[str, str]:
    """A title naming the true and predicted class (and the prediction's probability), and its colour."""
    p = "" if probability is None else f" ({probability:.2f})"
    return f"true {true} / pred {predicted}{p}", RIGHT if str(true) == str(predicted) else WRONG
