"""Results of `run.py` as markdown tables, an accuracy chart, and the section of RESULTS.md they fill."""

from __future__ import annotations

import os
from datetime import date
from importlib import metadata

import numpy as np
import torch

from baselines import BASELINES
from speed import TRAINERS, skorch_version
from suitability import cpu_name

MODELS = {"gridcnn": "GridCNNClassifier", **BASELINES, "tfidf_logreg": "TF-IDF + LogisticRegression"}
BEGIN, END = "<!-- run.py:begin -->", "<!-- run.py:end -->"


def machine_info() -> dict:
    """CPU, cores, memory, torch threads, load and the versions the numbers depend on."""
    from gridcnn.workflow.runs import versions

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": _memory_gib(), "gpu": gpu,
            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
            "date": date.today().isoformat()}
    info.update(versions())
    info.update(skorch=skorch_version() or "not installed", librosa=metadata.version("librosa"))
    return info


def _memory_gib() -> float | None:
    try:
        kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        return None
    return round(kib / 2**20, 1)


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def machine_line(m: dict) -> str:
    threads = f"{m['torch_threads']} thread" + ("s" if m["torch_threads"] != 1 else "")
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['gpu']}; torch {m['torch']} on {threads}, "
            f"Python {m['python']}, scikit-learn {m['scikit-learn']}, skorch {m['skorch']}, librosa {m['librosa']}, "
            f"numpy {m['numpy']}; {m['date']}")


def _model_cell(ds: dict, key: str, value) -> str:
    """One table cell; names the training rows when the model saw fewer than the data set has."""
    if key in ds.get("skipped", {}):
        return "not run"
    if key not in ds["models"]:
        return "—"
    r = ds["models"][key]
    rows = f" ({r['n_train']:,} rows)" if r["n_train"] < ds["n_train"] else ""
    return value(r) + rows


def _table(results: dict, value, references: bool) -> list[str]:
    """One row per data set, one column per model that ran anywhere (and the published numbers if asked)."""
    keys = [k for k in MODELS if any(k in ds["models"] for ds in results["datasets"].values())]
    head = ["data set", "train / test", *(MODELS[k] for k in keys)] + (["published"] if references else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for ds in results["datasets"].values():
        cells = [ds["label"], f"{ds['n_train']:,} / {ds['n_test']:,}", *(_model_cell(ds, k, value) for k in keys)]
        if references:
            cells.append(", ".join(f"{label} {pct(acc)}" for label, acc in ds["references"]) or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def speed_table(speed: dict) -> list[str]:
    """The three trainers on each set of grids, with their ratios."""
    names = [TRAINERS[k] for k in ("gridcnn", "skorch", "hand")]
    head = ["grids", "rows x epochs", *(f"{n} (s)" for n in names), "GridCNN / hand (goal <= 1.05)",
            "GridCNN / skorch (goal < 1)", "test accuracy (GridCNN / skorch / hand)"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, s in speed.items():
        t, ratios, acc = s["median_s"], s["ratios"], s["accuracy"]
        skorch = f"{t['skorch']:.2f}" if "skorch" in t else s["skorch"]
        vs_skorch = f"{ratios['gridcnn/skorch']:.3f}" if "gridcnn/skorch" in ratios else "—"
        accs = " / ".join(pct(acc[k]) if k in acc else "—" for k in ("gridcnn", "skorch", "hand"))
        shape = "x".join(str(v) for v in s["grid_shape"])
        lines.append(f"| {label} ({shape}) | {s['n_train']:,} x {s['epochs']} | {t['gridcnn']:.2f} | {skorch} | "
                     f"{t['hand']:.2f} | **{ratios['gridcnn/hand']:.3f}** | {vs_skorch} | {accs} |")
    return lines


OTHER_LOGMEL = {"previous": "`SpectrogramGrid` before issue 17 (one `torch.stft` per batch)",
                "nnaudio": "nnAudio `MelSpectrogram` (conv1d STFT)"}


def markdown(results: dict, chart: str = "accuracy.png") -> str:
    """The RESULTS.md section for ``results`` (the dict `run.py` writes as results.json)."""
    m = results["machine"]
    out = [f"## Side by side (`python benchmarks/run.py{results['command']}`, profile: {results['profile']})", "",
           f"Machine: {machine_line(m)}. Whole run {results['wall_s'] / 60:.1f} min; load average "
           f"{m['load_average']:.1f} at the start and {results['load_average_end']:.1f} at the end.", "",
           f"{results['profile_note']}", "",
           "### Test accuracy, same split and grids for every model", "",
           "The baselines see the CNN's grids flattened to rows; a cell names its training rows when a model was "
           "trained on a seeded subset (SVC and HistGradientBoosting do not scale to every row on 2 cores). "
           "Published numbers come from their papers' own protocols (Kim 2014: 10-fold cross-validation on all of "
           "MR).", ""]
    out += _table(results, lambda r: pct(r["accuracy"]), references=True)
    notes = sorted({f"{ds['label']}: {reason}" for ds in results["datasets"].values()
                    for reason in ds.get("skipped", {}).values()})
    out += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    out += [f"![test accuracy per model and data set]({chart})", "", "### Fit times (seconds, training only)", ""]
    out += _table(results, lambda r: f"{r['fit_s']:.1f}", references=False)
    out += ["", "GridCNNClassifier epochs: " + ", ".join(
        f"{ds['label']} {ds['models']['gridcnn']['epochs']}" for ds in results["datasets"].values()) + "."]
    if results["speed"]:
        repeats = next(iter(results["speed"].values()))["repeats"]
        out += ["", "### Training speed: one module, one data set, three trainers", "",
                "Same `BackboneSpec.build` module, batch 128, AdamW lr 1e-3, constant rate, shuffled batches, no "
                "validation; skorch with the settings of its Performance page (`verbose=0`, `callbacks=\"disable\"`, "
                f"`train_split=None`, a `TensorDataset`). Median of {repeats} interleaved fits each. The test accuracy "
                "only checks that each one learned: GridCNNClassifier draws its torch seed from `random_state`, so its "
                "initial weights differ, and after so few epochs a few points either way are noise.", ""]
        out += speed_table(results["speed"])
    lm = results["logmel"]
    ref, cpu = lm["librosa_s"], lm["adapter_s"]["cpu"]
    out += ["", "### Log-mel spectrograms (64 bands, n_fft 512, hop 160)", "",
            f"| {lm['clips']:,} one-second clips, 16 kHz | time | clips/s |", "|---|---|---|",
            f"| per-clip `librosa.feature.melspectrogram` loop | {ref:.2f} s | {lm['clips'] / ref:.0f} |",
            f"| `SpectrogramGrid` (chunked torch on a thread pool, CPU) | {cpu:.2f} s | {lm['clips'] / cpu:.0f} |",
            *[f"| {OTHER_LOGMEL[k]} | {t:.2f} s | {lm['clips'] / t:.0f} |" for k, t in lm.get("others_s", {}).items()],
            f"| ratio librosa / SpectrogramGrid (goal >= 10x) | **{ref / cpu:.1f}x** | |", "",
            f"Largest difference from librosa: {lm['max_db_diff']['cpu']:.2g} dB. Median of {lm.get('repeats', 1)} "
            "interleaved rounds.", "",
            "### Suitability check (MNIST test digits)", "", "| call | median time (goal <= 5 s) | suitable |",
            "|---|---|---|"]
    out += [f"| `{r['call']}` | {np.median(r['seconds']):.2f} s | {r['suitable']} |" for r in results["suitability"]]
    return "\n".join(out) + "\n"


def plot_accuracy(results: dict, path) -> None:
    """Grouped bars: test accuracy of each model on each data set, published numbers as black ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(results["datasets"].values())
    keys = [k for k in MODELS if any(k in ds["models"] for ds in datasets)]
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(4 + 1.8 * len(datasets), 4.5))
    for i, key in enumerate(keys):
        xs = [j + (i - (len(keys) - 1) / 2) * width for j, ds in enumerate(datasets) if key in ds["models"]]
        ys = [ds["models"][key]["accuracy"] for ds in datasets if key in ds["models"]]
        ax.bar(xs, ys, width, label=MODELS[key])
    label = "published reference"
    for j, ds in enumerate(datasets):
        for _, acc in ds["references"]:
            ax.plot([j - 0.4, j + 0.4], [acc, acc], color="black", lw=1, ls="--", label=label)
            label = None  # one legend entry for all of them
    # The references are named under each data set: close numbers (99.05 and 99.22) would overlap as labels.
    ax.set_xticks(range(len(datasets)), [
        "\n".join([ds["label"], *(f"{name} {pct(acc)}" for name, acc in ds["references"])]) for ds in datasets
    ], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy per model ({results['profile']} profile)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fill_section(text: str, section: str) -> str:
    """``text`` with the part between the run.py markers replaced by ``section`` (appended when there is none)."""
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    if BEGIN in text and END in text:
        return text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    return text.rstrip() + "\n\n" + block + "\n"
