"""The decoded-grid cache: every file decoded once into one memory-mapped ``.npy``, read by later epochs and runs.

A cache file is named by two digests: of the list of paths (so a rebuilt cache replaces the stale one for the same
files) and of everything its grids depend on: the gridcnn version, the adapter's class, parameters and fitted
state, and each file's path, size and modification time. A changed file, other parameters or another version give
another name, so a stale cache is never read: it is rebuilt, and the stale one deleted. A JSON sidecar repeats the
key and lists the files left out (``on_error="skip"``). Both are written to temporary files and renamed into
place, the ``.npy`` first: a crash mid-build leaves no cache that looks whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from gridcnn.exceptions import GridCNNError
from gridcnn.modelfile.codec import jsonable, versions

_TRANSIENT = ("skipped_", "kept_")  # what the adapter's last call left out, not part of its fitted state


def default_folder() -> Path:
    """``<gridcnn cache>/streams`` (``$GRIDCNN_CACHE``, else ``~/.cache/gridcnn``)."""
    from gridcnn.data import cache_dir

    return cache_dir() / "streams"


def cache_key(paths, adapter) -> tuple[str, str, dict]:
    """(digest of the path list, digest of everything the grids depend on, that everything as a dict)."""
    listing = [os.path.abspath(p) for p in paths]
    files = []
    for p in listing:
        try:
            st = os.stat(p)
            files.append([st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([-1, -1])  # decoding will name it (or skip it); a later copy of it changes the key
    params = {k: v for k, v in adapter.get_params(deep=False).items() if k != "device"}  # decoded on the CPU always
    fitted = {k: v for k, v in vars(adapter).items() if k.endswith("_") and not k.startswith("_") and k not in _TRANSIENT}
    key = {"gridcnn": versions()["gridcnn"], "adapter": type(adapter).__name__, "params": jsonable(params),
           "fitted": jsonable(fitted)}
    names = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    everything = hashlib.sha256(json.dumps([key, listing, files]).encode()).hexdigest()
    return names, everything, key


def locate(folder, paths, adapter) -> tuple[Path, str, dict]:
    """The cache file for these files and this adapter, its full digest and its key (nothing is read or written)."""
    names, everything, key = cache_key(paths, adapter)
    folder = Path(folder) if folder is not None else default_folder()
    return folder / f"grids-{names[:16]}-{everything[:16]}.npy", everything, key


def open_cache(path: Path, digest: str, shape: tuple):
    """The cached grids (a read-only memmap) and skipped list, or None when the cache is missing or stale."""
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
        grids = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if meta.get("digest") != digest or grids.dtype != np.float32 or tuple(grids.shape) != tuple(shape):
        return None
    return grids, meta.get("skipped", [])


def create(path: Path, shape: tuple, tmp: Path) -> None:
    """Create the temporary .npy the build writes into (sparse: no page is written before its rows are)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape).flush()
    except OSError as exc:
        raise GridCNNError(
            f"Cannot write the grid cache {tmp}: {exc.strerror or exc}. Choose another folder with cache='folder' "
            "(or set GRIDCNN_CACHE), or pass cache=False to decode every epoch."
        ) from None


def fill(tmp: Path, rows, decode, on_error: str, progress=None) -> list[dict]:
    """Decode ``rows`` (batches of indices) with ``decode`` and write them into the temporary .npy ``tmp``.

    Returns the files left out (``on_error="skip"``); with ``on_error="raise"`` the first bad file raises.
    """
    out = np.load(tmp, mmap_mode="r+")
    skipped = []
    for batch, (kept, grids, failures) in zip(rows, decode(rows)):
        batch = np.asarray(batch)
        if failures:
            if on_error == "raise":
                raise GridCNNError(failures[0].message)
            skipped += [{"index": f.index, "path": f.path, "reason": f.message} for f in failures]
        if grids is not None:
            out[batch[kept.numpy()]] = grids.numpy()
        if progress is not None:
            progress(len(batch))
    out.flush()
    del out
    return skipped


def publish(path: Path, tmp: Path, digest: str, key: dict, skipped: list) -> None:
    """Move a finished build into place (.npy, then its sidecar) and delete stale caches of the same files."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    side_tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    side_tmp.write_text(json.dumps({"digest": digest, "key": key, "shape": list(np.load(path, mmap_mode="r").shape),
                                    "skipped": skipped}))
    os.replace(side_tmp, path.with_suffix(".json"))
    prefix = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(prefix + "-*"):
        if old.stem != path.stem and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)


def warn_skipped(skipped: list, total: int) -> None:
    """One warning naming the files left out (the first few in full)."""
    if not skipped:
        return
    shown = "; ".join(f"{s['path']} ({s['reason']})" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    warnings.warn(f"Skipped {len(skipped)} of {total} files that could not be decoded (on_error='skip'): "
                  f"{shown}{more}.", UserWarning, stacklevel=4)
