"""The training state a spot restart needs, saved and resumed through ``ctx.checkpoints``.

A checkpoint holds the weights, rows in fastText's order (and the best weights so far when
early stopping), where training stood (epoch and batch; averagings done and learning-rate
progress), the early-stopping counters; it depends on the vocabulary (words and labels): the
data is read again on restart, and a checkpoint made from other data is not mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagetext.algorithms.blazingtext.fasttext_format.dictionary import Dictionary
from sagetext.algorithms.blazingtext.supervised.weights import Weights
from sagetext.contract.checkpoints import Position, fingerprint
from sagetext.contract.context import TrainingContext

KIND = "blazingtext-supervised/2"


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch completed
    averages_done: int = 0  # parameter averagings done in the current epoch (distributed runs)
    tokens_done: int = 0  # tokens this worker has trained on, for the learning rate
    best_accuracy: float = -1.0
    epochs_without_improvement: int = 0
    best: Weights | None = None  # kept when early stopping


def depends_on(dictionary: Dictionary) -> dict[str, str]:
    return {"vocabulary": fingerprint(dictionary.words, dictionary.labels)}


def save(ctx: TrainingContext, dictionary: Dictionary, model: Weights, state: TrainState, total_tokens: int,
         lines_per_batch: int) -> None:
    """Save the state when checkpoints are configured (rank 0 writes)."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):  # the others would build the state for nothing
        return
    saved: dict[str, Any] = {
        "averages_done": state.averages_done, "progress": state.tokens_done / max(total_tokens, 1),
        "best_accuracy": state.best_accuracy, "epochs_without_improvement": state.epochs_without_improvement,
        "lines_per_batch": lines_per_batch,
    }
    import torch  # a checkpoint is a torch file (contract/checkpoints); only a job that writes one loads torch

    saved["input"], saved["output"] = map(torch.from_numpy, model.fasttext_matrices())
    if state.best is not None:
        saved["best_input"], saved["best_output"] = map(torch.from_numpy, state.best.fasttext_matrices())
    ctx.checkpoints.save(KIND, Position(state.epoch, state.batch), saved, depends_on(dictionary))


def resume(ctx: TrainingContext, dictionary: Dictionary, model: Weights, total_tokens: int,
           averaging_points: list[int], lines_per_batch: int) -> TrainState:
    """The saved state (weights copied into ``model``), or a fresh one.

    Distributed workers restart right after the same parameter averaging, whatever their
    number of batches; a single worker restarts at the saved batch, or, when the checkpoint's
    batches were of another size (the other SGD engine, another number of workers), at the
    batch holding the first line not yet trained on (its earlier lines are trained again).
    """
    resumed = ctx.checkpoints.load(KIND, depends_on(dictionary))
    if resumed is None:
        return TrainState()
    saved = resumed.state
    model.load_fasttext_(saved["input"].numpy(), saved["output"].numpy())
    state = TrainState(epoch=resumed.position.epoch, batch=resumed.position.step,
                       averages_done=int(saved["averages_done"]),
                       tokens_done=int(round(float(saved["progress"]) * total_tokens)),
                       best_accuracy=float(saved["best_accuracy"]),
                       epochs_without_improvement=int(saved["epochs_without_improvement"]))
    saved_lines = int(saved.get("lines_per_batch", lines_per_batch))
    if ctx.world_size > 1 and state.averages_done:
        state.batch = averaging_points[state.averages_done - 1] + 1
    elif saved_lines != lines_per_batch:
        state.batch = state.batch * saved_lines // lines_per_batch
    if "best_input" in saved:
        state.best = model.clone()
        state.best.load_fasttext_(saved["best_input"].numpy(), saved["best_output"].numpy())
    return state
