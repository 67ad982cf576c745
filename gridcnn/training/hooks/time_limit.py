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
    """Stop the fit when the time used plus the longest epoch so far would pass ``seconds``.

    The first epoch always runs; from then on the fit stops after the last epoch that fits (the loop's
    ``fit.stop``), so a run given ``--time-limit 10m`` ends within about ten minutes with every finished epoch kept.
    Pass it in ``fit(X, y, hooks=[...])`` (or the estimator's ``callbacks``). ``stopped_after`` is the epoch it
    stopped after, or None.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()
        self.longest = 0.0
        self.stopped_after = None

    def on_epoch_end(self, fit, record) -> None:
        self.longest = max(self.longest, record["time"])
        left = fit.done < fit.config.epochs
        over = left and time.perf_counter() - self.start + self.longest > self.seconds
        # Under torchrun rank 0's clock decides for all: ranks that disagreed would wait on each other forever.
        if broadcast_int(int(over), next(fit.model.parameters()).device):
            self.stopped_after = record["epoch"]
            fit.stop = True
