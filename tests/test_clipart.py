"""The clip-art data set (issue 26's colour set): built offline from openclipart-png, split by drawing, never from
the folders kept for the project's own check."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gridcnn.data import clipart, load_dataset

pytestmark = pytest.mark.skipif(not clipart.ROOT.is_dir(), reason="openclipart-png is not installed")


def test_near_copies_count_as_one_drawing():
    files = clipart.drawings(clipart.ROOT / "buildings")
    stems = [re.sub(r"_\d\d$", "", str(f.with_suffix(""))) for f in files]
    assert len(stems) == len(set(stems)) and len(files) >= clipart.PER_CLASS
    assert not set(clipart.CLASSES) & set(clipart.RESERVED)


@pytest.mark.slow
def test_the_set_builds_into_the_cache_and_no_drawing_is_in_both_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDCNN_CACHE", str(tmp_path))
    train, y_train = load_dataset("clipart", "train")
    test, y_test = load_dataset("clipart", "test")
    assert sorted(set(y_train)) == sorted(clipart.CLASSES) == sorted(set(y_test))
    assert 290 <= len(train) <= 304 and 140 <= len(test) <= 152
    stem = lambda p: re.sub(r"_\d\d$", "", Path(p).stem)  # noqa: E731
    assert not {stem(p) for p in train} & {stem(p) for p in test}
    with Image.open(train[0]) as im:
        assert (im.size, im.mode) == ((128, 128), "RGB")
    X, _ = clipart.load(tmp_path / "clipart-v1", "test", 32)
    assert X.shape[1:] == (3, 32, 32) and 0 <= X.min() and X.max() <= 1 and np.ptp(X) > 0.5
