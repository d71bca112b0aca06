"""The Seq2Seq training loop: batches → updates → internal checkpoints → the best model.

Every ``checkpoint_frequency_num_batches`` updates the model is evaluated on the validation
set (perplexity, token accuracy and, on ``bleu_sample_size`` sentences, sacreBLEU of beam
search on Sockeye's 0-1 scale), the metrics are printed both Sockeye-style (``Checkpoint [N]\\tValidation-perplexity=``)
and as ``#validation:perplexity:`` lines, the best model by ``optimized_metric`` is kept, the
learning-rate schedule is applied and early stopping is decided. Each internal checkpoint is
also a SageMaker checkpoint (``ctx.checkpoints``) holding all state, so a job killed and
restarted continues with the same batches and the same result. SIGTERM is polled between
batches: the state is saved and ``TrainingStopped`` raised.

Every few seconds a progress line gives the epoch, the update (``Update [1200/20000]`` when
``max_num_batches`` bounds the run), the learning rate, the running training perplexity, the
throughput and the time left at that rate when ``max_num_batches`` or ``max_num_epochs``
bounds the run (otherwise early stopping decides when it ends). With TensorBoard, those values,
the validation metrics and the attention of the model's translations of the first
``ATTENTION_SENTENCES`` validation sentences (heat maps, target x source) are recorded at each
checkpoint, against the update number.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sagetext.algorithms.seq2seq import artifacts
from sagetext.algorithms.seq2seq.beam import beam_search
from sagetext.algorithms.seq2seq.config import DataConfig, ModelConfig, TrainerConfig
from sagetext.algorithms.seq2seq.data import Batch, BatchPlan, Pair, make_batch
from sagetext.algorithms.seq2seq.model import build_model
from sagetext.algorithms.seq2seq.validation import (
    autocast,
    corpus_bleu,
    perplexity_and_accuracy,
    scored_logits,
    translate_pairs,
)
from sagetext.algorithms.seq2seq.vocab import Vocab
from sagetext.contract.checkpoints import Checkpoints, Position, generator_state, restore_generator_state
from sagetext.contract.context import TrainingStopped
from sagetext.contract.metrics import MetricLogger
from sagetext.contract.progress import Progress
from sagetext.contract.tensorboard import heat_map
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 10.0
ATTENTION_SENTENCES = 3
CHECKPOINT_KIND = "seq2seq/1"


@dataclass
class TrainState:
    """Where training is; saved in every checkpoint (plain values only)."""

    learning_rate: float
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already used
    updates: int = 0
    checkpoint: int = 0
    best_metric: float | None = None
    best_checkpoint: int = 0
    bad_checkpoints: int = 0  # since the last improvement
    plateau_checkpoints: int = 0  # since the last improvement or learning-rate cut
    target_tokens: int = 0
    done: bool = False


@dataclass(frozen=True)
class Inputs:
    train: Sequence[Pair]
    validation: Sequence[Pair]
    source_vocab: Vocab
    target_vocab: Vocab
    detokenise: Callable[[list[int]], str] | None = None  # subwords: ids → text (BLEU on text)
    subword_models: dict[str, bytes] = field(default_factory=dict)  # copied into the model folder


class Trainer:
    def __init__(self, model_config: ModelConfig, data_config: DataConfig, config: TrainerConfig,
                 inputs: Inputs, checkpoints: Checkpoints, *, device: str = "cpu", rank: int = 0,
                 world_size: int = 1, metrics: MetricLogger | None = None,
                 stop_requested: threading.Event | None = None, data_shard: tuple[int, int] | None = None) -> None:
        """``data_shard``: the part of ``inputs.train`` this worker trains on, ``(index, count)``
        (``TrainingContext.shard``); by default ``(rank, world_size)``."""
        self.model_config, self.data_config, self.config, self.inputs = model_config, data_config, config, inputs
        self.checkpoints, self.device, self.rank, self.world_size = checkpoints, device, rank, world_size
        self.metrics = metrics or MetricLogger(enabled=rank == 0)
        self.stop_requested = stop_requested or threading.Event()
        torch.manual_seed(config.seed + rank)
        self.model = build_model(model_config).to(device)
        self.network: nn.Module = self.model
        if world_size > 1:
            ids = [torch.device(device).index] if device.startswith("cuda") else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = _optimizer(self.model, config)
        self.plan = BatchPlan(inputs.train, data_config, config.seed)
        self.data_shard = data_shard or (rank, world_size)
        self.epoch_batches = self._common_epoch_batches()
        self.state = TrainState(learning_rate=config.learning_rate)
        self.best_params: dict[str, torch.Tensor] = {}
        self.train_seconds = 0.0  # time spent in updates (this run), for the throughput figure
        self.train_tokens = 0
        self._resume()

    # ---- the loop ---------------------------------------------------------------------------

    def fit(self) -> dict[str, torch.Tensor]:
        """Train until a stopping rule fires; returns the best parameters (on CPU)."""
        log.info("Seq2Seq %s encoder, %s decoder: %d parameters; %d training pairs in %d buckets, %d batches "
                 "an epoch for each of %d workers; %d validation pairs", self.model_config.encoder_type,
                 self.model_config.decoder_type, sum(p.numel() for p in self.model.parameters()),
                 len(self.inputs.train), len(self.plan.buckets), self.epoch_batches, self.world_size,
                 len(self.inputs.validation))
        tracker = _Progress(self.config, self.state, self.metrics if self.rank == 0 else None)
        if not tracker.bounded:
            log.info("Neither max_num_batches nor max_num_epochs bounds the run: early stopping ends it, "
                     "so the progress lines give no ETA")
        while not self.state.done:
            batches = self.plan.epoch(self.state.epoch, *self.data_shard)[:self.epoch_batches]
            for indices in batches[self.state.batch_in_epoch:]:
                self._stop_if_requested()
                started = time.perf_counter()
                loss_sum, correct, tokens = self._update(make_batch(self.inputs.train, indices))
                self.train_seconds += time.perf_counter() - started
                self.train_tokens += tokens
                self.state.batch_in_epoch += 1
                self.state.updates += 1
                self.state.target_tokens += tokens
                tracker.add(loss_sum, correct, tokens)
                tracker.maybe_log(self.state, len(batches))
                if self.state.updates % self.config.checkpoint_frequency_num_batches == 0:
                    self._checkpoint(tracker)
                if self._out_of_batches() or self.state.done:
                    self.state.done = True
                    break
            else:
                self._end_epoch()
        if self.state.updates % self.config.checkpoint_frequency_num_batches or not self.best_params:
            self._checkpoint(tracker, final=True)
        log.info("Training finished after %d updates, %d epochs; best checkpoint %d (%s=%.4f); "
                 "%.0f target tokens/s while updating", self.state.updates, self.state.epoch,
                 self.state.best_checkpoint, self.config.optimized_metric, self.state.best_metric or 0.0,
                 self.tokens_per_second)
        return self.best_params

    def _common_epoch_batches(self) -> int:
        """Batches per epoch for every worker: the fewest any worker has (they step together, so
        with hosts holding different parts of the channel the larger parts drop their last
        batches, a different few each epoch)."""
        mine = len(self.plan.epoch(0, *self.data_shard))
        counts = runtime.all_gather_object(mine)
        if min(counts) == 0:
            raise ClientError(f"channel 'train': {len(self.inputs.train)} pairs make {mine} batches "
                              f"for this worker (batches per worker: {counts}); every worker needs at least one: "
                              "give the channel more pairs, or lower batch_size")
        return min(counts)

    @property
    def tokens_per_second(self) -> float:
        """Target tokens per second of update time (forward, backward, step) in this run."""
        return self.train_tokens / self.train_seconds if self.train_seconds else 0.0

    def _end_epoch(self) -> None:
        self.state.epoch += 1
        self.state.batch_in_epoch = 0
        log.info("End of epoch %d (%d updates)", self.state.epoch, self.state.updates)
        if self.config.max_num_epochs is not None and self.state.epoch >= self.config.max_num_epochs:
            self.state.done = True

    def _out_of_batches(self) -> bool:
        return 0 < self.config.max_num_batches <= self.state.updates

    def _update(self, batch: Batch) -> tuple[float, int, int]:
        """One optimizer step on one batch; returns (summed loss, correct tokens, tokens)."""
        batch = batch.to(self.device)
        self.network.train()
        logits, target = scored_logits(self.network, batch, self.device)
        loss_sum = nn.functional.cross_entropy(logits, target, reduction="sum",
                                               label_smoothing=self.config.label_smoothing)
        tokens = len(target)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_sum / tokens).backward()
        if self.config.clip_gradient > 0:
            nn.utils.clip_grad_value_(self.model.parameters(), self.config.clip_gradient)
        self._set_learning_rate()
        self.optimizer.step()
        with torch.no_grad():
            correct = int((logits.argmax(-1) == target).sum())
        loss_value = float(loss_sum.detach())
        if not math.isfinite(loss_value):
            raise RuntimeError(f"the training loss became {loss_value} at update {self.state.updates + 1}; "
                               "try a lower learning_rate or clip_gradient")
        return loss_value, correct, tokens

    def _set_learning_rate(self) -> None:
        kind, config = self.config.lr_scheduler_type, self.config
        if kind != "plateau_reduce":
            half_life = config.fixed_rate_lr_half_life * config.checkpoint_frequency_num_batches
            t = self.state.updates
            factor = 1 + t / half_life if kind == "fixed_rate_inv_t" else math.sqrt(1 + 3 * t / half_life)
            self.state.learning_rate = config.learning_rate / factor
        for group in self.optimizer.param_groups:
            group["lr"] = self.state.learning_rate

    # ---- internal checkpoints -------------------------------------------------------------------

    def _checkpoint(self, tracker: "_Progress", final: bool = False) -> None:
        self.state.checkpoint += 1
        number = self.state.checkpoint
        train_metric = tracker.checkpoint_metric(self.config.training_metric)
        log.info("Checkpoint [%d]\tTrain-%s=%f", number, self.config.training_metric, train_metric)
        self.metrics.scalar(f"train:{self.config.training_metric}", train_metric, self.state.updates)
        metrics = self.evaluate()
        for name, value in metrics.items():
            log.info("Checkpoint [%d]\tValidation-%s=%f", number, name, value)
            self.metrics.log(f"validation:{name}", value, self.state.updates)
        self._record_attention()
        self._select(metrics[self.config.optimized_metric])
        if not final:
            self._save_checkpoint()

    def _select(self, value: float) -> None:
        state, config = self.state, self.config
        better = state.best_metric is None or (
            value < state.best_metric if config.optimized_metric == "perplexity" else value > state.best_metric)
        if better:
            state.best_metric, state.best_checkpoint = value, state.checkpoint
            state.bad_checkpoints = state.plateau_checkpoints = 0
            self.best_params = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            log.info("New best %s=%f at checkpoint %d", config.optimized_metric, value, state.checkpoint)
            return
        state.bad_checkpoints += 1
        state.plateau_checkpoints += 1
        plateau = state.plateau_checkpoints >= config.plateau_reduce_lr_threshold
        if config.lr_scheduler_type == "plateau_reduce" and plateau:
            state.learning_rate *= config.plateau_reduce_lr_factor
            state.plateau_checkpoints = 0
            log.info("No improvement for %d checkpoints: learning rate reduced to %g",
                     config.plateau_reduce_lr_threshold, state.learning_rate)
        if (config.max_num_epochs is None and state.bad_checkpoints >= config.checkpoint_threshold
                and state.epoch >= config.min_num_epochs):
            log.info("No improvement in %s for %d checkpoints: stopping early", config.optimized_metric,
                     state.bad_checkpoints)
            state.done = True

    def evaluate(self) -> dict[str, float]:
        """Validation perplexity and accuracy, and BLEU when asked for."""
        metrics = perplexity_and_accuracy(self.model, self.inputs.validation, self.device)
        sample = self.config.bleu_sample_size
        if sample != 0 or self.config.optimized_metric == "bleu":
            pairs = self.inputs.validation if sample <= 0 else self.inputs.validation[:sample]
            metrics["bleu"] = self.bleu(pairs)
        return metrics

    def bleu(self, pairs: Sequence[Pair]) -> float:
        hypotheses = translate_pairs(self.model, pairs, self.config.beam_size,
                                     self.model_config.max_seq_len_target, self.device)
        vocab, detokenise = self.inputs.target_vocab, self.inputs.detokenise
        text = detokenise or (lambda ids: " ".join(vocab.tokens(ids)))
        references = [text(t.tolist()) for _, t in pairs]
        outputs = [text(h) for h in hypotheses]
        tokenize = "13a" if detokenise else "none"  # whitespace-tokenised text is scored as it is
        return corpus_bleu(outputs, references, tokenize)

    def _record_attention(self) -> None:
        """TensorBoard only: heat maps of the attention of the first validation sentences'
        translations (rows: output tokens, columns: source tokens), with their text."""
        if not self.metrics.recording or not self.inputs.validation:
            return
        pairs = self.inputs.validation[:ATTENTION_SENTENCES]
        batch = make_batch(pairs, list(range(len(pairs)))).to(self.device)
        self.model.eval()
        limit = min(self.model_config.max_seq_len_target, 2 * int(batch.source_length.max()) + 10)
        with autocast(self.device):
            found = beam_search(self.model, batch.source, batch.source_length, self.config.beam_size, limit)
        source_vocab, target_vocab = self.inputs.source_vocab, self.inputs.target_vocab
        for i, ((source, _), hypothesis) in enumerate(zip(pairs, found)):
            if not hypothesis.attention:
                continue
            weights = np.asarray(hypothesis.attention, dtype=np.float32)[:, :max(len(source), 1)]
            self.metrics.image(f"attention:sentence_{i}", heat_map(weights), self.state.updates)
            self.metrics.text(f"attention:sentence_{i}",
                              f"source (columns): {' '.join(source_vocab.tokens(source.tolist()))}  \n"
                              f"output (rows): {' '.join(target_vocab.tokens(hypothesis.tokens))}",
                              self.state.updates)

    # ---- SageMaker checkpoints -------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        if not self.checkpoints.enabled:
            return
        state: dict[str, Any] = {
            "train_state": asdict(self.state), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "best_params": self.best_params, **generator_state(self.device),
        }
        self.checkpoints.save(CHECKPOINT_KIND, Position(self.state.epoch, self.state.batch_in_epoch), state)

    def _resume(self) -> None:
        resumed = self.checkpoints.load(CHECKPOINT_KIND)
        if resumed is None:
            return
        saved = resumed.state
        self.state = TrainState(**saved["train_state"])
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.best_params = dict(saved["best_params"])
        restore_generator_state(saved, self.device)

    def _stop_if_requested(self) -> None:
        if runtime.stop_agreed(self.stop_requested, self.state.updates, self.device):
            self._save_checkpoint()
            raise TrainingStopped()


def _optimizer(model: nn.Module, config: TrainerConfig) -> torch.optim.Optimizer:
    """SageMaker's optimizer_type; Adam and SGD in torch's fused form (one pass over each
    parameter's memory per update, on CPU as on GPU: the same rule in fewer, faster kernels)."""
    params, lr, decay = model.parameters(), config.learning_rate, config.weight_decay
    if config.optimizer_type == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum or 0.0, weight_decay=decay, fused=True)
    if config.optimizer_type == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=True)


class _Progress:
    """Running training loss/accuracy and throughput, logged every few seconds with the time
    left when ``max_num_batches`` (in updates) or ``max_num_epochs`` bounds the run."""

    def __init__(self, config: TrainerConfig, state: TrainState, metrics: MetricLogger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.metrics = metrics
        self.started = clock()
        self.loss = self.correct = self.tokens = 0.0
        self.total_tokens = 0
        self.max_updates = config.max_num_batches if config.max_num_batches > 0 else 0
        self.max_epochs = config.max_num_epochs or 0
        if self.max_updates:
            self.bound = Progress(self.max_updates, state.updates, PROGRESS_SECONDS, clock)
        else:
            self.bound = Progress(self.max_epochs, state.epoch, PROGRESS_SECONDS, clock)

    @property
    def bounded(self) -> bool:
        return bool(self.max_updates or self.max_epochs)

    def add(self, loss: float, correct: int, tokens: int) -> None:
        self.loss += loss
        self.correct += correct
        self.tokens += tokens
        self.total_tokens += tokens

    def maybe_log(self, state: TrainState, epoch_batches: int) -> None:
        """A line if one is due; ``epoch_batches``: this worker's batches in the current epoch."""
        done = state.updates if self.max_updates else state.epoch + state.batch_in_epoch / max(epoch_batches, 1)
        self.bound.update(done)
        if not self.bound.due():
            return
        rate = self.total_tokens / max(self.clock() - self.started, 1e-9)
        perplexity = math.exp(min(self.loss / max(self.tokens, 1), 100.0))
        epoch = f"{state.epoch}/{self.max_epochs}" if self.max_epochs else str(state.epoch)
        update = f"{state.updates}/{self.max_updates}" if self.max_updates else str(state.updates)
        left = f" {100 * (self.bound.fraction or 0.0):.1f}% done, ETA {self.bound.eta_text()}" if self.bounded else ""
        log.info("Epoch [%s] Update [%s] lr=%.3g train-perplexity=%.3f target tokens/s=%.0f%s", epoch, update,
                 state.learning_rate, perplexity, rate, left)
        if self.metrics is not None:
            self.metrics.scalar("train:running_perplexity", perplexity, state.updates)
            self.metrics.scalar("train:learning_rate", state.learning_rate, state.updates)
            self.metrics.scalar("train:target_tokens_per_sec", rate, state.updates)

    def checkpoint_metric(self, name: str) -> float:
        """The training metric since the last checkpoint; resets the running sums."""
        tokens = max(self.tokens, 1)
        value = math.exp(min(self.loss / tokens, 100.0)) if name == "perplexity" else self.correct / tokens
        self.loss = self.correct = self.tokens = 0.0
        return value


def write_model(folder: Path, params: dict[str, torch.Tensor], trainer: Trainer,
                hyperparameters: dict[str, str]) -> None:
    """The model folder from the best parameters (rank 0 calls this)."""
    artifacts.save(folder, params, trainer.model_config, trainer.inputs.source_vocab,
                   trainer.inputs.target_vocab, trainer.config.beam_size, hyperparameters,
                   trainer.inputs.subword_models)
