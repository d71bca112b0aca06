"""Percentages and ETAs for the progress lines of long work: training, data preparation, predict.

Each job keeps its own line (BlazingText's ``Alpha: ...  Progress: ...  Million Words/sec: ...``,
NTM's ``Epoch 3/50: ...``, Seq2Seq's ``Update [1200/20000] ...``); ``Progress`` adds what every
line needs the same way: how much of the whole is done, the rate of this run, and the time left
at that rate, and it says when a line is due (at most one every ``PROGRESS_SECONDS``). The rate
counts only this run, so a job resumed from a checkpoint does not credit its first seconds with
the work done before the restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PROGRESS_SECONDS = 5.0


def duration(seconds: float) -> str:
    """``3h 02m``, ``4m 05s`` or ``12s``: a time left, short and readable."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class Progress:
    """Work done out of ``total`` (any unit: words, updates, bytes, epochs); ``start`` is what
    was already done when this run began."""

    def __init__(self, total: float, start: float = 0.0, interval: float = PROGRESS_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.start = self.done = start
        self.interval = interval
        self.clock = clock
        self.started = self.last_line = clock()

    def update(self, done: float) -> None:
        self.done = done

    def due(self) -> bool:
        """True at most once every ``interval`` seconds; a True answer restarts the wait."""
        now = self.clock()
        if now - self.last_line < self.interval:
            return False
        self.last_line = now
        return True

    @property
    def seconds(self) -> float:
        return max(self.clock() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Units per second in this run."""
        return (self.done - self.start) / self.seconds

    @property
    def fraction(self) -> float | None:
        """Share of the whole done, in [0, 1]; None when the total is unknown."""
        if not self.total or self.total <= 0:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)

    def eta(self) -> float | None:
        """Seconds left at this run's rate; None when the total is unknown or nothing was done yet."""
        if self.fraction is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0.0) / self.rate

    def eta_text(self) -> str:
        """The time left, ``4m 05s``, or ``unknown`` before the rate is known."""
        eta = self.eta()
        return "unknown" if eta is None else duration(eta)
