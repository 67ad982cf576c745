"""Recipes: a TOML file in, checked objects out (data split, adapter, estimator); and objects back to TOML.

A recipe has four sections, whose keys are exactly the arguments of what they build::

    [data]        dataset name (or path) + loader arguments, the split (test_split or test_fraction), and how
                  image and sound files are read: stream = "auto" | true | false, cache, num_workers, threads
    [adapter]     adapter name + constructor arguments (absent when the data already are grids)
    [estimator]   GridCNNClassifier keyword arguments
    [output]      dir: the run folder (default runs/<recipe>-<timestamp>)
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from gridcnn.estimator.pipeline import split_pipeline
from gridcnn._registry import did_you_mean
from gridcnn.exceptions import GridCNNError

SECTIONS = ("data", "adapter", "estimator", "output")
# Keys of [data] that say how image and sound files are read: decoded lazily from disk (see gridcnn.streaming).
STREAM_KEYS = ("stream", "cache", "num_workers", "threads")
# Keys of [data] that choose the split or the reading; every other key goes to the dataset loader.
SPLIT_KEYS = ("name", "path", "train_split", "test_split", "test_fraction", "random_state", "max_train", "max_test",
              *STREAM_KEYS)
OUTPUT_KEYS = ("dir",)
RECIPES_DIR = Path(__file__).resolve().parent / "recipe_files"  # package data; the checkout's recipes/ links here


@dataclass
class Recipe:
    """A parsed recipe: one dict per section, plus where it came from (for messages and the run folder's name)."""

    data: dict
    estimator: dict
    adapter: dict | None = None
    output: dict = field(default_factory=dict)
    source: str = "<recipe>"

    @property
    def stem(self) -> str:
        """The recipe's name without folder and suffix ("audio" for recipes/audio.toml)."""
        return Path(self.source).stem if self.source != "<recipe>" else "recipe"

    def to_dict(self) -> dict:
        """The sections as TOML-ready dicts (None values dropped: TOML has no null)."""
        out = {"data": self.data}
        if self.adapter is not None:
            out["adapter"] = self.adapter
        out["estimator"] = self.estimator
        if self.output:
            out["output"] = self.output
        return {s: {k: _toml_value(v) for k, v in d.items() if v is not None} for s, d in out.items()}

    def to_toml(self) -> str:
        """The recipe as TOML text; `parse_recipe` of it gives an equal recipe."""
        return tomli_w.dumps(self.to_dict())


def portable(recipe: Recipe) -> Recipe:
    """The recipe as a run folder keeps it: its data path (and a cache folder) absolute, so that
    ``gridcnn fit RUN/recipe.toml`` finds the data from any working folder."""
    data = dict(recipe.data)
    for key in ("path", "cache"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(Path(data[key]).resolve())
    return dataclasses.replace(recipe, data=data)


def planned_recipe_text(recipe: Recipe, time_limit: float, asked: int, planned: int | None, ran: int) -> str:
    """A run's recipe after a fit under a time limit: ``max_epochs`` the epochs planned (the learning-rate schedule
    spans them), and comments saying what the limit decided, so that fitting the recipe again repeats the run."""
    estimator = dict(recipe.estimator)
    if planned is not None:
        estimator["max_epochs"] = int(planned)
    was = recipe.estimator.get("max_epochs", "auto")
    head = [f"# Trained with --time-limit {time_limit:g}s: max_epochs={was!r} asked for {asked} epochs; "
            + (f"the time limit planned {planned} (max_epochs below), so fitting this file again repeats the run."
               if planned is not None else "all of them fitted in the time.")]
    if ran != (planned or asked):
        head.append(f"# {ran} of them ran: an epoch ran slower than planned and the next would not have fitted.")
    return "\n".join(head) + "\n" + dataclasses.replace(recipe, estimator=estimator).to_toml()


def _toml_value(v):
    if isinstance(v, tuple):
        return [_toml_value(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fail(source: str, key: str, message: str):
    raise GridCNNError(f"{source}: {key}: {message}")


def parse_override(text: str):
    """Split ``section.key=value``; the value is read as TOML (``3``, ``[8, 16]``, ``true``), else as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise GridCNNError(f"--set takes section.key=value, such as estimator.max_epochs=3. Got {text!r} instead.")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # lets --set data.name=mnist work without quoting
    return section, key, value


def read_recipe(path, overrides=()) -> Recipe:
    """Read, override and check the recipe at ``path``.

    Parameters
    ----------
    path : str or Path
        A TOML file, or the name of a shipped recipe ("audio" for recipes/audio.toml).
    overrides : iterable of str
        ``section.key=value`` strings applied on top of the file, checked like it.

    Returns
    -------
    recipe : Recipe
    """
    path = Path(path)
    if not path.exists() and not path.suffix and (RECIPES_DIR / f"{path}.toml").exists():
        path = RECIPES_DIR / f"{path}.toml"
    elif not path.exists() and path.parent.name == "recipes" and (RECIPES_DIR / path.name).exists():
        path = RECIPES_DIR / path.name  # recipes/audio.toml from outside a checkout: the shipped one
    if path.is_dir():
        raise GridCNNError(f"Recipe {str(path)!r} is a folder; give a recipe file (.toml) such as recipes/image.toml.")
    if not path.is_file():
        shipped = [p.stem for p in sorted(RECIPES_DIR.glob("*.toml"))]
        raise GridCNNError(
            f"Recipe file {str(path)!r} does not exist.{did_you_mean(path.stem, shipped)} "
            f"Shipped recipes: {', '.join(shipped)} (run 'gridcnn recipes')."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GridCNNError(f"{path}: not valid TOML: {exc}. Fix the syntax at that line.") from None
    except UnicodeDecodeError as exc:
        raise GridCNNError(
            f"{path} is not a TOML recipe: it is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}). "
            "Give a recipe file such as recipes/image.toml."
        ) from None
    for text in overrides:
        section, key, value = parse_override(text)
        raw.setdefault(section, {})[key] = value
    return parse_recipe(raw, source=str(path))


def parse_recipe(raw: dict, source: str = "<recipe>") -> Recipe:
    """Check a recipe given as a dict of sections and return it as a `Recipe`."""
    from gridcnn.adapters import ADAPTERS
    from gridcnn.data import DATASETS
    from gridcnn.estimator.classifier import GridCNNClassifier

    for section, body in raw.items():
        if section not in SECTIONS:
            _fail(source, f"[{section}]", f"unknown section.{did_you_mean(section, SECTIONS)} Sections: {', '.join(SECTIONS)}.")
        if not isinstance(body, dict):
            _fail(source, section, f"must be a table ([{section}]). Got {type(body).__name__} instead.")
    data = dict(raw.get("data", {}))
    if ("name" in data) == ("path" in data) and not ("name" in data and data["name"].endswith("_folder")):
        _fail(source, "data", "give exactly one of name (a dataset from 'gridcnn datasets') or path (a folder, .npz or .csv).")
    if "test_split" in data and "test_fraction" in data:
        _fail(source, "data", "give test_split or test_fraction, not both.")
    if "name" in data:
        _check_type(source, "data.name", data["name"], str)
        info = _get(DATASETS, source, "data.name", data["name"])
        if "test_split" not in data and "test_fraction" not in data:
            data["test_fraction" if not info.splits else "test_split"] = 0.2 if not info.splits else info.splits[-1]
        params = inspect.signature(info.loader).parameters
        for key in data:
            if key not in SPLIT_KEYS and key not in params:
                valid = [*SPLIT_KEYS, *(p for p in params if p != "split")]
                _fail(source, f"data.{key}", f"unknown key.{did_you_mean(key, valid)} Keys: {', '.join(valid)}.")
        if "test_split" in data and data["test_split"] not in info.splits:
            _fail(source, "data.test_split", f"dataset {info.name!r} has no split {data['test_split']!r}."
                  f"{did_you_mean(data['test_split'], info.splits)} Splits: {', '.join(info.splits) or 'none'}.")
    else:
        _check_type(source, "data.path", data["path"], str)
        for key in data:
            if key not in (*SPLIT_KEYS, "target"):
                _fail(source, f"data.{key}", f"unknown key.{did_you_mean(key, (*SPLIT_KEYS, 'target'))}")
        if "test_split" not in data:  # a folder's test/ subfolder or an .npz's X_test: the split is given
            data.setdefault("test_fraction", 0.2)
    if "test_fraction" in data:
        f = data["test_fraction"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            _fail(source, "data.test_fraction", f"must be a number between 0 and 1 (exclusive). Got {f!r} instead.")
    if "random_state" in data and (isinstance(data["random_state"], bool) or not isinstance(data["random_state"], int)
                                   or not 0 <= data["random_state"] < 2**32):
        _fail(source, "data.random_state", f"must be an int in [0, 2**32 - 1] (the seed of the split). Got "
              f"{data['random_state']!r} instead.")
    for key in ("max_train", "max_test"):
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 1):
            _fail(source, f"data.{key}", f"must be a positive int. Got {data[key]!r} instead.")
    if "stream" in data and data["stream"] not in (True, False, "auto"):
        _fail(source, "data.stream", f"must be true, false or \"auto\". Got {data['stream']!r} instead.")
    if "cache" in data and not isinstance(data["cache"], (bool, str)):
        _fail(source, "data.cache", f"must be true, false or a folder path. Got {data['cache']!r} instead.")
    workers = data.get("num_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        _fail(source, "data.num_workers", f"must be an int >= 0. Got {workers!r} instead.")
    if "threads" in data and not isinstance(data["threads"], bool):
        _fail(source, "data.threads", f"must be true or false (decode in threads instead of worker processes). Got "
              f"{data['threads']!r} instead.")

    adapter = raw.get("adapter")
    if adapter is not None:
        adapter = dict(adapter)
        if "name" not in adapter:
            _fail(source, "adapter.name", f"missing. Adapters: {', '.join(ADAPTERS.names())}.")
        cls = _get(ADAPTERS, source, "adapter.name", adapter["name"])
        valid = cls().get_params(deep=False)
        for key in adapter:
            if key != "name" and key not in valid:
                _fail(source, f"adapter.{key}", f"{cls.__name__} has no parameter {key!r}.{did_you_mean(key, valid)}")
        built = _try(source, "adapter", lambda: cls(**{k: v for k, v in adapter.items() if k != "name"}))
        _try(source, "adapter", built._validate_params)  # adapters check their values in fit; a recipe, now

    estimator = dict(raw.get("estimator", {}))
    valid = GridCNNClassifier().get_params(deep=False)
    for key in estimator:
        if key not in valid:
            _fail(source, f"estimator.{key}", f"GridCNNClassifier has no parameter {key!r}.{did_you_mean(key, valid)}")
    checked = GridCNNClassifier(**estimator)
    for key in estimator:
        _try(source, f"estimator.{key}", lambda: checked._validate_parameters([key]))
    _try(source, "estimator", checked._resolve_spec)  # per-block lists: empty, or of different lengths

    output = dict(raw.get("output", {}))
    for key in output:
        if key not in OUTPUT_KEYS:
            _fail(source, f"output.{key}", f"unknown key.{did_you_mean(key, OUTPUT_KEYS)} Keys: {', '.join(OUTPUT_KEYS)}.")
    if "dir" in output:
        _check_type(source, "output.dir", output["dir"], str)
    return Recipe(data=data, adapter=adapter, estimator=estimator, output=output, source=source)


def _check_type(source, key, value, kind):
    if not isinstance(value, kind):
        _fail(source, key, f"must be a {kind.__name__}. Got {value!r} ({type(value).__name__}) instead.")


def _get(registry, source, key, name):
    try:
        return registry.get(name)
    except GridCNNError as exc:
        _fail(source, key, str(exc))


def _try(source, key, build):
    try:
        return build()
    except GridCNNError as exc:
        _fail(source, key, str(exc))


def build_pipeline(recipe: Recipe, **estimator_overrides):
    """The (unfitted) model a recipe describes: the estimator, behind its adapter when it has one."""
    from gridcnn.adapters import get_adapter
    from gridcnn.estimator.classifier import GridCNNClassifier

    est = GridCNNClassifier(**{**recipe.estimator, **estimator_overrides})
    if recipe.adapter is None:
        return est
    params = {k: v for k, v in recipe.adapter.items() if k != "name"}
    adapter = get_adapter(recipe.adapter["name"], **params)
    if est.modality == "auto":  # the adapter knows what its grids are: augment them as such
        est.set_params(modality=adapter.modality)
    if getattr(adapter, "output", None) == "ids" and est.embedding is None:
        # Token ids need the table they index: the network starts from the adapter's and trains it (non-static).
        est.set_params(embedding=adapter.embedding)
    return Pipeline([(recipe.adapter["name"], adapter), ("classifier", est)])


def load_split(recipe: Recipe):
    """Load the recipe's data and return ``X_train, y_train, X_test, y_test``."""
    from gridcnn.data import load_dataset, load_path
    from gridcnn.data.labels import check_labels, check_split_classes

    data = recipe.data
    loader_kw = {k: v for k, v in data.items() if k not in SPLIT_KEYS}
    if "name" in data:
        if data["name"].endswith("_folder") and "path" in data:
            loader_kw["path"] = data["path"]
        load = lambda split: load_dataset(data["name"], split=split, **loader_kw)  # noqa: E731
    else:
        load = lambda split: load_path(data["path"], split=split, **loader_kw)  # noqa: E731
    seed = data.get("random_state", 0)
    source = data.get("path") or data["name"]
    if "test_split" in data:
        X_train, y_train = load(data.get("train_split", "train"))
        X_test, y_test = load(data["test_split"])
    else:
        X, y = load(None)
        y = np.asarray(y)
        check_labels(y, source)  # one class, or a label per row: refused before a split or an epoch
        _, counts = np.unique(y, return_counts=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=data["test_fraction"], random_state=seed, stratify=y if counts.min() >= 2 else None
        )
    X_train, y_train = at_most(X_train, y_train, data.get("max_train"), seed)
    X_test, y_test = at_most(X_test, y_test, data.get("max_test"), seed)
    check_labels(y_train, source)
    # A test class training never saw: its rows could only be wrong, and per-class metrics would misalign.
    check_split_classes(y_train, y_test, source, data.get("test_split", "test"))
    return X_train, y_train, X_test, y_test


def at_most(X, y, n, seed):
    """A random (seeded) subset of ``n`` rows of X and y, in their original order, keeping X's type (array or list).

    What ``max_train`` / ``max_test`` in a recipe take; all rows when ``n`` is None or not smaller than len(y).
    """
    y = np.asarray(y)
    if n is None or n >= len(y):
        return X, y
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
    return (X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]), y[idx]


def recipe_from_pipeline(model, data: dict, output: dict | None = None) -> Recipe:
    """Write a fitted or unfitted model back as a recipe (keys are constructor arguments, so this is exact)."""
    adapters, est = split_pipeline(model)
    adapter = None
    if adapters:
        (a,) = adapters
        adapter = {"name": a.registry_name, **a.get_params(deep=False)}
    params = {k: v for k, v in est.get_params(deep=False).items() if k != "callbacks"}
    return Recipe(data=dict(data), adapter=adapter, estimator=params, output=dict(output or {}))
