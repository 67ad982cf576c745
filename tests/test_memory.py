"""Batched transforms and predictions: memory-mapped .npy input gives exactly what the in-memory array gives.

Every adapter test saves real data with ``np.save``, opens it with ``mmap_mode="r"`` and lowers ``BATCH_ROWS`` to 7,
so the memmap goes through several batches and a ragged last one, while the in-memory reference (fewer rows than
the default 4096) goes through the adapter's unbatched path in one call. Each result is also checked against a
reference computed here without the adapter's code.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from sklearn.datasets import load_digits

from gridcnn import GridCNNClassifier
from gridcnn.estimator import classifier as estimator_module
from gridcnn.adapters import base as _base
from gridcnn.adapters.audio.adapter import SpectrogramGrid
from gridcnn.adapters.image import ImageGrid
from gridcnn.adapters.sequence import SequenceGrid
from gridcnn.data import load_dataset
from gridcnn.exceptions import GridCNNError

SMALL_BATCH = 7  # 1,797 digits = 256 batches of 7 and a last one of 5; 20 clips = 7 + 7 + 6
ESPEAK = shutil.which("espeak-ng")
WORDS = "zero one two three four five six seven eight nine".split()


def memmap_of(array, tmp_path, name="X.npy"):
    path = tmp_path / name
    np.save(path, array)
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    return mapped


@pytest.fixture(scope="module")
def digit_images():
    """sklearn's 1,797 digits as the uint8 images a scanner would give: 0-16 intensities scaled to 0-255."""
    return np.round(load_digits().images * (255 / 16)).astype(np.uint8)


@pytest.fixture(scope="module")
def digit_signals():
    """The same digits read row by row: 1,797 real signals of length 64, float64 as sklearn ships them."""
    return load_digits().data


@pytest.fixture(scope="module")
def spoken_words(tmp_path_factory):
    """20 spoken words (0-9 in two espeak-ng voices) at espeak's 22.05 kHz, each cut or padded to 0.6 s."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (sudo apt-get install espeak-ng)")
    folder, length = tmp_path_factory.mktemp("words"), round(0.6 * 22050)
    clips = []
    for voice in ("en-us", "en"):
        for word in WORDS:
            path = folder / f"{voice}-{word}.wav"
            subprocess.run([ESPEAK, "-v", voice, "-w", str(path), word], check=True)
            y, sr = sf.read(path, dtype="float32")
            assert sr == 22050
            clips.append(np.pad(y[:length], (0, max(0, length - len(y)))))
    return np.stack(clips)


@pytest.fixture(scope="module")
def digits_model():
    X, y = load_dataset("digits")  # (1797, 8, 8) float32: more than one 1,024-row prediction batch
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small grids: one thread is faster on a busy machine (see conftest's one_thread)
    try:
        return GridCNNClassifier(max_epochs=2, batch_size=128, random_state=0).fit(X, y), X, y
    finally:
        torch.set_num_threads(n)


# -- adapters: memmap in batches of 7 == in-memory array in one go == a reference computed here -----------------


def test_image_memmap_in_batches_matches_pil(digit_images, tmp_path, monkeypatch):
    mapped = memmap_of(digit_images, tmp_path)
    adapter = ImageGrid(size=(16, 16)).fit(digit_images)
    whole = adapter.transform(digit_images)
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    batched = adapter.transform(mapped)
    # PIL's own bilinear resize of each image, then / 255 in float32: what ImageGrid promises for uint8 input.
    reference = np.stack([
        np.asarray(Image.fromarray(img).resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32) / np.float32(255)
        for img in digit_images
    ])[:, None]
    assert batched.shape == (1797, 1, 16, 16) and batched.dtype == np.float32
    np.testing.assert_array_equal(batched, whole)
    np.testing.assert_array_equal(batched, reference)


def test_image_fit_on_memmap_learns_the_same_statistics(digit_images, tmp_path, monkeypatch):
    whole = ImageGrid(standardize=True).fit(digit_images)
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    batched = ImageGrid(standardize=True).fit(memmap_of(digit_images, tmp_path))
    pixels = digit_images.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(batched.mean_, whole.mean_)
    np.testing.assert_array_equal(batched.std_, whole.std_)
    np.testing.assert_allclose(batched.mean_, [pixels.mean(dtype=np.float64)], rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "params"),
    [
        ((1797, 64), {"standardize": "channel"}),
        ((1797, 8, 8), {"standardize": "position"}),  # eight channels (image rows) of eight steps
        ((1797, 64), {"standardize": "channel", "window": 16, "window_stride": 8}),  # 7 windows per signal
    ],
    ids=["channel", "position-3d", "windows"],
)
def test_sequence_memmap_in_batches_matches_numpy(digit_signals, shape, params, tmp_path, monkeypatch):
    signals = digit_signals.reshape(shape)
    mapped = memmap_of(signals, tmp_path)
    adapter = SequenceGrid(**params).fit(signals)
    whole = adapter.transform(signals)
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    batched = adapter.transform(mapped)

    x = signals.reshape(len(signals), -1, signals.shape[-1])  # (n, C, L)
    window, stride = params.get("window") or x.shape[2], params.get("window_stride") or x.shape[2]
    starts = range(0, x.shape[2] - window + 1, stride)
    cuts = np.stack([x[i, :, s : s + window] for i in range(len(x)) for s in starts])  # signal 0's windows first
    mean, scale = adapter.mean_.astype(np.float64), adapter.scale_.astype(np.float64)
    if params["standardize"] == "channel":
        mean, scale = mean[:, None], scale[:, None]
    reference = ((cuts - mean) / scale).astype(np.float32)[:, :, None, :]

    assert batched.shape == (len(x) * len(starts), x.shape[1], 1, window) == reference.shape
    np.testing.assert_array_equal(batched, whole)
    np.testing.assert_array_equal(batched, reference)


def test_spectrogram_memmap_in_batches_matches_clip_by_clip(spoken_words, tmp_path, monkeypatch):
    mapped = memmap_of(spoken_words, tmp_path)
    adapter = SpectrogramGrid(duration=0.6, input_sample_rate=22050, device="cpu").fit(spoken_words)
    whole = adapter.transform(spoken_words)
    one_by_one = np.concatenate([adapter.transform(clip[None]) for clip in spoken_words])
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    batched = adapter.transform(mapped)
    assert batched.shape == (20, 1, 61, 64) and batched.dtype == np.float32
    # The float32 STFT and mel product run on batches of 20, 7 and 1 clips; a BLAS may sum in another order for
    # another batch size. 1e-5 of standardised decibels (values of order 1) is float32 rounding, nothing more.
    np.testing.assert_allclose(batched, whole, rtol=0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-5)
    assert np.abs(batched - batched[::-1]).max() > 1  # the rows differ, so a row out of place would show


@pytest.mark.parametrize("kind", ["image", "sequence"])
def test_bad_row_in_a_later_batch_raises_as_unbatched(kind, digit_images, digit_signals, tmp_path, monkeypatch):
    if kind == "image":  # float images must lie in [0, 1]
        X, adapter, match = digit_images / np.float32(255), ImageGrid(), "X contains NaN or infinite values"
    else:
        X, adapter, match = digit_signals.copy(), SequenceGrid(), "Signals contain NaN or infinity"
    adapter.fit(X)
    X[1500, 3] = np.nan  # batch 215 of 7
    with pytest.raises(GridCNNError, match=match) as unbatched:
        adapter.transform(X)
    mapped = memmap_of(X, tmp_path)
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    with pytest.raises(GridCNNError) as batched:
        adapter.transform(mapped)
    assert str(batched.value) == str(unbatched.value)


def test_bad_clip_in_a_later_batch_is_named_by_its_index_in_x(spoken_words, tmp_path, monkeypatch):
    adapter = SpectrogramGrid(duration=0.6, input_sample_rate=22050, device="cpu").fit(spoken_words)
    X = spoken_words.copy()
    X[16, 100] = np.nan  # third batch of 7, position 2 in it
    with pytest.raises(GridCNNError, match=r"^Clip 16 \(a waveform\) cannot be used: it contains NaN") as unbatched:
        adapter.transform(X)
    monkeypatch.setattr(_base, "BATCH_ROWS", SMALL_BATCH)
    with pytest.raises(GridCNNError) as batched:
        adapter.transform(memmap_of(X, tmp_path))
    assert str(batched.value) == str(unbatched.value)


# -- GridCNNClassifier: predictions read a memmap 1,024 rows at a time --------------------------------------------


def test_predictions_on_a_memmap_match_one_forward_pass(digits_model, tmp_path, monkeypatch):
    clf, X, y = digits_model
    mapped = memmap_of(X, tmp_path)
    sizes, predict_logits = [], estimator_module.predict_logits

    def counting(model, batches, *args):
        def counted():
            for batch in batches:
                sizes.append(len(batch))
                yield batch
        return predict_logits(model, counted(), *args)

    monkeypatch.setattr(estimator_module, "predict_logits", counting)
    proba = clf.predict_proba(mapped)
    assert sizes == [1024, 773]  # the memmap crossed a batch boundary

    with torch.no_grad():  # one forward pass over every digit, outside the estimator's batching
        clf.model_.eval()
        reference = torch.softmax(clf.model_(torch.from_numpy(X[:, None])).double(), dim=1).numpy()
    # Eval-mode layers treat each row on its own; allow float32 rounding in case a kernel blocks by batch size.
    np.testing.assert_allclose(proba, reference, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))
    np.testing.assert_array_equal(clf.predict(mapped), clf.classes_[reference.argmax(axis=1)])
    accuracy = np.mean(clf.classes_[reference.argmax(axis=1)] == y)
    assert clf.score(mapped, y) == clf.score(X, y) == accuracy > 0.5  # > 0.5: rows out of place would show


def test_nan_in_a_later_batch_raises_as_unbatched(digits_model, tmp_path):
    clf, X, _ = digits_model
    bad = X.copy()
    bad[1500, 3, 4] = np.nan  # in the second batch of 1,024 rows
    with pytest.raises(ValueError, match=r"^Input X contains NaN\.\nGridCNNClassifier does not accept") as listed:
        clf.predict_proba(bad.tolist())  # a list is validated whole, in one call
    for X_bad in (bad, memmap_of(bad, tmp_path)):
        with pytest.raises(ValueError) as batched:
            clf.predict_proba(X_bad)
        assert str(batched.value) == str(listed.value)
