"""``--time-limit``: parse a duration, and a hook that stops a fit after the last epoch that fits in it."""

from __future__ import annotations

import re
import time

from gridcnn.training.distributed import broadcast_int
from gridcnn.training.loop import Hook
from gridcnn.exceptions import GridCNNError

_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in "90s", "10m", "1.5h", "1h30m" or a bare number of seconds ("600").

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("90s"), parse_duration("600")
    (5400.0, 90.0, 600.0)
    """
    raw = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(raw)
    except ValueError:
        match = _DURATION.fullmatch(raw)
        if not raw or match is None or not any(match.groups()):
            raise GridCNNError(f"--time-limit takes a duration such as 90s, 10m, 1h30m or a number of seconds. "
                               f"Got {text!r} instead.") from None
        seconds = sum(float(v) * _UNITS[u] for v, u in zip(match.groups(), "hms") if v)
    if seconds <= 0:
        raise GridCNNError(f"--time-limit must be longer than 0 seconds. Got {text!r} instead.")
    return seconds


class TimeLimit(Hook):
    """Fit the whole fit to ``seconds``: measure the first epochs, plan how many fit, and lay the learning-rate
    schedule over those (`FitState.replan`), so the run ends inside the budget with its schedule finished.

    Cutting a fit short instead ends it wherever the clock runs out: a one-cycle schedule planned over 100 epochs and
    stopped at epoch 17 is still warming up (its rate near the peak, validation accuracy at chance on 300 pictures).
    The plan is made after the first epoch of this fit and made again after the second (the first carries one-off
    costs: memory being allocated, a compiled graph, a cache being filled, so from the second on the first is left
    out of the epoch time). Later epochs only shorten it, when they run slower than planned (a machine that other
    jobs load). `SLACK` of the time left is kept in hand, and the plan never holds more epochs than the fit asked
    for. Should an epoch still run long, the fit stops after the last epoch that fits, as before. Under torchrun
    rank 0's clock decides for all (ranks that disagreed would wait on each other forever).

    The budget counts from when the hook is made. Pass it in ``fit(X, y, hooks=[...])`` (or the estimator's ``callbacks``). After the fit:
    ``asked`` (the epochs the fit asked for), ``planned`` (the epochs planned, or None when the budget held them
    all), ``epoch_s`` (the epoch time the last plan used) and ``stopped_after`` (the epoch a late epoch made the
    fit stop after, or None).
    """

    name = "time_limit"
    SLACK = 0.1  # the share of the time left kept in hand: epoch times vary by a few percent alone, more under load

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()
        self.asked = self.planned = self.epoch_s = self.stopped_after = None
        self._times = []  # this fit's epoch times

    def on_fit_start(self, fit) -> None:
        self.asked = self.asked or fit.config.epochs

    def on_epoch_end(self, fit, record) -> None:
        self._times.append(record["time"])
        device = next(fit.model.parameters()).device
        used = time.perf_counter() - self.start
        recent = self._times[1:] or self._times
        # The slowest epoch so far, for the plan and for the stop alike: planned on the mean, a fit on a loaded
        # machine met its stop (the slowest epoch) one epoch before its plan ended, its schedule unfinished.
        self.epoch_s = max(recent)
        fit_in = max(0, int((self.seconds - used) * (1 - self.SLACK) // max(self.epoch_s, 1e-9)))
        plan = broadcast_int(min(self.asked, fit.done + fit_in), device)
        now = fit.config.epochs
        if fit.done < now and (plan < now or (len(self._times) <= 2 and plan > now)):
            fit.replan(plan)
            self.planned = plan if plan < self.asked else None
        over = fit.done < fit.config.epochs and used + self.epoch_s > self.seconds
        if broadcast_int(int(over), device):
            self.stopped_after = record["epoch"]
            fit.stop = True

    def state_dict(self) -> dict:
        return {"asked": self.asked, "planned": self.planned, "epoch_s": self.epoch_s}

    def load_state_dict(self, state: dict) -> None:
        self.asked, self.planned, self.epoch_s = state["asked"], state["planned"], state["epoch_s"]
