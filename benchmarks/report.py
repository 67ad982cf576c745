"""Results of `benchmarks.run` as markdown tables, an accuracy chart, and the sections of RESULTS.md they fill."""

from __future__ import annotations

from importlib import metadata

import numpy as np

from benchmarks.baselines import BASELINES
from benchmarks.common import machine_info, machine_line
from benchmarks.speed import TRAINERS, skorch_version

MODELS = {"gridcnn": "GridCNNClassifier", **BASELINES, "tfidf_logreg": "TF-IDF + LogisticRegression"}
#: RESULTS.md's topics that a run fills, each between its own markers (`markers`), in the order of results.md.
TOPICS = ("accuracy", "speed", "suitability")


def markers(topic: str) -> tuple[str, str]:
    return f"<!-- run.py:{topic}:begin -->", f"<!-- run.py:{topic}:end -->"


def run_machine() -> dict:
    """The machine, plus the versions of what the run's numbers depend on (scikit-learn, skorch, librosa...)."""
    from gridcnn.modelfile.codec import versions

    return machine_info(**versions(), skorch=skorch_version() or "not installed",
                        librosa=metadata.version("librosa"))


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


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


OTHER_LOGMEL = {"previous": "`SpectrogramGrid` before its chunked rewrite (one `torch.stft` per batch)",
                "nnaudio": "nnAudio `MelSpectrogram` (conv1d STFT)"}


def sections(results: dict, chart: str = "accuracy.png") -> dict:
    """topic -> its markdown for ``results`` (the dict `benchmarks.run` writes as results.json), one per `TOPICS`
    entry that the run measured; each names the command, the profile and the machine."""
    m = results["machine"]
    head = [f"Machine: {machine_line(m)}. Whole run {results['wall_s'] / 60:.1f} min; load average "
            f"{results['load_average_end']:.1f} at the end.", "", f"{results['profile_note']}", ""]
    title = f"(`python -m benchmarks.run{results['command']}`, profile: {results['profile']}, {m['date']})"

    acc = [f"### Side by side: every recipe against scikit-learn {title}", "", *head,
           "#### Test accuracy, same split and grids for every model", "",
           "The baselines see the CNN's grids flattened to rows; a cell names its training rows when a model was "
           "trained on a seeded subset (SVC and HistGradientBoosting do not scale to every row on 2 cores). "
           "Published numbers come from their papers' own protocols (Kim 2014: 10-fold cross-validation on all of "
           "MR).", ""]
    acc += _table(results, lambda r: pct(r["accuracy"]), references=True)
    notes = sorted({f"{ds['label']}: {reason}" for ds in results["datasets"].values()
                    for reason in ds.get("skipped", {}).values()})
    acc += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    acc += [f"![test accuracy per model and data set]({chart})", "", "#### Fit times (seconds, training only)", ""]
    acc += _table(results, lambda r: f"{r['fit_s']:.1f}", references=False)
    acc += ["", "GridCNNClassifier epochs: " + ", ".join(
        f"{ds['label']} {ds['models']['gridcnn']['epochs']}" for ds in results["datasets"].values()) + "."]

    speed = [f"### Side by side: three trainers, and log-mel against librosa {title}", "", *head]
    if results["speed"]:
        repeats = next(iter(results["speed"].values()))["repeats"]
        speed += ["#### Training speed: one module, one data set, three trainers", "",
                  "Same `BackboneSpec.build` module, batch 128, AdamW lr 1e-3, constant rate, shuffled batches, no "
                  "validation; skorch with the settings of its Performance page (`verbose=0`, "
                  "`callbacks=\"disable\"`, `train_split=None`, a `TensorDataset`). Median of "
                  f"{repeats} interleaved fits each. The test accuracy only checks that each one learned: "
                  "GridCNNClassifier draws its torch seed from `random_state`, so its initial weights differ, and "
                  "after so few epochs a few points either way are noise.", ""]
        speed += speed_table(results["speed"]) + [""]
    lm = results["logmel"]
    ref, cpu = lm["librosa_s"], lm["adapter_s"]["cpu"]
    speed += ["#### Log-mel spectrograms (64 bands, n_fft 512, hop 160)", "",
              f"| {lm['clips']:,} one-second clips, 16 kHz | time | clips/s |", "|---|---|---|",
              f"| per-clip `librosa.feature.melspectrogram` loop | {ref:.2f} s | {lm['clips'] / ref:.0f} |",
              f"| `SpectrogramGrid` (chunked torch on a thread pool, CPU) | {cpu:.2f} s | {lm['clips'] / cpu:.0f} |",
              *[f"| {OTHER_LOGMEL[k]} | {t:.2f} s | {lm['clips'] / t:.0f} |"
                for k, t in lm.get("others_s", {}).items()],
              f"| ratio librosa / SpectrogramGrid (goal >= 10x) | **{ref / cpu:.1f}x** | |", "",
              f"Largest difference from librosa: {lm['max_db_diff']['cpu']:.2g} dB. Median of {lm.get('repeats', 1)} "
              "interleaved rounds."]

    suit = [f"### Side by side: the suitability check on MNIST's test digits {title}", "", *head,
            "| call | median time (goal <= 5 s) | suitable |", "|---|---|---|"]
    suit += [f"| `{r['call']}` | {np.median(r['seconds']):.2f} s | {r['suitable']} |" for r in results["suitability"]]
    return {"accuracy": "\n".join(acc) + "\n", "speed": "\n".join(speed) + "\n",
            "suitability": "\n".join(suit) + "\n"}


def markdown(results: dict, chart: str = "accuracy.png") -> str:
    """results.md: every section of ``results``, one after the other."""
    return "\n".join(sections(results, chart).values())


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


def fill_sections(text: str, parts: dict) -> str:
    """``text`` with each topic's part between that topic's markers replaced (appended at the end where ``text`` has
    no markers for it yet); everything outside the markers is kept as written."""
    for topic, part in parts.items():
        begin, end = markers(topic)
        block = f"{begin}\n{part.strip()}\n{end}"
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    return text
