"""The compiled SGD of a one-worker CPU supervised job: fastText's per-line update in C.

The PyTorch step (``model.sgd_step``) applies the summed update of a mini-batch of lines,
each op a call into torch; for a CPU job with one worker, per-step Python and dispatch
overhead then costs more than the arithmetic. The C extension ``_sgd`` (csrc/sgd.c, built by
``pip install`` when a C compiler is present) runs fastText's own update instead, one line
at a time, over a whole planned batch: the same model, losses and learning-rate decay, with
the GIL released so that ``train_threads`` Python threads update the weights without locks
(Hogwild), as fastText's threads do. Softmax and one-vs-all only; ``ns`` and ``hs`` train on
the PyTorch path.

Such a job never imports torch (about a second of a short job's start): the weights are numpy
arrays (``ArrayModel``, the same interface as ``model.Model``) and the accuracy passes use the
extension too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from sagetext.algorithms.blazingtext.supervised.batches import LineBatch
from sagetext.algorithms.blazingtext.supervised.encoding import Encoded

log = logging.getLogger(__name__)

# Lines per planned batch on this path: a batch is only the unit of work between checks for a
# stop request (each line is its own SGD step), so large enough that planning and the Python
# call cost nothing next to the arithmetic.
LINES_PER_BATCH = 256
LOSS_CODES = {"softmax": 0, "ova": 1}


def _extension() -> ModuleType | None:
    try:
        from sagetext.algorithms.blazingtext.supervised import _sgd  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _sgd


_sgd = _extension()


def available() -> bool:
    """Whether the extension was built (``pip install`` skips it without a C compiler)."""
    return _sgd is not None


def chosen(device: str, world_size: int, loss: str) -> bool:
    """Whether this job trains with the compiled step: one CPU worker and a loss it implements.

    Logs why not when the job could have used it but the extension is missing."""
    if not device.startswith("cpu") or world_size != 1 or loss not in LOSS_CODES:
        return False
    if _sgd is None:
        log.info("The compiled SGD extension is not built (no C compiler at install time?); training with PyTorch")
        return False
    return True


def seed_of(seed: tuple[int, ...], stream: int) -> int:
    """A random stream's seed from the run's: batch ``stream``'s (a label drawn among a line's
    several), or the initial weights' (-1)."""
    return int(np.random.SeedSequence([*seed, stream + 1]).generate_state(1, dtype=np.uint64)[0])


def train_batch(input: np.ndarray, output: np.ndarray, batch: LineBatch, lr_start: float, lr_end: float, loss: str,
                seed: tuple[int, ...]) -> None:
    """fastText's per-line SGD over ``batch``'s lines, in place; the rate falls from ``lr_start``
    to ``lr_end`` over them. ``input`` and ``output`` are float32 matrices (rows x dim)."""
    assert _sgd is not None, "compiled.available() is False"
    _sgd.train(input, output, batch.rows, batch.local_inputs, batch.line_offsets, batch.labels, batch.label_offsets,
               lr_start, lr_end, LOSS_CODES[loss], seed_of(seed, batch.index))


@dataclass
class ArrayModel:
    """``model.Model`` with numpy weights: ``input`` (rows, dim) in training order (row ``i`` is
    fastText's row ``order[i]``), ``output`` (labels, dim)."""

    input: np.ndarray
    output: np.ndarray
    order: np.ndarray | None = None

    @classmethod
    def initial(cls, rows: int, nlabels: int, dim: int, seed: int, order: np.ndarray | None = None) -> "ArrayModel":
        """fastText's start: input uniform in (-1/dim, 1/dim), output zero.

        Every input row is drawn. fastText (0.9.2 and its main branch, ``DenseMatrix::uniform``)
        draws only the first min(thread, 10) tenths of the matrix and leaves the rest zero; that
        makes no measurable difference (AG News, 40 initialisations each: median accuracy 0.8671
        all drawn, 0.8668 with fastText's 2-thread pattern), and ours does not depend on the
        number of threads."""
        assert _sgd is not None, "compiled.available() is False"
        weights = np.empty((rows, dim), dtype=np.float32)
        _sgd.uniform_(weights, -1.0 / dim, 1.0 / dim, seed_of((seed,), -1))
        return cls(weights, np.zeros((nlabels, dim), dtype=np.float32), order)

    def fasttext_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(input with its rows in fastText's order, output)."""
        if self.order is None:
            return self.input, self.output
        ordered = np.empty_like(self.input)
        ordered[self.order] = self.input
        return ordered, self.output

    def load_fasttext_(self, input: np.ndarray, output: np.ndarray) -> None:
        """Set the weights from matrices in fastText's row order."""
        self.input[...] = input if self.order is None else input[self.order]
        self.output[...] = output

    def clone(self) -> "ArrayModel":
        return ArrayModel(self.input.copy(), self.output.copy(), self.order)

    def copy_(self, other: "ArrayModel") -> None:
        self.input[...] = other.input
        self.output[...] = other.output

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.output).all())

    def top_labels_of(self, lines: Encoded, loss: object = None) -> np.ndarray:
        """The best-scoring label of each line (the prediction; softmax and one-vs-all rank alike)."""
        assert _sgd is not None, "compiled.available() is False"
        top = np.empty(lines.num_lines, dtype=np.int64)
        _sgd.top_labels(self.input, self.output, np.ascontiguousarray(lines.inputs, dtype=np.int32),
                        np.ascontiguousarray(lines.offsets, dtype=np.int64), top)
        return top
