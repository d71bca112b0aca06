"""BlazingText's progress lines, logged from the training loop (the gensim path's format).

``Alpha: 0.0413  Progress: 17.60%  Million Words/sec: 5.82  ETA: 3m 05s`` every few seconds,
then ``Training finished!``, ``Average throughput in Million words/sec: ...`` and ``Total
training time in seconds: ...``. Words are raw tokens (before min_count and subsampling) summed
over all workers, as SageMaker counts them. The device is synchronized before each line, so the
rate is what the GPU did, not what the host queued.
"""

from __future__ import annotations

import torch

from sagetext.algorithms.blazingtext.word2vec.learning_rate import MIN_ALPHA_FRACTION
from sagetext.algorithms.blazingtext.word2vec.progress import PROGRESS_SECONDS, log_finished, log_progress
from sagetext.contract import progress
from sagetext.contract.metrics import MetricLogger


class Progress:
    def __init__(self, total_words: int, learning_rate: float, device: torch.device, enabled: bool = True,
                 interval: float = PROGRESS_SECONDS, start_words: int = 0,
                 metrics: MetricLogger | None = None) -> None:
        self.total_words = max(total_words, 1)
        self.learning_rate = learning_rate
        self.device = device
        self.enabled = enabled
        self.metrics = metrics
        # words trained before a restart are not part of this run's speed
        self.run = progress.Progress(self.total_words, start_words, interval)

    @property
    def start_words(self) -> int:
        return int(self.run.start)

    @property
    def words(self) -> int:
        return int(self.run.done)

    @property
    def seconds(self) -> float:
        return self.run.seconds

    @property
    def speed(self) -> float:
        """Words per second in this run."""
        return self.run.rate

    def advance(self, words: int) -> None:
        """``words``: raw words trained so far; logs a line when the interval has passed."""
        self.run.update(words)
        if self.enabled and self.run.due():
            self._log_line()

    def finish(self) -> None:
        self._log_line()
        if self.enabled:
            log_finished(self.speed, self.seconds)

    def _log_line(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if not self.enabled:
            return
        done = min(self.words / self.total_words, 1.0)
        alpha = self.learning_rate * max(1.0 - done, MIN_ALPHA_FRACTION)
        log_progress(alpha, done, self.speed, self.run.eta_text(), self.metrics, self.words)
