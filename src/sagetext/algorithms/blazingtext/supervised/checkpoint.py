"""The training state a spot restart needs, and saving / resuming it through ``ctx.checkpoints``.

A checkpoint holds the weights, rows in fastText's order (and the best weights so far when
early stopping), where training stood (epoch, batch, averagings done, learning-rate
progress), the early-stopping counters, and a fingerprint of the vocabulary: the data is
read again on restart, and a checkpoint made from other data is refused rather than
silently mixed in.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sagetext.algorithms.blazingtext.fasttext_format.dictionary import Dictionary
from sagetext.algorithms.blazingtext.supervised.weights import Weights
from sagetext.contract.context import TrainingContext
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch completed
    averages_done: int = 0  # parameter averagings done in the current epoch (distributed runs)
    tokens_done: int = 0  # tokens this worker has trained on, for the learning rate
    best_accuracy: float = -1.0
    epochs_without_improvement: int = 0
    best: Weights | None = None  # kept when early stopping


def fingerprint(dictionary: Dictionary) -> str:
    digest = hashlib.sha256()
    for name in (*dictionary.words, b"\1", *dictionary.labels):
        digest.update(name + b"\0")
    return digest.hexdigest()


def save(ctx: TrainingContext, dictionary: Dictionary, model: Weights, state: TrainState, total_tokens: int) -> None:
    """Rank 0 writes the checkpoint when checkpoints are configured."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):
        return
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "vocabulary": fingerprint(dictionary), "epoch": state.epoch,
        "batch": state.batch, "averages_done": state.averages_done,
        "progress": state.tokens_done / max(total_tokens, 1), "best_accuracy": state.best_accuracy,
        "epochs_without_improvement": state.epochs_without_improvement,
    }
    import torch  # a checkpoint is a torch file (contract/checkpoints); only a job that writes one loads torch

    payload["input"], payload["output"] = map(torch.from_numpy, model.fasttext_matrices())
    if state.best is not None:
        payload["best_input"], payload["best_output"] = map(torch.from_numpy, state.best.fasttext_matrices())
    ctx.checkpoints.save(payload)


def resume(ctx: TrainingContext, dictionary: Dictionary, model: Weights, total_tokens: int,
           averaging_points: list[int]) -> TrainState:
    """The saved state (weights copied into ``model``), or a fresh one.

    Distributed workers restart right after the same parameter averaging, whatever their
    number of batches; a single worker restarts at the saved batch.
    """
    saved = ctx.checkpoints.load() if ctx.checkpoints.enabled else None
    if saved is None:
        return TrainState()
    if saved.get("format") != CHECKPOINT_FORMAT or saved.get("vocabulary") != fingerprint(dictionary):
        raise ClientError(f"checkpoint {ctx.checkpoints.path} was made from different training data (its "
                          "vocabulary differs); remove it to start afresh")
    model.load_fasttext_(saved["input"].numpy(), saved["output"].numpy())
    state = TrainState(epoch=int(saved["epoch"]), batch=int(saved["batch"]), averages_done=int(saved["averages_done"]),
                       tokens_done=int(round(float(saved["progress"]) * total_tokens)),
                       best_accuracy=float(saved["best_accuracy"]),
                       epochs_without_improvement=int(saved["epochs_without_improvement"]))
    if ctx.world_size > 1 and state.averages_done:
        state.batch = averaging_points[state.averages_done - 1] + 1
    if "best_input" in saved:
        state.best = model.clone()
        state.best.load_fasttext_(saved["best_input"].numpy(), saved["best_output"].numpy())
    if ctx.is_writer:
        log.info("Resuming from checkpoint at epoch %d (batch %d)", state.epoch + 1, state.batch)
    return state
