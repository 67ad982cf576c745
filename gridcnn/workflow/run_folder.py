"""Claiming a run folder: every rank agrees on it, a finished run is never overwritten, one fit writes it at a time.

Rank 0 (the only process outside torchrun) creates the folder, refuses one that holds a run unless asked to resume
or overwrite it, and takes its lock: a ``.lock`` file naming the writing process. The other ranks wait for rank 0's
answer (a broadcast, which is also the barrier), so none of them looks in the folder before it exists, and all of
them use rank 0's folder even when its name comes from a clock.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

from gridcnn.training.distributed import OtherRankFailed, broadcast_object, is_main
from gridcnn.exceptions import GridCNNError

LOCK = ".lock"
PICTURES = ("training_curves.png", "confusion_matrix.png", "errors.png", "filters.png", "feature_maps.png")
# What a run leaves in its folder: the recipe is written first, so a folder with any of these holds a run.
RUN_FILES = ("recipe.toml", "model", "checkpoint.safetensors", "metrics.json", "history.csv", *PICTURES)
MODEL_FILES = ("config.json", "model.safetensors")  # what gridcnn writes in model/ (with .tmp while saving)


class RunFolder:
    """A claimed run folder: ``path``, and (on rank 0) the lock, released by `release` or at the end of a ``with``."""

    def __init__(self, path: Path, lock: Path | None):
        self.path, self._lock = Path(path), lock

    def release(self) -> None:
        """Remove the lock (once); a fit that ends, fails or is interrupted leaves the folder to the next one."""
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def holds_run(path: Path) -> bool:
    """True when ``path`` holds what a fit wrote (its recipe, model, checkpoint, metrics or history)."""
    return bool(_inspect(path)[0])


def _inspect(out: Path) -> tuple[list[str], list[Path], list[tuple[str, str]]]:
    """(the run files that prove ``out`` holds a run, every path a fit of it wrote, the files of a run's names that
    gridcnn did not write, each with why). Each name is checked by its content, not its name alone: a user's
    model/ folder or history.csv is not a run, and --overwrite must never delete it."""
    evidence, written, foreign = [], [], []
    for name in RUN_FILES:
        target = out / name
        if not (target.exists() or target.is_symlink()):
            continue
        if name == "model":
            if not target.is_dir() or target.is_symlink():
                foreign.append((name, "it is not a model folder"))
            elif (target / "config.json").is_file() and _json_format(target / "config.json") == "gridcnn-model":
                evidence.append(name)
                # Only gridcnn's files in model/: anything else a user put there stays.
                written += [target / n for m in MODEL_FILES for n in (m, m + ".tmp") if (target / n).is_file()]
            elif any(target.iterdir()):
                foreign.append((name, "it holds no gridcnn model (no config.json of format gridcnn-model)"))
            continue
        why = _not_written_by_gridcnn(target)
        if why:
            foreign.append((name, why))
            continue
        if name not in PICTURES:
            evidence.append(name)
        written.append(target)
    if evidence:  # a run's leftovers: partial files, and the export of its model (stale once the run is replaced)
        written += [p for p in (out / "checkpoint.safetensors.tmp", out / "metrics.json.tmp", out / "history.csv.tmp")
                    if p.is_file()]
        written += _exports(out)
    return evidence, written, foreign


def _exports(out: Path) -> list[Path]:
    """The files ``gridcnn export`` wrote into the run folder (model.onnx, its sidecar model.json and what the
    sidecar names), found by the sidecar's format."""
    sidecar = out / "model.json"
    if _json_format(sidecar) != "gridcnn-onnx":
        return []
    files = json.loads(sidecar.read_text()).get("files", [])
    return [p for p in (sidecar, out / "model.onnx", *(out / str(f) for f in files if "/" not in str(f))) if p.is_file()]


def _json_format(path: Path):
    """The "format" a gridcnn JSON file names, or None for anything else (not JSON, not an object, unreadable)."""
    try:
        if not path.is_file() or path.stat().st_size > 64 << 20:
            return None
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("format") if isinstance(doc, dict) else None


def _not_written_by_gridcnn(path: Path) -> str | None:
    """Why the file ``path`` (named as a run file) is not one a fit wrote; None when it is."""
    if not path.is_file() or path.is_symlink():
        return "it is not a plain file"
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    name = path.name
    if name.endswith(".png"):
        return None if head.startswith(b"\x89PNG\r\n\x1a\n") else "it is not a PNG picture"
    if name == "history.csv":
        return None if head.startswith(b"epoch,") else "it is not a training history (no epoch column first)"
    if name == "checkpoint.safetensors":  # safetensors: 8 bytes of header length, the JSON header, the tensors
        size = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        if 0 < size <= 100 << 20 and size + 8 > len(head):
            with open(path, "rb") as f:
                head = f.read(size + 8)
        return None if 0 < size and b'"gridcnn"' in head[8 : 8 + size] else "it is not a gridcnn checkpoint"
    if name == "metrics.json":
        try:
            doc = json.loads(path.read_text()) if path.stat().st_size < 64 << 20 else None
        except (OSError, ValueError):
            doc = None
        return None if isinstance(doc, dict) and "accuracy" in doc else "it is not a run's metrics (no accuracy in it)"
    if name == "recipe.toml":
        import tomllib

        try:
            doc = tomllib.loads(head.decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            doc = None
        return None if isinstance(doc, dict) and isinstance(doc.get("data"), dict) else (
            "it is not a gridcnn recipe (no [data] section)")
    return None


def claim_run_dir(out, *, resume: bool = False, overwrite: bool = False, lock: bool = True, device=None) -> RunFolder:
    """Create (or reopen, with ``resume``) the run folder ``out`` on rank 0 and lock it; every rank gets its path.

    Refuses a folder that holds a run unless ``resume`` or ``overwrite`` (which deletes the run's files, nothing
    else), and a folder another live process is writing. A lock left by a process that no longer runs is taken over
    with a warning. Collective under torchrun: every rank must call it (``device`` picks the process group's backend).
    """
    outcome = None
    if is_main():
        try:
            outcome = (str(_claim(Path(out), resume, overwrite, lock)), None)
        except GridCNNError as exc:
            outcome = (None, str(exc))
        except BaseException:
            broadcast_object((None, "rank 0 stopped while opening the run folder"), device)
            raise
    path, error = broadcast_object(outcome, device)
    if error is not None:
        raise GridCNNError(error) if is_main() else OtherRankFailed(error)
    return RunFolder(Path(path), Path(path) / LOCK if is_main() and lock else None)


def _claim(out: Path, resume: bool, overwrite: bool, lock: bool) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GridCNNError(
            f"Cannot write the run folder {out}: {exc.strerror or exc}. Choose another folder with --out."
        ) from None
    if lock:
        _lock(out)
    try:
        evidence, written, foreign = _inspect(out)
        if foreign and not resume:  # a resumed run's damaged files are the run's own: the fit says what is wrong  # a user's file where the fit would write its own: never replaced, never deleted
            name, why = foreign[0]
            raise GridCNNError(
                f"{out} holds {name}{'/' if (out / name).is_dir() else ''}, which gridcnn did not write: {why}. A fit "
                f"writes its own {name} there, so it leaves this folder alone (--overwrite deletes only a run's own "
                f"files): choose another --out, or move {out / name} away first."
            )
        if resume and _exports(out):
            # The resumed fit replaces the model; an ONNX export of the old one would go on answering beside it.
            stale = _exports(out)
            for path in stale:
                path.unlink()
            warnings.warn(f"Removed {', '.join(p.name for p in stale)} from {out}: exported from the model before "
                          f"this resume, they would no longer match it. Export again once the fit ends: gridcnn export "
                          f"{out}")
        if not resume and evidence == ["recipe.toml"]:
            # A fit that failed before its first epoch ended (a data mistake, say) left its recipe and nothing
            # trained: not a run to protect, or the corrected retry with the same --out would be refused.
            _remove_run(out, written)
        elif not resume and evidence:
            if not overwrite:
                raise GridCNNError(
                    f"{out} already holds a run (its {evidence[0]}). Go on with it with: gridcnn fit --resume {out}; "
                    "or choose a new --out; or pass --overwrite to replace it."
                )
            _remove_run(out, written)
        if not lock:  # the lock file proves the folder writable; without it, write a probe
            probe = out / ".write-test"
            _write(probe, "")
            probe.unlink()
    except BaseException:
        if lock:
            (out / LOCK).unlink(missing_ok=True)
        raise
    return out


def _remove_run(out: Path, written: list[Path]) -> None:
    """Delete the files a run wrote (as `_inspect` found them), then model/ if nothing else is left in it."""
    for target in written:
        target.unlink(missing_ok=True)
    model = out / "model"
    if model.is_dir() and not model.is_symlink() and not any(model.iterdir()):
        model.rmdir()


def _write(path: Path, text: str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> None:
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise
    except OSError as exc:
        raise GridCNNError(
            f"Cannot write the run folder {path.parent}: {exc.strerror or exc}. Choose another folder with --out."
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _lock(out: Path) -> None:
    """Create ``out/.lock`` atomically (O_EXCL) with this process's id; take over a dead process's lock."""
    lock = out / LOCK
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _ in range(2):
        try:
            _write(lock, owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            return
        except FileExistsError:
            pass
        holder = _read_lock(lock)
        if holder is None:  # removed between our attempt and the read: try again
            continue
        pid, host = holder
        if host == socket.gethostname() and pid is not None and not _alive(pid):
            warnings.warn(
                f"{lock} was left by process {pid}, which no longer runs (it was killed or crashed); taking it over.",
                RuntimeWarning, stacklevel=2,
            )
            lock.unlink(missing_ok=True)
            continue
        where = f"process {pid}" + ("" if host == socket.gethostname() else f" on {host}")
        raise GridCNNError(
            f"{out} is being written by {where} (its lock file {lock} says so). Wait for that fit to end, or choose "
            f"another --out; if that process is not running any more, delete {lock}."
        )
    raise GridCNNError(f"Cannot lock the run folder {out}: another process keeps taking its lock. Try again.")


def _read_lock(lock: Path):
    try:
        holder = json.loads(lock.read_text())
        return int(holder["pid"]), str(holder["host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return -1, socket.gethostname()  # unreadable (a crash while writing it): nobody holds it


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
