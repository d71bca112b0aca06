"""Log lines in the SageMaker built-ins' format:
``[MM/DD/YYYY HH:MM:SS INFO <thread-id>] #validation_accuracy: 0.92``.

The regexes an Estimator needs for these lines live in ``configs/<algorithm>.toml``.
"""

from __future__ import annotations

import logging
import sys

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
    """Prints ``#name: value`` lines; silent on every rank but 0 so each metric appears once."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def log(self, name: str, value: float) -> None:
        if self.enabled:
            log.info("#%s: %s", name, _format(value))


def _format(value: float) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
