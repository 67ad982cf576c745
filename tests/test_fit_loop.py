"""The epoch loop on its own: hooks, stopping, data sources and augmentations, without the estimator."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from gridcnn.training.loop import FitState, Hook, LoopConfig, TensorSource, run_epochs
from gridcnn.training.hooks.early_stopping import EarlyStopping
from gridcnn.training.steps import make_optimizer
from gridcnn.backbone import resolve_spec

X, y = load_digits(return_X_y=True)
X = (X[:256] / 16).astype(np.float32).reshape(-1, 1, 8, 8)
y = y[:256]


def network(seed=0):
    torch.manual_seed(seed)
    model = resolve_spec(None, filters=4, hidden=8).build((1, 8, 8), 10)
    return model, make_optimizer("adamw", model.parameters(), 3e-3, 0.0)


def fit(source, hooks=(), epochs=3, augment=None):
    model, optimizer = network()
    history = run_epochs(model, optimizer, source, LoopConfig(epochs=epochs, batch_size=32, seed=1, augment=augment),
                         hooks)
    return model, history


class Recorder(Hook):
    def __init__(self, stop_after=None):
        self.events, self.stop_after = [], stop_after

    def on_fit_start(self, fit):
        self.events.append("start")

    def on_epoch_end(self, fit, record):
        self.events.append(record["epoch"])
        if record["epoch"] == self.stop_after:
            fit.stop = True

    def on_fit_end(self, fit):
        self.events.append(("end", fit.completed))


def test_a_hook_stops_the_loop_after_the_current_epoch_and_the_fit_completes():
    recorder = Recorder(stop_after=2)
    _, history = fit(TensorSource.from_arrays(X, y, torch.device("cpu")), [recorder], epochs=5)
    assert [r["epoch"] for r in history] == [1, 2]
    assert recorder.events == ["start", 1, 2, ("end", True)]


def test_an_exception_in_a_hook_rolls_back_to_the_last_epoch_all_hooks_accepted():
    class Refuse(Hook):
        def on_epoch_end(self, fit, record):
            if record["epoch"] == 2:
                raise RuntimeError("no")

    recorder = Recorder()
    model, optimizer = network()
    seen = []
    with pytest.raises(RuntimeError):
        run_epochs(model, optimizer, TensorSource.from_arrays(X, y, torch.device("cpu")),
                   LoopConfig(epochs=4, batch_size=32, seed=1), [recorder, Refuse(), Recorder()], history=seen)
    after_one, _ = fit(TensorSource.from_arrays(X, y, torch.device("cpu")), epochs=1)
    assert [r["epoch"] for r in seen] == [1]  # the caller's list, rolled back in place
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), after_one.state_dict().values()))
    assert recorder.events == ["start", 1, 2, ("end", False)]


class NumpySource:
    """Another data source, as a streamed one would be: rows read from numpy in the order the loop gives."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def batches(self, order, batch_size):
        order = order.numpy()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield torch.from_numpy(self.X[idx]), torch.from_numpy(self.y[idx].astype(np.int64))


def test_any_source_given_the_same_order_trains_the_same_network_bit_for_bit():
    a, ha = fit(TensorSource.from_arrays(X, y, torch.device("cpu")))
    b, hb = fit(NumpySource(X, y))
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_an_augmentation_is_one_callable_applied_to_every_training_batch():
    calls = []

    def flip(xb, generator):
        calls.append(len(xb))
        flipped = torch.rand(len(xb), generator=generator) < 0.5
        return torch.where(flipped[:, None, None, None], xb.flip(-1), xb)

    a, _ = fit(TensorSource.from_arrays(X, y, torch.device("cpu")), augment=flip)
    assert calls == [32] * 8 * 3  # 256 rows, batches of 32, 3 epochs
    b, _ = fit(TensorSource.from_arrays(X, y, torch.device("cpu")), augment=flip)
    plain, _ = fit(TensorSource.from_arrays(X, y, torch.device("cpu")))
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())  # drawn from the epoch's seed
    assert not all(torch.equal(v, plain.state_dict()[k]) for k, v in a.state_dict().items())  # it did something


def test_early_stopping_state_goes_through_a_state_dict():
    model, optimizer = network()
    fit_state = FitState(model, optimizer, LoopConfig(epochs=5, batch_size=32, seed=0))
    hook = EarlyStopping(patience=2)
    for loss in (1.0, 0.5, 0.6):
        hook.on_epoch_end(fit_state, {"valid_loss": loss})
    again = EarlyStopping(patience=2)
    again.load_state_dict(hook.state_dict())
    assert (again.best_loss, again.stale) == (0.5, 1) and not fit_state.stop
    again.on_epoch_end(fit_state, {"valid_loss": 0.7})
    assert fit_state.stop
    fresh = FitState(model, optimizer, LoopConfig(epochs=5, batch_size=32, seed=0))
    again.on_fit_start(fresh)  # a resumed fit that early stopping had ended trains no more
    assert fresh.stop


def _onecycle(optimizer):
    from gridcnn.training.steps import make_scheduler

    return lambda epochs: make_scheduler("onecycle", optimizer, 3e-3, epochs, 8)  # 256 rows / 32 = 8 steps


def test_a_replanned_fit_runs_its_whole_schedule_over_the_epochs_planned():
    class Plan(Hook):
        def on_epoch_end(self, fit, record):
            if record["epoch"] == 1:
                fit.replan(3)

    source = TensorSource.from_arrays(X, y, torch.device("cpu"))
    model, optimizer = network()
    replanned = run_epochs(model, optimizer, source, LoopConfig(epochs=20, batch_size=32, seed=1), [Plan()],
                           schedule=_onecycle(optimizer))
    model, optimizer = network()
    planned = run_epochs(model, optimizer, source, LoopConfig(epochs=3, batch_size=32, seed=1),
                         schedule=_onecycle(optimizer))
    assert len(replanned) == 3
    # Epoch 1 ran at the 20-epoch schedule's (lower) warm-up rates; after it the 3-epoch schedule's rates, its
    # annealing to ~0 included: the last rate is the planned fit's, not the 20-epoch schedule's peak.
    assert replanned[0]["lr"] < planned[0]["lr"]
    assert [r["lr"] for r in replanned[1:]] == pytest.approx([r["lr"] for r in planned[1:]])
    assert replanned[-1]["lr"] < 3e-3 / 100


def test_a_plan_goes_into_the_checkpoint_and_a_resumed_fit_keeps_it():
    class PlanThenCrash(Hook):
        def on_epoch_end(self, fit, record):
            if record["epoch"] == 1:
                fit.replan(4)
            self.state = copy.deepcopy(fit.state_dict())  # as the checkpoint file holds it
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    source = TensorSource.from_arrays(X, y, torch.device("cpu"))
    model, optimizer = network()
    crash = PlanThenCrash()
    with pytest.raises(KeyboardInterrupt):
        run_epochs(model, optimizer, source, LoopConfig(epochs=20, batch_size=32, seed=1), [crash],
                   schedule=_onecycle(optimizer))
    state = crash.state  # the checkpoint after epoch 2
    assert state["epochs"] == 4
    model, optimizer = network()
    history = run_epochs(model, optimizer, source, LoopConfig(epochs=20, batch_size=32, seed=1),
                         schedule=_onecycle(optimizer), resume=state)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and history[-1]["lr"] < 3e-3 / 100


@pytest.mark.slow
def test_a_time_limit_plans_the_epochs_and_the_schedule_finishes_inside_the_budget():
    import time

    from gridcnn import GridCNNClassifier
    from gridcnn.training.hooks.time_limit import TimeLimit

    warm = GridCNNClassifier(input_shape=(8, 8), max_epochs=3, random_state=0).fit(X[:, 0], y)  # imports, warm-up
    # A budget of about 25 epochs at this machine's speed now: a quiet machine fits all 100 in a fixed 8 s, a loaded
    # one ten times fewer, so a fixed budget tests nothing on one of them.
    budget = max(1.0, 25 * max(r["time"] for r in warm.history_[1:]))
    limit = TimeLimit(budget)
    t0 = time.perf_counter()
    clf = GridCNNClassifier(input_shape=(8, 8), random_state=0, callbacks=[limit]).fit(X[:, 0], y)
    elapsed = time.perf_counter() - t0
    assert limit.asked == clf.max_epochs_ == 100  # "auto" on 256 rows: the cap
    assert 2 <= limit.planned == clf.n_iter_ < 100 and limit.stopped_after is None
    assert elapsed < budget
    # The schedule ran to its end (one-cycle anneals to ~0), where cutting at the limit would leave it near its peak.
    assert clf.history_[-1]["lr"] < clf.lr / 20 and max(r["lr"] for r in clf.history_) > clf.lr / 2
