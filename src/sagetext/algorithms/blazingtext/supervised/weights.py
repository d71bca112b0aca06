"""What the training loop, checkpoints and ``model.bin`` need of a supervised model's weights.

Two implementations: ``model.Model`` (torch tensors, on any device; the PyTorch SGD) and
``compiled.ArrayModel`` (numpy arrays; the compiled per-line SGD of a one-worker CPU job,
which never imports torch).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from sagetext.algorithms.blazingtext.supervised.encoding import Encoded


class Weights(Protocol):
    def fasttext_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(input with its rows in fastText's order, output), as numpy arrays on the CPU."""
        ...

    def load_fasttext_(self, input: np.ndarray, output: np.ndarray) -> None:
        """Set the weights from matrices in fastText's row order."""
        ...

    def clone(self) -> Any: ...

    def copy_(self, other: Any) -> None: ...

    def is_finite(self) -> bool: ...

    def top_labels_of(self, lines: Encoded, loss: Any) -> np.ndarray:
        """The predicted (best-scoring) label of each line."""
        ...
