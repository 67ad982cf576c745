"""What `gridcnn predict` feeds a model: file and folder arguments expanded into the inputs its adapter reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ._pipeline import split_pipeline
from .exceptions import GridCNNError


def gather_inputs(model, inputs: list[str]):
    """Return ``(names, X)``: one name per input row and X in the form the model's first step expects.

    Sound and image models take file paths (folders are searched recursively); text models take each argument
    as a text, or each line of a .txt file; models without an adapter take grids from .npy files.
    """
    adapters, est = split_pipeline(model)
    adapter = adapters[0].registry_name if adapters else None
    if adapter == "embedding":
        names, texts = [], []
        for item in inputs:
            p = Path(item)
            if p.suffix == ".txt" and p.is_file():
                lines = [l for l in p.read_text().splitlines() if l.strip()]
                names += [f"{p}:{i + 1}" for i in range(len(lines))]
                texts += lines
            else:
                names.append(item)
                texts.append(item)
        return names, texts
    if adapter in ("image", "spectrogram"):
        from .adapters.image import IMAGE_EXTENSIONS
        from ._audio_io import AUDIO_EXTENSIONS

        exts = IMAGE_EXTENSIONS if adapter == "image" else AUDIO_EXTENSIONS
        files = []
        for item in inputs:
            p = Path(item)
            if p.is_dir():
                found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in exts and f.is_file())
                if not found:
                    raise GridCNNError(f"Folder {p} holds no file ending in {', '.join(exts)}.")
                files += found
            elif p.is_file():
                files.append(str(p))
            else:
                raise GridCNNError(f"Input {item!r} does not exist. Give files or folders of {adapter} inputs.")
        return files, files
    names, arrays = [], []
    for item in inputs:
        p = Path(item)
        if p.suffix != ".npy" or not p.is_file():
            raise GridCNNError(f"Input {item!r}: this model takes grids from .npy files (one grid or a stack of them).")
        a = np.load(p, allow_pickle=False)
        single = a.shape == tuple(est.input_shape_) or a.ndim == len(est.input_shape_) - 1
        a = a[None] if single else a
        names += [str(p)] if single else [f"{p}[{i}]" for i in range(len(a))]
        arrays.append(a)
    return names, np.concatenate(arrays)
