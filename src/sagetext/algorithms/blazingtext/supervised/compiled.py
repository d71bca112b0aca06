"""The compiled SGD of a one-worker CPU supervised job: fastText's per-line update in C.

The PyTorch step (``model.sgd_step``) applies the summed update of a mini-batch of lines,
each op a call into torch; for a CPU job with one worker, per-step Python and dispatch
overhead then costs more than the arithmetic. The C extension ``_sgd`` (csrc/sgd.c, built by
``pip install`` when a C compiler is present) runs fastText's own update instead, one line
at a time, over a whole planned batch: the same model, losses and learning-rate decay, with
the GIL released so that ``train_threads`` Python threads update the weights without locks
(Hogwild), as fastText's threads do. Softmax and one-vs-all only; ``ns`` and ``hs`` train on
the PyTorch path.
"""

from __future__ import annotations

import logging
from types import ModuleType

import numpy as np

from sagetext.algorithms.blazingtext.supervised.batches import Batch

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


def seed_of(seed: tuple[int, ...], batch_index: int) -> int:
    """The batch's random stream (a label drawn among a line's several), from the run's seed."""
    return int(np.random.SeedSequence([*seed, batch_index]).generate_state(1, dtype=np.uint64)[0])


def train_batch(input: np.ndarray, output: np.ndarray, batch: Batch, lr_start: float, lr_end: float, loss: str,
                seed: tuple[int, ...]) -> None:
    """fastText's per-line SGD over ``batch``'s lines, in place; the rate falls from ``lr_start``
    to ``lr_end`` over them. ``input`` and ``output`` are float32 matrices (rows x dim)."""
    assert _sgd is not None, "compiled.available() is False"
    _sgd.train(input, output, batch.rows.numpy(), batch.local_inputs.numpy(), batch.line_offsets.numpy(),
               batch.labels.numpy(), batch.label_offsets, lr_start, lr_end, LOSS_CODES[loss],
               seed_of(seed, batch.index))
