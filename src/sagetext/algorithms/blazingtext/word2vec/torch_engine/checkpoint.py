"""Checkpoints of the PyTorch word2vec engine, saved and resumed through ``ctx.checkpoints``.

A checkpoint is taken where every worker holds the same model: right after a sync (16 an
epoch, ``trainer.SYNCS_PER_EPOCH``), at the end of each epoch, and at the first sync after a
SIGTERM. Its state holds plain tensors and values (read back with ``weights_only=True``):

* the weights: input rows (words, and with subwords the n-gram buckets) and output rows;
* where training stood: the position (epochs done, then syncs done in the next epoch), the
  epochs done as a fraction, and the rate line then in force (a ``learning_rate.Schedule``,
  as the gensim engine's).

It depends on the vocabulary (words and counts): the channel is read again on restart, and a
checkpoint made from other data is not mixed in.

Resuming replays the interrupted epoch's windows without training on them up to the saved
sync: every epoch's draws are seeded from (seed, rank, epoch), so the windows after it are the
ones the first run would have trained on, and a resumed job ends with the uninterrupted
job's model. A job resumed with another ``epochs`` continues the learning rate from where it
stood, falling to 0 at the new end (as the gensim engine does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec.learning_rate import Schedule
from sagetext.contract.checkpoints import Position, fingerprint
from sagetext.contract.context import TrainingContext
from sagetext.errors import ClientError

KIND = "blazingtext-word2vec-torch/2"


@dataclass(frozen=True)
class Start:
    """Where a run starts: ``position`` (its step counts syncs), ``epochs_done`` in all, and
    the rate line in force."""

    position: Position
    epochs_done: float
    schedule: Schedule


def depends_on(words: list[str], counts: np.ndarray) -> dict[str, str]:
    return {"vocabulary": fingerprint(words, counts)}


def save(ctx: TrainingContext, words: list[str], counts: np.ndarray, weights: tuple[torch.Tensor, torch.Tensor],
         start: Start) -> None:
    """Save the weights at ``start`` when checkpoints are configured (rank 0 writes)."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):  # the others would build the state for nothing
        return
    inputs, output = weights
    ctx.checkpoints.save(KIND, start.position, {
        "epochs_done": start.epochs_done, "schedule": asdict(start.schedule),
        "input": inputs.cpu(), "output": output.cpu(),
    }, depends_on(words, counts))


def resume(ctx: TrainingContext, words: list[str], counts: np.ndarray,
           weights: tuple[torch.Tensor, torch.Tensor]) -> Start:
    """The saved start, its weights copied into ``weights``; the beginning without one."""
    resumed = ctx.checkpoints.load(KIND, depends_on(words, counts))
    if resumed is None:
        hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
        return Start(Position(0, 0), 0.0, Schedule(hp.learning_rate, 0.0, 0.0, hp.epochs))
    saved, where = resumed.state, ctx.checkpoints.path
    inputs, output = weights
    try:
        if tuple(saved["input"].shape) != tuple(inputs.shape) or tuple(saved["output"].shape) != tuple(output.shape):
            raise ValueError(f"weights {tuple(saved['input'].shape)}, expected {tuple(inputs.shape)}")
        inputs.copy_(saved["input"])
        output.copy_(saved["output"])
        line = saved["schedule"]
        schedule = Schedule(float(line["start"]), float(line["end"]), float(line["origin"]), int(line["epochs"]))
        start = Start(resumed.position, float(saved["epochs_done"]), schedule)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ClientError(f"checkpoint {where} does not fit this job ({type(exc).__name__}: {exc}); "
                          "remove it to start afresh") from None
    return start
