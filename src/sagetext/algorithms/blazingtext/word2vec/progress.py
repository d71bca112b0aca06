"""BlazingText's progress and end-of-training lines, logged by both word2vec engines.

``Alpha: 0.0413  Progress: 17.60%  Million Words/sec: 5.82`` every few seconds, then
``Training finished!``, ``Average throughput in Million words/sec: ...`` and ``Total training
time in seconds: ...``. Words are raw tokens (before min_count and subsampling), as SageMaker
and fastText count them, so rates compare with theirs.
"""

from __future__ import annotations

import logging

log = logging.getLogger("sagetext.algorithms.blazingtext.word2vec")

PROGRESS_SECONDS = 5.0


def log_progress(alpha: float, progress: float, words_per_second: float) -> None:
    """BlazingText's progress line (``progress`` a fraction of the whole run)."""
    log.info("Alpha: %.4f  Progress: %.2f%%  Million Words/sec: %.2f", alpha, 100 * progress, words_per_second / 1e6)


def log_finished(words_per_second: float, seconds: float) -> None:
    """BlazingText's lines at the end of training."""
    log.info("Training finished!")
    log.info("Average throughput in Million words/sec: %.2f", words_per_second / 1e6)
    log.info("Total training time in seconds: %.2f", seconds)
