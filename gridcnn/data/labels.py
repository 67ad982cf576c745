"""Where the labels are, and whether they can train a classifier: one rule for every command that reads data.

``gridcnn fit PATH``, a recipe's ``[data] path``, ``gridcnn check`` and ``gridcnn evaluate --data`` all find the
label column (table), label array (.npz) or label file (.npy) with `label_name`, and refuse labels no classifier can
learn from with `check_labels` and `check_split_classes`, before any epoch runs.
"""

from __future__ import annotations

import numpy as np

from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

#: Names (any case) a label column, a label array in an .npz, or a label .npy beside the samples may have when no
#: target is given. Two of them in one file is ambiguous and refused: which one is the label is the user's call.
LABEL_NAMES = ("label", "labels", "target", "targets", "class", "y", "category", "sentiment", "outcome")
TARGET_HINT = "--target NAME on the command line, [data] target in a recipe, target=NAME in Python"


def label_name(source, target, names, what: str) -> str | None:
    """The entry of ``names`` holding the labels: ``target`` when given (it must be there), else the one named like a
    label (`LABEL_NAMES`, any case), else None.

    Parameters
    ----------
    source : str
        The file, for messages.
    target : str or None
        What the user named; matched exactly (a near miss gets "did you mean").
    names : list
        The columns or arrays the file holds.
    what : str
        "column", "array" or "file", for messages.

    Examples
    --------
    >>> label_name("t.csv", None, ["height", "Species", "Label"], "column")
    'Label'
    >>> label_name("t.csv", None, ["height", "width"], "column") is None
    True
    """
    shown = [str(n) for n in names]
    if target is not None:
        if target not in names:
            raise GridCNNError(
                f"{source!s} has no {what} {target!r}.{did_you_mean(target, shown)} Its {what}s: "
                f"{', '.join(shown[:20])}{', ...' if len(shown) > 20 else ''}."
            )
        return target
    found = [n for n in names if str(n).lower() in LABEL_NAMES]
    if len(found) > 1:
        both = " and ".join(repr(str(n)) for n in found[:3])
        raise GridCNNError(
            f"{source!s}: {what}s {both} are all named like labels, so which holds them is ambiguous. Name it "
            f"({TARGET_HINT}), or rename the others."
        )
    return found[0] if found else None


def no_labels(source, what: str, names) -> str:
    """The message for a file with no label entry: what to name, and the entries there are."""
    shown = [str(n) for n in names]
    listed = f"{', '.join(shown[:20])}{', ...' if len(shown) > 20 else ''}"
    return (f"{source!s}: which {what} holds the labels? None is named like one ({', '.join(LABEL_NAMES[:6])}, ...). "
            f"Name it ({TARGET_HINT}); {what}s: {listed}.")


def npy_without_labels(path) -> str:
    return (f"{path} holds samples but where are the labels? No y.npy or labels.npy "
            f"(or another label name) beside it. Name the labels' own .npy file (--target y.npy on the command line, "
            "target='y.npy' in Python), one label per sample, or save both with numpy.savez('data.npz', X=X, y=y).")


def check_labels(y, source, *, unit: str = "rows", split_later: bool = False) -> None:
    """Refuse labels no classifier learns from, before training: one class, or no class with two samples.

    ``split_later``: a test share is still to be drawn from these labels, so every class needs two samples (one
    to train on, one to test); otherwise a class seen only in the test split stops the run after training.
    """
    values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    values, n = np.asarray(values.tolist(), dtype=object), len(y)  # plain str: messages show 'a', not np.str_('a')
    if len(values) < 2:
        raise GridCNNError(f"{source!s} has one class only ({values[0]!r}, {n} {unit}): a classifier needs at "
                           "least 2.")
    if counts.max() < 2:
        raise GridCNNError(
            f"{source!s}: each of its {n} {unit} has a label of its own ({', '.join(map(repr, values[:3]))}, ...): "
            "no class has two samples to learn from. "
            + (f"Is the label column an ID or a measurement? Name the column that holds classes ({TARGET_HINT})."
               if unit == "rows" else "Give each class several samples.")
        )
    if split_later and counts.min() < 2:
        lone = values[counts < 2]
        raise GridCNNError(
            f"{source!s}: class {lone[0]!r}{f' (and {len(lone) - 1} more)' if len(lone) > 1 else ''} has 1 of the "
            f"{n} {unit}: a class needs at least 2, one to train on and one to test. Add samples of it, or remove it."
        )


def check_split_classes(y_train, y_test, source, test_name: str = "test") -> None:
    """Refuse a test split holding classes training never sees (its metrics would be wrong or fail after training)."""
    unseen = sorted(set(np.asarray(y_test).astype(str).tolist()) - set(np.asarray(y_train).astype(str).tolist()))
    if unseen:
        n = int(np.isin(np.asarray(y_test).astype(str), unseen).sum())
        samples = f"{n} sample{'s' * (n != 1)}"
        raise GridCNNError(
            f"{source!s}: class {unseen[0]!r}{f' (and {len(unseen) - 1} more)' if len(unseen) > 1 else ''} is in the "
            f"{test_name} split ({samples}) but not in the training split, so the model could never predict it. "
            "Add training samples of it, or remove it from the test split."
        )
