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
from sagetext.algorithms.blazingtext.supervised.model import Model
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
    best: Model | None = None  # kept when early stopping


def depends_on(dictionary: Dictionary) -> dict[str, str]:
    return {"vocabulary": fingerprint(dictionary.words, dictionary.labels)}


def save(ctx: TrainingContext, dictionary: Dictionary, model: Model, state: TrainState, total_tokens: int) -> None:
    """Save the state when checkpoints are configured (rank 0 writes)."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):  # the others would build the state for nothing
        return
    saved: dict[str, Any] = {
        "averages_done": state.averages_done, "progress": state.tokens_done / max(total_tokens, 1),
        "best_accuracy": state.best_accuracy, "epochs_without_improvement": state.epochs_without_improvement,
        "input": model.fasttext_input(), "output": model.output.cpu(),
    }
    if state.best is not None:
        saved["best_input"], saved["best_output"] = state.best.fasttext_input(), state.best.output.cpu()
    ctx.checkpoints.save(KIND, Position(state.epoch, state.batch), saved, depends_on(dictionary))


def resume(ctx: TrainingContext, dictionary: Dictionary, model: Model, total_tokens: int,
           averaging_points: list[int]) -> TrainState:
    """The saved state (weights copied into ``model``), or a fresh one.

    Distributed workers restart right after the same parameter averaging, whatever their
    number of batches; a single worker restarts at the saved batch.
    """
    resumed = ctx.checkpoints.load(KIND, depends_on(dictionary))
    if resumed is None:
        return TrainState()
    saved = resumed.state
    model.load_fasttext_input_(saved["input"])
    model.output.copy_(saved["output"])
    state = TrainState(epoch=resumed.position.epoch, batch=resumed.position.step,
                       averages_done=int(saved["averages_done"]),
                       tokens_done=int(round(float(saved["progress"]) * total_tokens)),
                       best_accuracy=float(saved["best_accuracy"]),
                       epochs_without_improvement=int(saved["epochs_without_improvement"]))
    if ctx.world_size > 1 and state.averages_done:
        state.batch = averaging_points[state.averages_done - 1] + 1
    if "best_input" in saved:
        state.best = model.clone()
        state.best.load_fasttext_input_(saved["best_input"])
        state.best.output.copy_(saved["best_output"])
    return state
