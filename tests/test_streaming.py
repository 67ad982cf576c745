"""Streaming from files: a fit on `StreamedGrids` equals the in-memory fit bit for bit (0, 1, 2 workers, with and
without the cache, images and sound, resumed or not); the cache is written once, read later and rebuilt when
anything it depends on changes; bad files and dying workers end as the adapter's on_error says, in one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import gridcnn
import gridcnn.adapters
from gridcnn.data import load_dataset
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.adapters.audio.adapter import SpectrogramGrid
from gridcnn.adapters.image import ImageGrid
from gridcnn.modelfile.checkpoint import read_checkpoint
from gridcnn.streaming import StreamedGrids, fit_adapter, stream_folder
from gridcnn.streaming import _cache, _decode

# Every source of randomness a fit has: dropout, augmentation, a per-batch schedule, a validation split.
RANDOM = dict(filters=[4, 8], hidden=[16], dropout=0.2, block_dropout=0.1, augment_shift=1, lr=3e-3,
              lr_schedule="onecycle", validation_fraction=0.2, batch_size=8, max_epochs=3, random_state=0,
              device="cpu")


def image_folder(root, classes=3, per_class=12, size=12, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = (rng.random((size, size)) * 90).astype(np.uint8)
            a[c * 3 : c * 3 + 3] += 150  # a bright band whose row says the class
            mode = "RGB" if i % 4 == 0 else "L"  # some colour files: mode "auto" must pick RGB for all
            Image.fromarray(a).convert(mode).save(root / f"c{c}" / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    root = image_folder(tmp_path_factory.mktemp("pngs"))
    paths, y = load_dataset("image_folder", path=root)
    adapter = ImageGrid(size=(10, 10), standardize=True).fit(list(paths))
    return list(paths), y, adapter


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    root, rng, t = tmp_path_factory.mktemp("wavs"), np.random.default_rng(1), np.arange(4000) / 8000
    for c, freq in enumerate((300, 1200)):
        (root / f"tone{c}").mkdir()
        for i in range(10):
            wave = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t) + 0.05 * rng.normal(size=t.size)
            sf.write(root / f"tone{c}" / f"{i}.wav", wave[: 3000 + 100 * i].astype(np.float32), 8000)
    stream, y = stream_folder(root, SpectrogramGrid(sample_rate=8000, duration=0.4, n_mels=16, n_fft=256,
                                                    hop_length=80, device="cpu"), cache=False)
    return stream.paths, y, stream.adapter


def states_equal(a, b) -> bool:
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_time(history):
    return [{k: v for k, v in h.items() if k != "time"} for h in history]


@pytest.fixture(scope="module")
def in_memory(pngs, one_thread_per_module):
    # On one thread, as the streamed fits it is compared with (one_thread): kernels split over two threads sum in
    # another order, and the fits then differ in the last bits outside pytest-xdist's one-thread workers.
    paths, y, adapter = pngs
    return GridCNNClassifier(**RANDOM).fit(adapter.transform(paths), y)


@pytest.mark.parametrize("workers", [0, 1, 2])
@pytest.mark.parametrize("cache", [False, True])
def test_streamed_fit_equals_the_in_memory_fit(pngs, in_memory, tmp_path, one_thread, workers, cache):
    paths, y, adapter = pngs
    stream = StreamedGrids(paths, adapter, cache=tmp_path if cache else False, num_workers=workers)
    streamed = GridCNNClassifier(**RANDOM).fit(stream, y)
    assert states_equal(streamed, in_memory)
    assert without_time(streamed.history_) == without_time(in_memory.history_)
    assert streamed.input_shape_ == in_memory.input_shape_ == (3, 10, 10)  # one colour file: RGB for all
    # Prediction streams too (the same rows in the same order), with or without a cache.
    np.testing.assert_array_equal(streamed.predict_proba(StreamedGrids(paths, adapter, cache=False, num_workers=2)),
                                  in_memory.predict_proba(adapter.transform(paths)))


@pytest.mark.parametrize("cache", [False, True])
def test_decoding_threads_train_what_worker_processes_train(pngs, in_memory, tmp_path, one_thread, cache):
    paths, y, adapter = pngs
    stream = StreamedGrids(paths, adapter, cache=tmp_path if cache else False, num_workers=2, threads=True)
    streamed = GridCNNClassifier(**RANDOM).fit(stream, y)
    assert states_equal(streamed, in_memory) and "threads" in repr(stream)
    np.testing.assert_array_equal(
        streamed.predict_proba(StreamedGrids(paths, adapter, cache=False, num_workers=2, threads=True)),
        in_memory.predict_proba(adapter.transform(paths)))


def test_a_failing_decoding_thread_ends_the_fit_in_one_line_keeping_the_last_epoch(pngs, tmp_path, one_thread,
                                                                                    monkeypatch):
    paths, y, adapter = pngs
    flag = tmp_path / "fail"
    real = _decode.FileGrids.decode

    def fails_once_flagged(self, index, adapter):
        if flag.exists():
            raise MemoryError("Unable to allocate 64.0 MiB")
        return real(self, index, adapter)

    monkeypatch.setattr(_decode.FileGrids, "decode", fails_once_flagged)
    params = {**RANDOM, "lr_schedule": "constant", "validation_fraction": None}
    est = GridCNNClassifier(**params, callbacks=[lambda est, record: flag.touch() if record["epoch"] == 2 else None])
    with pytest.raises(GridCNNError) as info:
        est.fit(StreamedGrids(paths, adapter, cache=False, num_workers=2, threads=True), y)
    assert str(info.value).startswith("A data-decoding worker failed: a decoding thread raised MemoryError: Unable "
                                      "to allocate 64.0 MiB. The fit stopped; the model keeps the last finished epoch")
    two = GridCNNClassifier(**{**params, "max_epochs": 2}).fit(adapter.transform(paths), y)
    assert est.n_iter_ == 2 and states_equal(est, two)


def test_streamed_sound_fit_equals_the_in_memory_fit(wavs, tmp_path, one_thread):
    paths, y, adapter = wavs
    params = {**RANDOM, "max_epochs": 2}
    whole = GridCNNClassifier(**params).fit(adapter.transform(paths), y)
    streamed = GridCNNClassifier(**params).fit(StreamedGrids(paths, adapter, cache=tmp_path, num_workers=2), y)
    assert states_equal(streamed, whole)
    threads = StreamedGrids(paths, adapter, cache=False, num_workers=2, threads=True)  # soundfile + soxr in threads
    assert states_equal(GridCNNClassifier(**params).fit(threads, y), whole)
    np.testing.assert_array_equal(streamed.predict(StreamedGrids(paths, adapter, cache=False)),
                                  whole.predict(adapter.transform(paths)))


def test_resume_of_a_streamed_fit_equals_the_uninterrupted_fit(pngs, in_memory, tmp_path, one_thread):
    paths, y, adapter = pngs
    ckpt = tmp_path / "ckpt.safetensors"

    def stop_after_2(est, record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    stream = StreamedGrids(paths, adapter, cache=tmp_path, num_workers=1)
    with pytest.raises(KeyboardInterrupt):
        GridCNNClassifier(**RANDOM, checkpoint=ckpt, callbacks=[stop_after_2]).fit(stream, y)
    assert read_checkpoint(ckpt)[0]["done"] == 2
    resumed = GridCNNClassifier(**RANDOM, checkpoint=ckpt).fit(StreamedGrids(paths, adapter, cache=False), y,
                                                                resume_from=ckpt)
    assert states_equal(resumed, in_memory) and resumed.n_iter_ == 3
    # Other files are other data: the checkpoint refuses them.
    with pytest.raises(GridCNNError, match="other training data"):
        GridCNNClassifier(**RANDOM).fit(StreamedGrids(paths[:-1], adapter, cache=False), y[:-1], resume_from=ckpt)


# -- the cache -------------------------------------------------------------------------------------------------------


def decoded(monkeypatch):
    """Record the index of every file decoded in this process (workers=0)."""
    seen, real = [], _decode.FileGrids.__getitem__

    def spy(self, index):
        seen.append(int(index))
        return real(self, index)

    monkeypatch.setattr(_decode.FileGrids, "__getitem__", spy)
    return seen


def test_the_cache_is_written_once_and_read_by_later_runs(pngs, tmp_path, monkeypatch):
    paths, y, adapter = pngs
    seen = decoded(monkeypatch)
    first = StreamedGrids(paths, adapter, cache=tmp_path, num_workers=0).prepare()
    assert sorted(seen) == [0, *range(len(paths))]  # the shape probe, then every file once
    assert [p.suffix for p in sorted(tmp_path.iterdir())] == [".json", ".npy"]  # nothing temporary left
    np.testing.assert_array_equal(np.load(first.cache_path_), adapter.transform(paths))
    seen.clear()
    again = StreamedGrids(paths, adapter, cache=tmp_path, num_workers=0)
    GridCNNClassifier(**{**RANDOM, "max_epochs": 1}).fit(again, y)
    assert again.cache_path_ == first.cache_path_ and seen == [0]  # only the shape probe decoded a file


def test_a_changed_file_other_params_or_version_rebuild_the_cache(pngs, tmp_path, monkeypatch):
    paths, y, adapter = pngs
    copies = tmp_path / "data"
    copies.mkdir()
    local = []
    for i, p in enumerate(paths[:6]):
        local.append(str(copies / f"{i}.png"))
        Image.open(p).save(local[-1])
    cache = tmp_path / "cache"
    old = StreamedGrids(local, adapter, cache=cache, num_workers=0).prepare().cache_path_
    # A file rewritten with other pixels: another key, the grids rebuilt from the new file, the stale cache gone.
    Image.fromarray(np.full((12, 12), 7, np.uint8)).save(local[2])
    os.utime(local[2], ns=(1, 1))  # a new mtime even on file systems with coarse timestamps
    new = StreamedGrids(local, adapter, cache=cache, num_workers=0).prepare()
    assert new.cache_path_ != old and not old.exists()
    np.testing.assert_array_equal(np.load(new.cache_path_), adapter.transform(local))
    # Other parameters, or another gridcnn version: never read, rebuilt.
    other = ImageGrid(size=(8, 8)).fit(local)
    assert StreamedGrids(local, other, cache=cache).prepare().cache_path_ != new.cache_path_
    monkeypatch.setattr(_cache, "versions", lambda: {"gridcnn": "99.0"})
    seen = decoded(monkeypatch)
    assert StreamedGrids(local, adapter, cache=cache, num_workers=0).prepare().cache_path_ != new.cache_path_
    assert len(seen) == len(local) + 1
    # A sidecar that does not match its key (written by another build) is not trusted either.
    path = StreamedGrids(local, adapter, cache=cache, num_workers=0).prepare().cache_path_
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "digest": "0" * 64}))
    seen.clear()
    StreamedGrids(local, adapter, cache=cache, num_workers=0).prepare()
    assert len(seen) == len(local) + 1


# -- bad input -------------------------------------------------------------------------------------------------------


def test_a_bad_file_in_the_first_pass_is_skipped_with_its_label_or_stops_the_build(pngs, tmp_path, one_thread):
    paths, y, adapter = pngs
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    files, labels = [*paths[:4], *paths[-4:], str(bad)], np.array([*y[:4], *y[-4:], "c1"])
    skip = ImageGrid(size=(10, 10), on_error="skip").fit(files[:8])
    with pytest.warns(UserWarning, match=r"Skipped 1 of 9 files .*bad\.png"):
        stream = StreamedGrids(files, skip, cache=tmp_path / "skip", num_workers=1)
        est = GridCNNClassifier(**{**RANDOM, "max_epochs": 1, "validation_fraction": None}).fit(stream, labels)
    assert stream.kept_.tolist() == [True] * 8 + [False] and stream.skipped_[0]["path"] == str(bad)
    assert est.classes_.tolist() == ["c0", "c2"]  # the bad file's label went with it
    strict = ImageGrid(size=(10, 10)).fit(files[:8])
    with pytest.raises(GridCNNError, match=re.escape(f"Could not read {str(bad)!r} as an image")):
        StreamedGrids(files, strict, cache=tmp_path / "raise", num_workers=1).prepare()
    assert not list((tmp_path / "raise").iterdir())  # no cache, no temporary file



def spoil_in_epoch(path, epoch, how):
    """A callback that deletes or corrupts ``path`` at the end of ``epoch``."""
    def callback(est, record):
        if record["epoch"] == epoch:
            if how == "delete":
                os.remove(path)
            else:
                with open(path, "wb") as f:
                    f.write(b"not a png at all")
    return callback


@pytest.mark.parametrize("how", ["delete", "corrupt"])
def test_a_file_spoiled_between_epochs_follows_on_error(pngs, tmp_path, one_thread, how):
    paths, y, _ = pngs
    local = [str(tmp_path / f"{i}.png") for i in range(len(paths))]
    for src, dst in zip(paths, local):
        Image.open(src).save(dst)
    params = {**RANDOM, "lr_schedule": "constant", "validation_fraction": None}
    skip = ImageGrid(size=(10, 10), on_error="skip").fit(local)
    with pytest.warns(UserWarning, match=r"Skipped .*" + os.path.basename(local[5]) + r" \(on_error='skip'\)"):
        est = GridCNNClassifier(**params, callbacks=[spoil_in_epoch(local[5], 1, how)])
        est.fit(StreamedGrids(local, skip, cache=False, num_workers=1), y)
    assert est.n_iter_ == 3

    Image.open(paths[5]).save(local[5])
    strict = ImageGrid(size=(10, 10)).fit(local)
    two = GridCNNClassifier(**{**params, "max_epochs": 2}).fit(strict.transform(local), y)
    est = GridCNNClassifier(**params, callbacks=[spoil_in_epoch(local[5], 2, how)])
    with pytest.raises(GridCNNError) as info:
        est.fit(StreamedGrids(local, strict, cache=False, num_workers=2), y)
    message = str(info.value)
    assert local[5] in message and "on_error='skip'" in message and "\n" not in message
    assert est.n_iter_ == 2 and states_equal(est, two)  # the last finished epoch is kept


def test_a_worker_that_dies_ends_the_fit_in_one_line_keeping_the_last_epoch(pngs, tmp_path, one_thread, monkeypatch):
    paths, y, adapter = pngs
    flag = tmp_path / "die"
    real = _decode.FileGrids.__getitem__

    def dies_once_flagged(self, index):
        if flag.exists():
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, index)

    monkeypatch.setattr(_decode.FileGrids, "__getitem__", dies_once_flagged)
    params = {**RANDOM, "lr_schedule": "constant", "validation_fraction": None}
    est = GridCNNClassifier(**params, callbacks=[lambda est, record: flag.touch() if record["epoch"] == 2 else None])
    with pytest.raises(GridCNNError) as info:
        est.fit(StreamedGrids(paths, adapter, cache=False, num_workers=1), y)
    message = str(info.value)
    assert message.startswith("A data-decoding worker failed: DataLoader worker (pid") and "\n" not in message
    assert ("killed by signal" in message or "exited unexpectedly" in message) and "last finished epoch" in message
    two = GridCNNClassifier(**{**params, "max_epochs": 2}).fit(adapter.transform(paths), y)
    assert est.n_iter_ == 2 and states_equal(est, two)


def test_fit_adapter_learns_from_a_seeded_sample(pngs):
    paths, _, _ = pngs
    sampled = fit_adapter(ImageGrid(size=(10, 10), standardize=True), paths, max_files=9, random_state=0)
    again = fit_adapter(ImageGrid(size=(10, 10), standardize=True), paths, max_files=9, random_state=0)
    np.testing.assert_array_equal(sampled.mean_, again.mean_)
    whole = ImageGrid(size=(10, 10), standardize=True).fit(paths)
    assert not np.array_equal(sampled.mean_, whole.mean_) and np.allclose(sampled.mean_, whole.mean_, atol=0.2)


# -- recipes and the command line ------------------------------------------------------------------------------------

STREAM_RECIPE = """
[data]
path = "{root}"
test_fraction = 0.25
stream = {stream}
cache = "{cache}"
num_workers = 1

[adapter]
name = "image"
size = [10, 10]
standardize = true

[estimator]
filters = [4, 8]
hidden = [16]
max_epochs = 2
batch_size = 8
random_state = 0
device = "cpu"
"""


@pytest.mark.slow  # two recipe runs with plots: about 10 s on a quiet machine
def test_a_streamed_recipe_trains_what_the_in_memory_recipe_trains(pngs, tmp_path, one_thread):
    from typer.testing import CliRunner

    from gridcnn.cli.commands import app
    from gridcnn.workflow.recipes import read_recipe
    from gridcnn.workflow.runs import fit_recipe

    root = os.path.dirname(os.path.dirname(pngs[0][0]))
    runs = {}
    for stream in ("true", "false"):
        recipe = tmp_path / f"{stream}.toml"
        recipe.write_text(STREAM_RECIPE.format(root=root, stream=stream, cache=tmp_path / "cache"))
        runs[stream] = fit_recipe(read_recipe(recipe), tmp_path / stream, verbose=0)
    streamed, in_memory = runs["true"], runs["false"]
    assert "decode_s" in streamed["timings"] and "decode_s" not in in_memory["timings"]
    for key in ("accuracy", "confusion_matrix", "n_train", "grid_shape"):
        assert streamed[key] == in_memory[key]
    assert (tmp_path / "true" / "history.csv").read_text() .split("\n")[1].split(",")[:3] == \
        (tmp_path / "false" / "history.csv").read_text().split("\n")[1].split(",")[:3]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    # gridcnn predict on a folder decodes it batch by batch: the same probabilities as the model on the paths.
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "true"), root, "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    model = gridcnn.load(tmp_path / "true")
    proba = model.predict_proba([line["input"] for line in lines])
    assert [line["probability"] for line in lines] == [round(float(p.max()), 6) for p in proba]


# -- torchrun --------------------------------------------------------------------------------------------------------

DDP_SCRIPT = """
import json, sys
import numpy as np, torch
from safetensors.torch import save_file
from gridcnn import GridCNNClassifier
from gridcnn.training.distributed import world
from gridcnn.adapters import ImageGrid
from gridcnn.data import load_dataset
from gridcnn.streaming import StreamedGrids, _decode

seen, real = [], _decode.FileGrids.__getitem__
_decode.FileGrids.__getitem__ = lambda self, i: (seen.append(int(i)), real(self, i))[1]
torch.set_num_threads(1)
out, params = sys.argv[1], json.loads(sys.argv[2])
paths, y = load_dataset("image_folder", path=sys.argv[3])
paths = list(paths)
adapter = ImageGrid(size=(10, 10)).fit(paths)
rank = world()[0]
memory = GridCNNClassifier(**params).fit(adapter.transform(paths), y)
cached = GridCNNClassifier(**params).fit(StreamedGrids(paths, adapter, cache=out + "/cache", num_workers=0), y)
built = sorted(seen)
seen.clear()
decoded = GridCNNClassifier(**params).fit(StreamedGrids(paths, adapter, cache=False, num_workers=1), y)
for name, est in (("memory", memory), ("cached", cached), ("decoded", decoded)):
    save_file(est.model_.state_dict(), f"{out}/{name}{rank}.safetensors")
json.dump({"built": built}, open(f"{out}/rank{rank}.json", "w"))
"""


@pytest.mark.slow  # two processes, three fits each: about 15 s on a quiet machine
def test_under_torchrun_each_rank_decodes_its_shard_and_the_fit_equals_the_in_memory_one(pngs, tmp_path):
    from safetensors.torch import load_file

    root = os.path.dirname(os.path.dirname(pngs[0][0]))
    script = tmp_path / "fit.py"
    script.write_text(DDP_SCRIPT)
    params = {k: v for k, v in RANDOM.items() if k not in ("lr_schedule",)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path), json.dumps(params), root]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    n = len(pngs[0])
    for rank in (0, 1):
        # The first decoding pass: the shape probe (file 0), then every other file, from this rank's offset.
        built = json.loads((tmp_path / f"rank{rank}.json").read_text())["built"]
        assert built == sorted([0, *range(rank, n, 2)])
        weights = {name: load_file(tmp_path / f"{name}{rank}.safetensors") for name in ("memory", "cached", "decoded")}
        for name in ("cached", "decoded"):
            assert all(torch.equal(weights[name][k], weights["memory"][k]) for k in weights["memory"])
