"""Augmentation: what each transform does to a batch, the modality's defaults, seeding, and predict-time silence."""

import numpy as np
import pytest
import torch

from gridcnn import GridCNNClassifier
from gridcnn.training.augment import Augment, random_flip, random_mask, random_shift, resolve_augment, token_dropout
from gridcnn.backbone import resolve_spec
from gridcnn.training.augment import infer_modality


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shift_moves_content_and_fills_with_zeros():
    x = torch.zeros(64, 1, 5, 5)
    x[:, :, 2, 2] = 1
    out = random_shift(x, 1, 1, gen())
    assert out.sum(dim=(1, 2, 3)).eq(1).all()  # a one-cell shift keeps the centre dot on the grid
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 5, where % 5
    assert set(rows.tolist()) == {1, 2, 3} and set(cols.tolist()) == {1, 2, 3}
    edge = torch.ones(1, 1, 1, 6)
    assert random_shift(edge, 0, 2, gen()).sum() <= 6  # zero filled, not wrapped


def test_flip_mirrors_about_half_of_the_grids():
    x = torch.arange(4.0).repeat(400, 1, 1, 1)
    out = random_flip(x, gen())
    flipped = (out[:, 0, 0, 0] == 3).float().mean()
    assert 0.4 < flipped < 0.6
    assert torch.equal(out[out[:, 0, 0, 0] == 3], x[: int(flipped * 400)].flip(-1))


@pytest.mark.parametrize("axis", [2, 3])
def test_mask_zeros_one_band_of_at_most_width_cells(axis):
    x = torch.ones(200, 1, 20, 12)
    out = random_mask(x, 4, axis, gen())
    other = 3 if axis == 2 else 2
    zeros_per_line = (out == 0).all(dim=other).sum(dim=(1, 2))  # whole rows (axis 2) or columns (axis 3) zeroed
    assert zeros_per_line.max() == 4 and zeros_per_line.min() == 0
    assert ((out == 0).sum(dim=(1, 2, 3)) == zeros_per_line * x.shape[other]).all()  # only whole lines


def test_token_dropout_drops_whole_tokens_at_the_rate():
    x = torch.ones(100, 1, 30, 8)
    out = token_dropout(x, 0.2, gen())
    dropped = (out == 0).all(-1)
    assert 0.15 < dropped.float().mean() < 0.25
    assert ((out == 0) == dropped[..., None]).all()


def test_same_generator_same_batch():
    aug = Augment(shift_h=2, shift_w=2, flip=True, time_mask=3, freq_mask=3, token_dropout=0.1)
    x = torch.rand(16, 1, 10, 10)
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


@pytest.mark.parametrize("modality, grid, expected", [
    ("image", (1, 8, 8), Augment(shift_h=1, shift_w=1)),
    ("image", (1, 28, 28), Augment(shift_h=2, shift_w=2)),
    ("image", (3, 4, 4), Augment()),  # too small to shift
    ("audio", (1, 63, 40), Augment(shift_h=4, time_mask=8, freq_mask=5)),
    ("sequence", (1, 1, 40), Augment(shift_w=4)),
    ("sequence", (1, 1, 2), Augment()),
    ("text", (1, 47, 384), Augment()),
])
def test_auto_sizes_follow_the_modality(modality, grid, expected):
    assert resolve_augment(modality, grid) == expected


def test_explicit_values_override_auto():
    aug = resolve_augment("audio", (1, 63, 40), shift=0, time_mask=2, freq_mask="auto", flip=True, token_dropout=0.1)
    assert aug == Augment(time_mask=2, freq_mask=5, flip=True, token_dropout=0.1)
    assert resolve_augment("text", (1, 30, 50), token_dropout=0.1) == Augment(token_dropout=0.1)


def test_modality_from_the_network_and_grid():
    assert infer_modality((1, 30, 50), resolve_spec("kim")) == "text"
    assert infer_modality((1, 1, 40), resolve_spec(None)) == "sequence"
    assert infer_modality((3, 32, 32), resolve_spec(None)) == "image"


def test_estimator_resolves_modality_and_augmentation_and_predicts_without_it():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 1, 16, 16), dtype=np.float32), np.arange(40) % 2
    clf = GridCNNClassifier(filters=4, hidden=8, max_epochs=1, random_state=0).fit(X, y)
    assert (clf.modality_, clf.augment_) == ("image", Augment(shift_h=1, shift_w=1))
    assert clf.max_epochs_ == 1
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))  # no random draw at predict time
    audio = GridCNNClassifier(filters=4, hidden=8, max_epochs=1, modality="audio", random_state=0).fit(X, y)
    assert audio.augment_ == Augment(shift_h=1, time_mask=2, freq_mask=2)


def test_augmentation_changes_training_but_not_the_seeded_result():
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 1, 12, 12), dtype=np.float32), np.arange(60) % 3
    kw = dict(filters=4, hidden=8, max_epochs=2, random_state=0)
    a = GridCNNClassifier(**kw).fit(X, y).predict_proba(X)
    b = GridCNNClassifier(**kw).fit(X, y).predict_proba(X)
    off = GridCNNClassifier(**kw, augment_shift=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, off)


def test_auto_epochs_follow_the_step_budget():
    from gridcnn.training.steps import auto_epochs

    assert auto_epochs(15) == 100  # 898 digits in batches of 64: the cap
    assert auto_epochs(63) == 32  # MNIST-1D's 4,000 signals
    assert auto_epochs(938) == 10  # MNIST's 60,000 digits: the floor
    rng = np.random.default_rng(0)
    X, y = rng.random((1300, 1, 4, 4), dtype=np.float32), np.arange(1300) % 2
    clf = GridCNNClassifier(filters=2, hidden=4, batch_size=650, random_state=0, validation_fraction=0.5).fit(X, y)
    assert clf.max_epochs_ == clf.n_iter_ == 100  # 650 training rows after the split: one step per epoch
