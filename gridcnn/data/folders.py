"""Class-per-folder directories (``root/<label>/<file>``), as Keras' ``image_dataset_from_directory`` reads them."""

from __future__ import annotations

import os
from collections import Counter

from gridcnn.exceptions import GridCNNError

_LAYOUT = "one subfolder per class, such as {root}/<class>/<file>"


def list_class_folder(path, extensions, what: str | None = None) -> tuple[list[str], list[str]]:
    """List the files of a class-per-folder directory and their labels (the subfolder names).

    Files are found at any depth inside each class subfolder. Names starting with "." (such as
    ``.ipynb_checkpoints``) are ignored, extensions match case-insensitively, and class folders holding no
    matching file are left out. The order is sorted by label, then by path, so it is the same on every machine.

    Parameters
    ----------
    path : str or PathLike
        The root folder.
    extensions : iterable of str
        File name endings to keep, with or without the dot (".png", "jpg").
    what : str, default=None
        What the files are, in words ("image files"), for the message when there are none; by default the endings.

    Returns
    -------
    paths : list of str
        File paths, each starting with ``path``.
    labels : list of str
        The class subfolder name of each file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat/a.png", "cat/b.PNG", "dog/c.png", "dog/notes.txt"):
    ...     (root / name).parent.mkdir(exist_ok=True); (root / name).touch()
    >>> paths, labels = list_class_folder(root, [".png"])
    >>> labels
    ['cat', 'cat', 'dog']
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        what = "is a file, not a folder" if os.path.exists(root) else "does not exist"
        raise GridCNNError(f"{root!r} {what}. Expected a folder with {_LAYOUT.format(root=root)}.")
    ends = tuple(sorted({("." + e.lstrip(".")).lower() for e in extensions}))
    entries = sorted(e for e in os.listdir(root) if not e.startswith("."))
    classes = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    if not classes:
        loose = len(entries)
        raise GridCNNError(
            f"{root!r} has no class subfolders ({loose} file{'s' * (loose != 1)} directly inside). Expected "
            f"{_LAYOUT.format(root=root)}. Move the files into one subfolder per class."
        )
    paths, labels, others = [], [], Counter()
    for label in classes:
        found = []
        for folder, dirs, files in os.walk(os.path.join(root, label), followlinks=False):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                if name.lower().endswith(ends):
                    found.append(_existing(os.path.join(folder, name)))
                else:
                    others[os.path.splitext(name)[1].lower() or "(no extension)"] += 1
        paths += sorted(found)
        labels += [label] * len(found)
    if not paths:
        seen = ", ".join(f"{ext} ({n})" for ext, n in others.most_common(5)) or "no files at all"
        listed = f"{', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}"
        if what:
            raise GridCNNError(f"{root} holds no {what} in its class subfolders ({listed}). Found: {seen}. Expected "
                               f"{_LAYOUT.format(root=root)}.")
        raise GridCNNError(
            f"No file ending in {', '.join(ends)} inside the class subfolders of {root!r} ({listed}). Found: {seen}. "
            "Pass the extensions your files have."
        )
    return paths, labels


def _existing(path: str) -> str:
    """``path``, refused when it is a symbolic link whose target is gone (reading it later would fail far from here)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise GridCNNError(
            f"{path!r} is a symbolic link to {os.readlink(path)!r}, which does not exist. Restore the file it points "
            "to, or remove the link."
        )
    return path
