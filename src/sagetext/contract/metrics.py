"""Log lines in the SageMaker built-ins' format:
``[MM/DD/YYYY HH:MM:SS INFO <thread-id>] #validation_accuracy: 0.92``, and the same values as
TensorBoard scalars and in ``metrics.json``.

The regexes an Estimator needs for these lines live in ``configs/<algorithm>.toml``.

``MetricLogger`` is the one place a training job reports numbers: ``log`` prints a metric line
(and keeps its latest value for ``metrics.json``), ``scalar`` records a value that has no metric
line (a progress line's rate, learning rate or running loss), ``text`` and ``image`` record
NTM's topics and Seq2Seq's attention. With an ``EventWriter`` (``contract.tensorboard``), all of
them also go to TensorBoard event files; without one, only ``log`` prints.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from sagetext.contract.tensorboard import EventWriter

LOG_FORMAT = "[%(asctime)s %(levelname)s %(thread)d] %(message)s"
DATE_FORMAT = "%m/%d/%Y %H:%M:%S"

log = logging.getLogger("sagetext")


def configure_logging(level: int = logging.INFO) -> None:
    """One handler on stdout for the whole ``sagetext`` logger tree (idempotent)."""
    if any(getattr(h, "_sagetext", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    handler._sagetext = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


class MetricLogger:
    """Prints ``#name: value`` lines; silent on every rank but 0 so each metric appears once.

    ``step`` is the x-axis in TensorBoard (epoch, update, words trained); when a metric is
    logged without one, its step is the number of times it was logged before.
    """

    def __init__(self, enabled: bool = True, events: EventWriter | None = None) -> None:
        self.enabled = enabled
        self.events = events if enabled else None
        self.final: dict[str, float] = {}  # the latest value of each metric line: metrics.json
        self._counts: dict[str, int] = {}

    @property
    def recording(self) -> bool:
        """Whether values go to TensorBoard: work done only for it (attention maps) can be skipped otherwise."""
        return self.events is not None

    def log(self, name: str, value: float, step: int | None = None) -> None:
        if not self.enabled:
            return
        log.info("#%s: %s", name, _format(value))
        self.final[name] = value
        self.scalar(name, value, step)

    def scalar(self, name: str, value: float, step: int | None = None) -> None:
        """A value for TensorBoard only (no log line)."""
        if self.events is not None:
            self.events.scalar(name, value, self._step(name, step))

    def text(self, name: str, text: str, step: int | None = None) -> None:
        if self.events is not None:
            self.events.text(name, text, self._step(name, step))

    def image(self, name: str, image: np.ndarray, step: int | None = None) -> None:
        """``image``: (height, width, 3) floats in [0, 1]."""
        if self.events is not None:
            self.events.image(name, image, self._step(name, step))

    def close(self) -> None:
        if self.events is not None:
            self.events.close()

    def _step(self, name: str, step: int | None) -> int:
        count = self._counts.get(name, 0)
        self._counts[name] = count + 1
        return count if step is None else int(step)


def _format(value: float) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
