"""Claiming a run folder: every rank agrees on it, a finished run is never overwritten, one fit writes it at a time.

Rank 0 (the only process outside torchrun) creates the folder, refuses one that holds a run unless asked to resume
or overwrite it, and takes its lock: a ``.lock`` file naming the writing process. The other ranks wait for rank 0's
answer (a broadcast, which is also the barrier), so none of them looks in the folder before it exists, and all of
them use rank 0's folder even when its name comes from a clock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import warnings
from pathlib import Path

from gridcnn.training.distributed import OtherRankFailed, broadcast_object, is_main
from gridcnn.exceptions import GridCNNError

LOCK = ".lock"
# What a run leaves in its folder: the recipe is written first, so a folder with any of these holds a run.
RUN_FILES = ("recipe.toml", "model", "checkpoint.safetensors", "checkpoint.safetensors.tmp", "metrics.json",
             "history.csv", "training_curves.png", "confusion_matrix.png", "filters.png", "feature_maps.png")


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
    """True when ``path`` holds what a fit wrote (its recipe, model, checkpoint or metrics)."""
    return any((path / name).exists() for name in RUN_FILES)


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
        if not resume and holds_run(out):
            if not overwrite:
                raise GridCNNError(
                    f"{out} already holds a run (its {next(n for n in RUN_FILES if (out / n).exists())}). Go on "
                    f"with it with: gridcnn fit --resume {out}; or choose a new --out; or pass --overwrite to "
                    "replace it."
                )
            _remove_run(out)
        if not lock:  # the lock file proves the folder writable; without it, write a probe
            probe = out / ".write-test"
            _write(probe, "")
            probe.unlink()
    except BaseException:
        if lock:
            (out / LOCK).unlink(missing_ok=True)
        raise
    return out


def _remove_run(out: Path) -> None:
    for name in RUN_FILES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


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
