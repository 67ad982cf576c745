"""Every registered adapter through the one base class: parameters first, one skip report, one device rule, the
modality refused when it is another, non-finite grids named by their input, and `transform_one`."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import StrOptions

from gridcnn.adapters import ADAPTERS, GridAdapter, ImageGrid, SequenceGrid, SpectrogramGrid, get_adapter
from gridcnn.exceptions import GridCNNError
from gridcnn.workflow.recipes import parse_recipe

RNG = np.random.default_rng(0)
VECTORS = (["good", "bad", "film", "plot"], RNG.normal(size=(4, 6)).astype(np.float32))
T = np.arange(1600) / 16000
# Small inputs each adapter reads, and the parameters that keep them small and on the CPU.
EXAMPLES = {
    "image": ({}, RNG.integers(0, 256, size=(5, 12, 10), dtype=np.uint8)),
    "spectrogram": ({"duration": 0.1, "n_mels": 16, "device": "cpu"},
                    np.stack([np.sin(2 * np.pi * f * T) for f in (300, 500, 700, 900, 1100)]).astype(np.float32)),
    "sequence": ({}, RNG.normal(size=(5, 30))),
    "embedding": ({"embedding": VECTORS, "max_tokens": 4, "device": "cpu"},
                  ["good film", "bad plot", "good plot", "bad film", "film"]),
}


def test_every_registered_adapter_has_an_example():
    assert set(ADAPTERS.names()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_transform_one_is_one_row_of_transform(name):
    params, X = EXAMPLES[name]
    adapter = get_adapter(name, **params)
    grids = adapter.fit_transform(X)
    assert isinstance(adapter, GridAdapter) and grids.dtype == np.float32 and grids.ndim == 4
    assert adapter.skipped_ == [] and adapter.kept_.tolist() == [True] * len(X)
    assert adapter.drop_skipped(np.arange(len(X))).tolist() == list(range(len(X)))
    np.testing.assert_allclose(adapter.transform_one(X[2]), grids[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_misspelt_option_stops_the_recipe_before_any_data(name):
    cls = ADAPTERS.get(name)
    options = {k: c for k, cs in cls._parameter_constraints.items() for c in cs if isinstance(c, StrOptions)}
    key, constraint = sorted(options.items())[0]
    typo = sorted(constraint.options)[0] + "x"
    with pytest.raises(GridCNNError, match=f"adapter: The '{key}' parameter of {cls.__name__} must be"):
        parse_recipe({"data": {"name": "digits"}, "adapter": {"name": name, key: typo}, "estimator": {}})


def test_embedding_and_sequence_typos_show_at_recipe_read():
    # These two adapters used to check their values only in fit, after the data (and MiniLM) had loaded.
    with pytest.raises(GridCNNError, match="adapter: The 'embedding' parameter of EmbeddingGrid .* Did you mean 'minilm'"):
        parse_recipe({"data": {"name": "movie_reviews"}, "adapter": {"name": "embedding", "embedding": "minlm"}})
    with pytest.raises(GridCNNError, match="max_tokens=600 is longer than the 512 tokens 'minilm' can read"):
        parse_recipe({"data": {"name": "movie_reviews"}, "adapter": {"name": "embedding", "max_tokens": 600}})
    with pytest.raises(GridCNNError, match="'standardize' parameter of SequenceGrid .* Did you mean 'channel'"):
        parse_recipe({"data": {"name": "mnist1d"}, "adapter": {"name": "sequence", "standardize": "chanel"}})


@pytest.mark.parametrize("name", [n for n in sorted(EXAMPLES) if "device" in ADAPTERS.get(n)._parameter_constraints])
def test_device_takes_the_estimators_values(name):
    for good in ("auto", "cpu", "cuda:1", "mps"):
        get_adapter(name, device=good)._validate_params()  # format only: whether the GPU exists shows in fit
    with pytest.raises(GridCNNError, match="The 'device' parameter of .* must be 'auto', 'cpu', 'cuda', 'cuda:N' or "
                                           "'mps'. Got 'gpu' instead."):
        get_adapter(name, device="gpu")._validate_params()


def test_images_are_refused_by_the_spectrogram_adapter(tmp_path):
    from sklearn.datasets import load_digits
    from PIL import Image

    digits = load_digits().images
    with pytest.raises(GridCNNError, match=r"SpectrogramGrid reads sound, but X of shape \(1797, 8, 8\) would be 1797 "
                                           r"clips of 8 channel\(s\) x 8 samples .* Use ImageGrid"):
        SpectrogramGrid().fit(digits)
    with pytest.raises(GridCNNError, match=r"Clip 0 \(a waveform\) cannot be used: a waveform is \(channels, "
                                           r"samples\) with at most 8 channels, got shape \(28, 28\)"):
        SpectrogramGrid().fit([np.zeros((28, 28))])
    Image.new("L", (8, 8)).save(tmp_path / "digit.png")
    with pytest.raises(GridCNNError, match=r"X\[0\] \(.*digit.png'\) is an image file, but SpectrogramGrid reads "
                                           "audio inputs. Use ImageGrid"):
        SpectrogramGrid().fit([str(tmp_path / "digit.png")])


def test_sound_files_are_refused_by_the_image_adapter(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "clip.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(GridCNNError, match=r"X\[1\] \(.*clip.wav'\) is a sound file, but ImageGrid reads image "
                                           "inputs. Use SpectrogramGrid"):
        ImageGrid().fit([np.zeros((4, 4)), str(tmp_path / "clip.wav")])


def test_a_clip_that_overflows_is_named():
    _, X = EXAMPLES["spectrogram"]
    loud = X.copy()
    loud[3] *= 1e30  # finite samples whose power overflows float32: every grid became NaN before
    with pytest.raises(GridCNNError, match=r"SpectrogramGrid turned input 3 \(X\[3\]\) into a grid with NaN or "
                                           "infinite values. Its samples are too large"):
        SpectrogramGrid(duration=0.1, device="cpu").fit_transform(loud)
    adapter = SpectrogramGrid(duration=0.1, device="cpu").fit(X)
    with pytest.raises(GridCNNError, match=r"turned input 3 \(X\[3\]\)"):
        adapter.transform(loud)


def test_a_signal_that_overflows_is_named_even_when_windowed():
    X = RNG.normal(size=(4, 30))
    adapter = SequenceGrid(window=10).fit(X)
    X[2, 25] = 1e300  # float64 in, float32 out: infinity
    with pytest.raises(GridCNNError, match=r"SequenceGrid turned input 2 \(X\[2\]\) into a grid with NaN"):
        adapter.transform(X)


def test_skips_are_one_report_in_every_adapter(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "bad.wav").write_bytes(b"not a sound")
    _, clips = EXAMPLES["spectrogram"]
    cases = [(ImageGrid(on_error="skip"), [np.zeros((4, 4)), str(tmp_path / "bad.png"), np.ones((4, 4))]),
             (SpectrogramGrid(on_error="skip", duration=0.1, device="cpu"), [clips[0], str(tmp_path / "bad.wav"), clips[1]])]
    for adapter, X in cases:
        with pytest.warns(UserWarning, match=f"{type(adapter).__name__} left out 1 of 3 inputs"):
            grids = adapter.fit_transform(X)
        assert len(grids) == 2 and [s["index"] for s in adapter.skipped_] == [1]
        assert adapter.skipped_[0]["input"] == X[1] and adapter.drop_skipped(["a", "b", "c"]).tolist() == ["a", "c"]
        with pytest.raises(GridCNNError, match="bad"):  # one input cannot be left out: the error names it
            adapter.transform_one(X[1])
    with pytest.raises(GridCNNError, match="transform_one expects one grid per input, but SequenceGrid made 3 of it"):
        SequenceGrid(window=10).fit(RNG.normal(size=(4, 30))).transform_one(RNG.normal(size=30))
