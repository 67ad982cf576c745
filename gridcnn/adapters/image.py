"""`ImageGrid`: image arrays, PIL images or image files -> float32 grids (n, C, H, W) in [0, 1]."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from PIL import Image
from sklearn.utils._param_validation import Interval, StrOptions

from gridcnn.exceptions import GridCNNError
from gridcnn.adapters import base as _base
from gridcnn.adapters.base import ADAPTERS, IMAGE_EXTENSIONS, GridAdapter

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
CHANNEL_SIZES = (1, 3, 4)  # gray, RGB, RGBA: the only channel counts an image has
_GRAY_PIL_MODES = {"1", "L", "LA", "La", "I", "F"}
_SHAPES = "(n, H, W), (n, H, W, C) or (n, C, H, W)"
_MODE_SYNONYMS = {
    "gray": ["L"], "grey": ["L"], "grayscale": ["L"], "greyscale": ["L"], "color": ["RGB"], "colour": ["RGB"],
}


@ADAPTERS.register("image")
class ImageGrid(GridAdapter):
    """Turn images into float32 grids of shape (n, C, H, W) with values in [0, 1].

    X may be an array of shape (n, H, W) (gray), (n, H, W, C) or (n, C, H, W) with C = 1, 3 or 4; or a list
    whose items are image file paths (png, jpg, bmp, gif, tiff, webp...), PIL images or single-image arrays.

    Parameters
    ----------
    size : int, (height, width) or None, default=None
        Resize every image to this size (note: height first, unlike PIL). None keeps the size, which must then be
        the same for every image; `transform` expects the size seen in `fit`.
    mode : {"auto", "L", "RGB"}, default="auto"
        Output channels: "L" one gray channel (ITU-R 601-2 luma, as PIL computes it), "RGB" three. "auto" picks
        "L" in `fit` when every training image has one channel, else "RGB". Transparent pixels are laid on
        white, as a browser or an image viewer shows them (clip art and icons store black under their transparent
        background: dropping alpha, as PIL's ``convert("RGB")`` does, would turn black line art into a black square).
    layout : {"auto", "channels_last", "channels_first"}, default="auto"
        Where the channel axis of a 4-D array (or a 3-D single image in a list) is. "auto" takes the axis whose
        size is 1, 3 or 4 (axis 3 for (n, H, W, C), axis 1 for (n, C, H, W)); when both or neither qualify it
        raises and asks for an explicit layout. 3-D arrays are always gray stacks (n, H, W).
    scale : "auto" or float, default="auto"
        Divisor that maps pixel values to [0, 1]. "auto": uint8 / 255, uint16 / 65535, other integers / 255
        (values must lie in 0-255), floats as they are (values must lie in [0, 1]). A number divides every
        value by it and skips the range check.
    standardize : bool, default=False
        Learn the per-channel mean and standard deviation in `fit` and output (x - mean) / std.
    interpolation : {"bilinear", "nearest", "bicubic", "lanczos", "box"}, default="bilinear"
        PIL resampling filter used by ``size`` (antialiased when shrinking).
    aspect : {"squash", "crop", "pad"}, default="squash"
        How ``size`` treats an image of another aspect ratio. "squash" resizes it to ``size`` as it is (a portrait
        photo comes out wider than it was); "crop" resizes it to cover ``size`` and cuts the centre out (what
        falls outside is lost); "pad" resizes it to fit inside ``size`` and centres it on black (value 0) bands.
    on_error : {"raise", "skip"}, default="raise"
        What to do with a file that cannot be read as an image. "raise" stops with an error naming the file;
        "skip" leaves its row out of the output and records it in ``skipped_``. The output then has fewer rows
        than X: line labels (or paths) up with it through ``adapter.drop_skipped(y)``. A `Pipeline` cannot drop
        labels, so there fit on files that all read, or run the adapter on its own first.

    Attributes
    ----------
    mode_ : str
        "L" or "RGB", the resolved ``mode``.
    n_channels_ : int
        Channels of the output grids (1 or 3).
    image_size_ : tuple of int
        (height, width) of the output grids.
    mean_, std_ : ndarray of shape (n_channels_,) or None
        Per-channel statistics learned in `fit` when ``standardize=True``, else None.
    skipped_, kept_ : list of dict, ndarray of bool
        Files left out by the last `fit` or `transform` call (``{"index", "input", "reason"}``), and which inputs
        became grids; see `GridAdapter`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    >>> ImageGrid(size=(16, 16), mode="L").fit_transform(X).shape
    (4, 1, 16, 16)
    """

    registry_name = "image"
    modality = "image"
    file_extensions = IMAGE_EXTENSIONS
    upload_kind = "image"
    _fitted_attribute = "mode_"
    _synonyms = {k: v[0] for k, v in _MODE_SYNONYMS.items()}

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), list, tuple, None],
        "mode": [StrOptions({"auto", "L", "RGB"})],
        "layout": [StrOptions({"auto", "channels_last", "channels_first"})],
        "scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "standardize": ["boolean"],
        "interpolation": [StrOptions(set(INTERPOLATIONS))],
        "on_error": [StrOptions({"raise", "skip"})],
        "aspect": [StrOptions({"squash", "crop", "pad"})],
    }

    def __init__(self, size=None, mode="auto", layout="auto", scale="auto", standardize=False,
                 interpolation="bilinear", on_error="raise", aspect="squash"):
        self.size = size
        self.mode = mode
        self.layout = layout
        self.scale = scale
        self.standardize = standardize
        self.interpolation = interpolation
        self.on_error = on_error
        self.aspect = aspect

    def read_upload(self, name: str, data: bytes):
        """An uploaded image's bytes -> a PIL image (``gridcnn serve``)."""
        import io

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return im.copy()
        except Exception as exc:  # PIL raises many types for bad data (OSError, SyntaxError, DecompressionBombError)
            raise GridCNNError(
                f"File {name!r} is not an image gridcnn can read ({type(exc).__name__}). Use PNG, JPEG, BMP, GIF, "
                "TIFF or WebP."
            ) from None

    def onnx_frontend(self):
        from gridcnn.export.frontends import image

        return image(self)

    def _fit_transform(self, X):
        chunks = self._read(X)
        self.mode_ = self.mode if self.mode != "auto" else ("L" if all(c.shape[-1] == 1 for c, _ in chunks) else "RGB")
        self.n_channels_ = 1 if self.mode_ == "L" else 3
        if self.size is not None:
            self.image_size_ = _size_pair(self.size)
        else:
            self.image_size_ = tuple(int(v) for v in chunks[0][0].shape[1:3])
        grids = self._grids(chunks, reference=f"{chunks[0][1][0]} is")
        self.mean_ = self.std_ = None
        if self.standardize:
            self.mean_ = grids.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
            std = grids.std(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
            self.std_ = np.where(std > 0, std, np.float32(1.0))  # a constant channel is left centred, not blown up
        return self._standardize(grids)

    def _transform(self, X):
        return self._standardize(self._grids(self._read(X), reference="the images seen in fit are"))

    # -- internals ----------------------------------------------------------------------------------------------

    def state_grid_shape(self):
        h, w = (int(v) for v in self.image_size_)
        if self.size is not None and _size_pair(self.size) != (h, w):
            raise ValueError(f"size={self.size} but image_size_={[h, w]}")
        if int(self.n_channels_) != (1 if self.mode_ == "L" else 3):
            raise ValueError(f"mode_={self.mode_!r} gives {1 if self.mode_ == 'L' else 3} channel(s), not "
                             f"n_channels_={self.n_channels_}")
        return int(self.n_channels_), h, w

    def _check_parameters(self):
        if self.size is not None:
            _size_pair(self.size)

    def _standardize(self, grids: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            return grids
        return (grids - self.mean_[:, None, None]) / self.std_[:, None, None]

    def _read(self, X) -> list[tuple[np.ndarray, list]]:
        """Split X into chunks (k, H, W, C) of native dtype, each with the names of its k rows for messages."""
        if isinstance(X, (str, os.PathLike)):
            raise GridCNNError(
                f"X is one path ({os.fspath(X)!r}); ImageGrid expects a list of image paths or an image array. "
                "For a folder with one subfolder per class, use gridcnn.data.load_dataset('image_folder', "
                "path=...)."
            )
        if isinstance(X, Image.Image):
            raise GridCNNError("X is one PIL image; pass a list of images, such as [image].")
        if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype.kind in "OUS"):
            chunks = self._read_items(list(X))
        else:
            X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X)
            if X.ndim not in (3, 4):
                raise GridCNNError(
                    f"ImageGrid expects an image array of shape {_SHAPES}, or a list of images. Got a {X.ndim}-D "
                    f"array of shape {X.shape}." + (" For one image, pass X[None]." if X.ndim == 2 else "")
                )
            if len(X) == 0:
                raise GridCNNError(f"X holds no images (shape {X.shape}).")
            if X.ndim == 3 and X.shape[-1] in (3, 4) and min(X.shape[:2]) > 4:
                raise GridCNNError(
                    f"X has shape {X.shape}: that looks like one color image (H, W, C) rather than {X.shape[0]} "
                    f"gray images of {X.shape[1]}x{X.shape[2]} pixels. Pass X[None] for one image; for gray images "
                    "that narrow, pass X[..., None]."
                )
            x = X[..., None] if X.ndim == 3 else _channels_last(X, self.layout, "X")
            step = _base.BATCH_ROWS
            chunks = [(x[s : s + step], [f"X[{i}]" for i in range(s, min(len(x), s + step))])
                      for s in range(0, len(x), step)]
        if not chunks:
            if not self.skipped_:
                raise GridCNNError("X holds no images.")
            first = self.skipped_[0]
            raise GridCNNError(
                f"None of the {len(X)} inputs could be read as an image; the first failure: {first['input']!r}: "
                f"{first['reason']}."
            )
        return chunks

    def _read_items(self, items: list):
        chunks = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike, np.str_)):
                path = os.fspath(item)
                try:
                    with Image.open(path) as im:
                        im.load()
                        x = _pil_to_array(im)
                except Exception as exc:  # PIL's decoders raise many types (OSError, SyntaxError, struct.error...)
                    reason = _reason(exc, path)
                    if self.on_error == "skip":
                        self._skip(i, path, reason)
                        continue
                    raise GridCNNError(
                        f"Could not read {path!r} as an image: {reason}. Fix or remove the file, or pass "
                        "on_error='skip' to leave it out (in a recipe: on_error = \"skip\" under [adapter]; skipped files are "
                        "listed in skipped_)."
                    ) from None
                name = path
            elif isinstance(item, Image.Image):
                x, name = _pil_to_array(item), f"X[{i}]"
            elif isinstance(item, np.ndarray) and item.ndim in (2, 3):
                x = item[..., None] if item.ndim == 2 else _channels_last(item[None], self.layout, f"X[{i}]")[0]
                name = f"X[{i}]"
            else:
                got = f"an array of shape {item.shape}" if isinstance(item, np.ndarray) else type(item).__name__
                raise GridCNNError(
                    f"X[{i}] is {got}; a list given to ImageGrid must hold image file paths, PIL images or "
                    "single-image arrays of shape (H, W), (H, W, C) or (C, H, W)."
                )
            chunks.append((x[None], [name]))
        return chunks

    def _grids(self, chunks, reference: str) -> np.ndarray:
        """Convert, resize and scale every chunk to float32 (k, C, H, W) and stack them."""
        size = tuple(self.image_size_)  # a list once loaded from a model file's JSON
        out = np.empty((sum(len(c) for c, _ in chunks), self.n_channels_, *size), dtype=np.float32)
        start = 0
        for x, names in chunks:
            if self.size is None and tuple(x.shape[1:3]) != size:
                h, w = size
                raise GridCNNError(
                    f"{names[0]} is {x.shape[1]}x{x.shape[2]} (height x width), but {reference} {h}x{w}, and without "
                    f"size= every image must have the same size. Pass size=({h}, {w}) (or another size) to resize "
                    "every image."
                )
            x = _to_mode(self._unit_or_uint8(x, names), self.mode_)
            x = _resize(x, size, INTERPOLATIONS[self.interpolation], getattr(self, "aspect", "squash"))
            if x.dtype == np.uint8:
                x = x.astype(np.float32) / np.float32(255 if self.scale == "auto" else self.scale)
            elif self.scale == "auto":
                np.clip(x, 0.0, 1.0, out=x)  # bicubic and lanczos overshoot a little; "auto" promises [0, 1]
            out[start : start + len(x)] = x.transpose(0, 3, 1, 2)
            start += len(x)
        return out

    def _unit_or_uint8(self, x: np.ndarray, names) -> np.ndarray:
        """uint8 stays (PIL resizes it exactly as it would the image); anything else becomes scaled float32."""
        if x.dtype == np.uint8:
            return x
        if self.scale != "auto":
            return x.astype(np.float32) / np.float32(self.scale)
        if x.dtype == np.bool_:
            return x.astype(np.float32)
        if x.dtype == np.uint16:
            return x.astype(np.float32) / np.float32(65535)
        if x.dtype.kind not in "iuf":
            raise GridCNNError(f"ImageGrid expects numeric images; {names[0]} has dtype {x.dtype}.")
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise GridCNNError(f"{_where(names)} contains NaN or infinite values. Replace them before ImageGrid.")
        top = 255 if x.dtype.kind in "iu" else 1
        if lo < 0 or hi > top:
            fix = "pass scale=255 for 0-255 floats, or scale=1 to keep the values as they are" if top == 1 else (
                "cast to uint8 / uint16, or pass scale=<the largest possible value>")
            raise GridCNNError(
                f"With scale='auto', {x.dtype} images must hold values in [0, {top}]; {_where(names)} holds values "
                f"in [{lo:g}, {hi:g}]. Fix: {fix}."
            )
        return x.astype(np.float32) / np.float32(top)


def _size_pair(size) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, Integral) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise GridCNNError(f"size must be an int or (height, width) of positive ints. Got {size!r} instead.")
    return int(pair[0]), int(pair[1])


def _where(names) -> str:
    return names[0] if len(names) == 1 else "X"


def _reason(exc: Exception, path: str) -> str:
    """The error in a few words, without the path that PIL repeats in its messages."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    return str(exc).replace(repr(path), "").strip(" :") or type(exc).__name__


def _channels_last(x: np.ndarray, layout: str, name: str) -> np.ndarray:
    """Move the channel axis of a 4-D array (n, ?, ?, ?) to the end, following ``layout``."""
    first, last = x.shape[1] in CHANNEL_SIZES, x.shape[3] in CHANNEL_SIZES
    shown = tuple(x.shape) if name == "X" else tuple(x.shape[1:])
    if layout == "auto":
        if first == last:
            a, b = (1, 3) if name == "X" else (0, 2)
            why = f"axes {a} and {b} both have" if first else f"neither axis {a} nor axis {b} has"
            raise GridCNNError(
                f"Cannot tell which axis of {name} (shape {shown}) holds the channels: {why} a channel-like size "
                "(1, 3 or 4). Pass layout='channels_last' for (n, H, W, C) or layout='channels_first' for "
                "(n, C, H, W)."
            )
        layout = "channels_last" if last else "channels_first"
    channels = x.shape[3] if layout == "channels_last" else x.shape[1]
    if channels not in CHANNEL_SIZES:
        raise GridCNNError(
            f"{name} has shape {shown}, so with layout={layout!r} it has {channels} channels; images have 1 (gray), "
            "3 (RGB) or 4 (RGBA). Pass other channel counts to GridCNNClassifier directly as (n, C, H, W)."
        )
    return x if layout == "channels_last" else x.transpose(0, 2, 3, 1)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """(H, W, C) array in the image's own depth: uint8 for 8-bit images, uint16 for 16-bit, float32 for "F"."""
    if im.mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)[..., None]
    if im.mode == "I":  # 16-bit PNGs open as "I" in some Pillow versions; 32-bit data must say its scale
        x = np.asarray(im)
        return (x.astype(np.uint16) if x.min() >= 0 and x.max() <= 65535 else x)[..., None]
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)[..., None]
    if im.mode in ("LA", "La"):  # gray with alpha: on white, still one channel
        return _on_white(im.convert("RGBA"))[..., :1].copy()
    if im.mode in _GRAY_PIL_MODES:
        return np.asarray(im.convert("L"))[..., None]
    if im.mode in ("RGBA", "RGBa", "PA") or "transparency" in im.info:  # palette transparency too
        return _on_white(im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))


def _on_white(rgba: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8: an RGBA picture laid on white (the same numbers `_to_mode` gives for an RGBA array)."""
    return _to_mode(np.asarray(rgba)[None], "RGB")[0]


def _to_mode(x: np.ndarray, mode: str) -> np.ndarray:
    """(k, H, W, C) with C in 1, 3, 4 -> (k, H, W, 1 or 3), a fourth channel taken as alpha over white."""
    if x.shape[-1] == 4:
        x = _over_white(x)
    if mode == "RGB":
        return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else np.ascontiguousarray(x)
    if x.shape[-1] == 1:
        return x
    r, g, b = (x[..., i : i + 1] for i in range(3))
    if x.dtype == np.uint8:  # PIL's fixed-point ITU-R 601-2 luma, so gray images match PIL's convert("L") exactly
        luma = r.astype(np.uint32) * 19595 + g.astype(np.uint32) * 38470 + b.astype(np.uint32) * 7471 + 0x8000
        return (luma >> 16).astype(np.uint8)
    return (np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b).astype(np.float32)


def _over_white(x: np.ndarray) -> np.ndarray:
    """(k, H, W, 4) RGBA -> (k, H, W, 3): colour * alpha + white * (1 - alpha), in the array's own depth (uint8 and
    uint16 rounded to nearest; white is the dtype's full scale, 1.0 for floats)."""
    rgb, a = x[..., :3], x[..., 3:]
    if x.dtype.kind == "f":
        return (rgb * a + (1 - a)).astype(x.dtype)
    top = 65535 if x.dtype == np.uint16 else 255
    wide = rgb.astype(np.uint64) * a + top * (top - a.astype(np.uint64))
    return ((wide + top // 2) // top).astype(x.dtype)


def _resize(x: np.ndarray, size: tuple[int, int], resample, aspect: str = "squash") -> np.ndarray:
    """Resize each image of (k, H, W, C) with PIL: uint8 as L/RGB images, floats one "F" channel at a time; an image
    of another aspect ratio squashed, centre-cropped or padded (see ImageGrid's ``aspect``)."""
    if tuple(x.shape[1:3]) == size:
        return x
    h, w = size
    box, (ph, pw), (top, left) = _placement(x.shape[1:3], size, aspect)
    out = np.zeros((len(x), h, w, x.shape[-1]), dtype=x.dtype)
    for i, img in enumerate(x):
        if x.dtype == np.uint8:
            pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
            out[i, top:top + ph, left:left + pw] = np.asarray(pil.resize((pw, ph), resample, box=box)).reshape(ph, pw, -1)
        else:
            for c in range(x.shape[-1]):
                pil = Image.fromarray(np.ascontiguousarray(img[..., c]))
                out[i, top:top + ph, left:left + pw, c] = np.asarray(pil.resize((pw, ph), resample, box=box))
    return out


def _placement(shape, size, aspect: str):
    """(the source box PIL resizes from, the (height, width) it becomes, where that goes in the output) for an
    image of ``shape`` (H, W) made ``size``: the whole image squashed, its centre cut to the output's aspect ratio
    ("crop"), or the whole image made to fit inside and centred ("pad")."""
    (H, W), (h, w) = shape, size
    if aspect == "crop":
        scale = max(h / H, w / W)  # the source region that, resized by scale, covers the output exactly
        ch, cw = min(H, h / scale), min(W, w / scale)  # h / (h / H) can come back as H + 1e-14: PIL refuses that box
        return (max(0.0, (W - cw) / 2), max(0.0, (H - ch) / 2), min(W, (W + cw) / 2), min(H, (H + ch) / 2)), (h, w), (0, 0)
    if aspect == "pad":
        scale = min(h / H, w / W)
        ph, pw = max(1, min(h, round(H * scale))), max(1, min(w, round(W * scale)))
        return None, (ph, pw), ((h - ph) // 2, (w - pw) // 2)
    return None, (h, w), (0, 0)
