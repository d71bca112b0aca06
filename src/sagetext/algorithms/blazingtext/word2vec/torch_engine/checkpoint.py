"""Checkpoints of the PyTorch word2vec engine, saved and resumed through ``ctx.checkpoints``.

A checkpoint is taken where every worker holds the same model: right after a sync (16 an
epoch, ``trainer.SYNCS_PER_EPOCH``), at the end of each epoch, and at the first sync after a
SIGTERM. It holds plain tensors and values (read back with ``weights_only=True``):

* the weights: input rows (words, and with subwords the n-gram buckets) and output rows;
* where training stood: epochs done, syncs done in the next epoch, and the rate line then in
  force (a ``learning_rate.Schedule``, as the gensim engine's);
* the vocabulary's fingerprint: the channel is read again on restart, and a checkpoint made
  from other data is refused rather than mixed in.

Resuming replays the interrupted epoch's windows without training on them up to the saved
sync: every epoch's draws are seeded from (seed, rank, epoch), so the windows after it are the
ones the first run would have trained on, and a resumed job ends with the uninterrupted
job's model. A job resumed with another ``epochs`` continues the learning rate from where it
stood, falling to 0 at the new end (as the gensim engine does).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec.learning_rate import Schedule
from sagetext.contract.context import TrainingContext
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "sagetext-word2vec-torch-checkpoint/1"


@dataclass(frozen=True)
class Position:
    """``epoch`` epochs done, then ``syncs`` syncs of the next one (``epochs_done`` in all);
    and the rate line in force."""

    epoch: int
    syncs: int
    epochs_done: float
    schedule: Schedule


def fingerprint(words: list[str], counts: np.ndarray) -> str:
    digest = hashlib.sha256()
    for word, count in zip(words, counts.tolist()):
        digest.update(f"{word}\0{count}\0".encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def save(ctx: TrainingContext, words: list[str], counts: np.ndarray, weights: tuple[torch.Tensor, torch.Tensor],
         position: Position) -> None:
    """Rank 0 writes the checkpoint when checkpoints are configured."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):
        return
    inputs, output = weights
    ctx.checkpoints.save({
        "format": CHECKPOINT_FORMAT, "vocabulary": fingerprint(words, counts), "epoch": position.epoch,
        "syncs": position.syncs, "epochs_done": position.epochs_done, "schedule": asdict(position.schedule),
        "input": inputs.cpu(), "output": output.cpu(),
    })


def resume(ctx: TrainingContext, words: list[str], counts: np.ndarray,
           weights: tuple[torch.Tensor, torch.Tensor]) -> Position:
    """The saved position, its weights copied into ``weights``; a fresh Position without one."""
    saved = ctx.checkpoints.load() if ctx.checkpoints.enabled else None
    if saved is None:
        hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
        return Position(0, 0, 0.0, Schedule(hp.learning_rate, 0.0, 0.0, hp.epochs))
    where = ctx.checkpoints.path
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ClientError(f"checkpoint {where} is not a checkpoint of the PyTorch word2vec engine (format "
                          f"{saved.get('format')!r}, expected {CHECKPOINT_FORMAT!r}; the gensim engine's "
                          "cannot be resumed here); remove it to start afresh")
    if saved.get("vocabulary") != fingerprint(words, counts):
        raise ClientError(f"checkpoint {where} was made from different training data (its vocabulary differs); "
                          "remove it to start afresh")
    inputs, output = weights
    try:
        if tuple(saved["input"].shape) != tuple(inputs.shape) or tuple(saved["output"].shape) != tuple(output.shape):
            raise ValueError(f"weights {tuple(saved['input'].shape)}, expected {tuple(inputs.shape)}")
        inputs.copy_(saved["input"])
        output.copy_(saved["output"])
        line = saved["schedule"]
        schedule = Schedule(float(line["start"]), float(line["end"]), float(line["origin"]), int(line["epochs"]))
        position = Position(int(saved["epoch"]), int(saved["syncs"]), float(saved["epochs_done"]), schedule)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ClientError(f"checkpoint {where} does not fit this job ({type(exc).__name__}: {exc}); "
                          "remove it to start afresh") from None
    if ctx.is_writer:
        log.info("Resuming from checkpoint at epoch %d (sync %d of the epoch)", position.epoch + 1, position.syncs)
    return position
