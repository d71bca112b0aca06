"""BlazingText's progress and end-of-training lines, logged by both word2vec engines.

``Alpha: 0.0413  Progress: 17.60%  Million Words/sec: 5.82  ETA: 3m 05s`` every few seconds,
then ``Training finished!``, ``Average throughput in Million words/sec: ...`` and ``Total
training time in seconds: ...``. Words are raw tokens (before min_count and subsampling), as
SageMaker and fastText count them, so rates compare with theirs. The ETA (ours; fastText prints
one too) is the time left at this run's rate. With a metric logger, the learning rate and the
rate also go to TensorBoard, against the words trained so far.
"""

from __future__ import annotations

import logging

from sagetext.contract.metrics import MetricLogger
from sagetext.contract.progress import PROGRESS_SECONDS  # noqa: F401 - the engines' interval

log = logging.getLogger("sagetext.algorithms.blazingtext.word2vec")


def log_progress(alpha: float, progress: float, words_per_second: float, eta: str = "",
                 metrics: MetricLogger | None = None, words: int = 0) -> None:
    """BlazingText's progress line (``progress`` a fraction of the whole run; ``eta`` as
    ``contract.progress.Progress.eta_text`` gives it; ``words`` trained so far, the x-axis)."""
    log.info("Alpha: %.4f  Progress: %.2f%%  Million Words/sec: %.2f%s", alpha, 100 * progress,
             words_per_second / 1e6, f"  ETA: {eta}" if eta else "")
    if metrics is not None:
        metrics.scalar("train:learning_rate", alpha, words)
        metrics.scalar("train:million_words_per_sec", words_per_second / 1e6, words)


def log_finished(words_per_second: float, seconds: float) -> None:
    """BlazingText's lines at the end of training."""
    log.info("Training finished!")
    log.info("Average throughput in Million words/sec: %.2f", words_per_second / 1e6)
    log.info("Total training time in seconds: %.2f", seconds)
