"""The word2vec learning rate as a line in epochs done, shared by both word2vec engines."""

from __future__ import annotations

from dataclasses import dataclass

MIN_ALPHA_FRACTION = 1e-4  # word2vec.c: alpha never falls below starting_alpha * 1e-4


@dataclass(frozen=True)
class Schedule:
    """The learning rate, linear in epochs done: ``start`` at ``origin``, ``end`` at ``epochs``.

    A fresh job starts at ``learning_rate`` at 0; a resumed one at the saved rate at the saved
    position, so with the same ``epochs`` it is the uninterrupted run's line, and with more it
    decays on from where it stood instead of jumping up.
    """

    start: float
    end: float
    origin: float
    epochs: int

    def at(self, epochs_done: float) -> float:
        """The rate after ``epochs_done`` epochs (element-wise on a tensor of them, too)."""
        span = self.epochs - self.origin
        if span <= 0:
            return self.end
        return self.start + (self.end - self.start) * (epochs_done - self.origin) / span
