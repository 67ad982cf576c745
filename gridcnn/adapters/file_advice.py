"""A person's file that a model cannot use, explained to that person: ``gridcnn serve``'s uploads and ``gridcnn
predict``'s files.

The adapters' own messages speak to a Python caller (``X[0]``, ``on_error='skip'``, ``scale=255``,
``np.nan_to_num``); someone who sent or named a file needs to hear what is wrong with the file and what file to give
instead. Both the server and the command line word it here, so they say the same thing; only the verb differs
("Send" an upload, "Save" a file for the command line).
"""

from __future__ import annotations

import numpy as np

from gridcnn.exceptions import GridCNNError

#: What to give instead, after the verb, per `GridAdapter.upload_kind`.
_INSTEAD = {
    "image": "it as an 8-bit PNG or JPEG (or a 16-bit PNG), or a floating-point TIFF with values in [0, 1].",
    "sound": "a clip with samples in [-1, 1], as WAV, FLAC, OGG or MP3.",
}


def grid_for_person(adapter, name: str, item, verb: str = "Send") -> np.ndarray:
    """The grids ``(1, C, H, W)`` of one decoded file (what ``adapter.read_upload`` returns), or a `GridCNNError`
    that names the file, says what is wrong with it and what to ``verb`` instead."""
    kind = adapter.upload_kind
    advice = f" {verb} {_INSTEAD.get(kind, 'another file.')}"
    values = np.asarray(item)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        part = "pixels" if kind == "image" else "samples"
        raise GridCNNError(f"File {name!r} cannot be used: some of its {part} are NaN or infinite." + advice)
    try:
        return adapter.transform([item])
    except GridCNNError:
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if kind == "image" and values.dtype.kind == "f":
            why = f"it is a floating-point image with pixel values from {lo:g} to {hi:g}, outside [0, 1]."
        elif kind == "image" and values.dtype.kind in "iu":
            why = f"it is a {values.dtype.itemsize * 8}-bit image with pixel values from {lo:g} to {hi:g}."
        elif kind != "image" and max(abs(lo), abs(hi)) > 1:
            why = f"its samples reach {max(abs(lo), abs(hi)):.3g}, far outside [-1, 1], too loud to analyse."
        else:
            why = f"this model cannot turn it into its input ({values.dtype} {kind} data)."
        raise GridCNNError(f"File {name!r} cannot be used: {why}" + advice) from None


def explain_file(adapter, path: str, verb: str = "Save"):
    """The person's message for the file at ``path`` that the adapter refused, or None when its own decoding for
    uploads reads the file and the adapter then takes it (the refusal was about something else)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        grid_for_person(adapter, path, adapter.read_upload(path, data), verb)
    except GridCNNError as exc:
        return str(exc)
    return None
