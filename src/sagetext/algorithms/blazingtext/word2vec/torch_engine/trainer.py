"""BlazingText word2vec (cbow, skipgram, batch_skipgram, subwords) trained with PyTorch.

The same job as ``word2vec.train_word2vec`` (gensim), with the same hyperparameters, log lines
and artifacts, on ``ctx.device``: a CUDA GPU, or the CPU (tests, and users who set
``SAGETEXT_WORD2VEC_ENGINE=torch``). Top to bottom:

1. every worker reads the whole channel once into word ids (``corpus_ids``) and so builds the
   same vocabulary, then keeps its contiguous shard (1/world of the ids) on the device;
2. each epoch: subsample, cut into minibatches of windows (``batches``) and update (the fused
   Triton step from ``kernels`` where it runs, else ``step``'s reference);
3. 16 times an epoch the workers' models are combined (``word2vec.model_sync``);
4. rank 0 writes vectors.txt / vectors.bin through ``vectors.write_artifacts`` and, with
   ``evaluation=true``, eval.json and ``#mean_rho`` through ``evaluation``, as the gensim path does.

Progress lines (``progress``) are the gensim path's: words are counted raw, before min_count
and subsampling, summed over workers, as SageMaker counts them. Checkpoints (``state``): after
each epoch, and at the first sync after a SIGTERM, where training then stops
(``TrainingStopped``); a restarted job resumes there and ends with the uninterrupted job's model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec import check_hyperparameters
from sagetext.algorithms.blazingtext.word2vec.corpus import ChannelCorpus
from sagetext.algorithms.blazingtext.word2vec.learning_rate import Schedule
from sagetext.algorithms.blazingtext.word2vec.model_sync import ModelSync
from sagetext.algorithms.blazingtext.word2vec.torch_engine import checkpoint as checkpointing
from sagetext.algorithms.blazingtext.word2vec.torch_engine import kernels
from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import Sampler, WindowSettings, epoch_windows
from sagetext.algorithms.blazingtext.word2vec.torch_engine.corpus_ids import CorpusIds, read_corpus_ids
from sagetext.algorithms.blazingtext.word2vec.torch_engine.model import Model, create_model, write_model
from sagetext.algorithms.blazingtext.word2vec.torch_engine.progress import Progress
from sagetext.algorithms.blazingtext.word2vec.torch_engine.step import Update, reference_update
from sagetext.contract.checkpoints import Position
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.distributed import runtime

log = logging.getLogger(__name__)

# Measured on the first 2M words of the text8-like corpus (vector_dim=100, 5 epochs; CPU, the
# reference step) against gensim with 2 threads (analogy / WS-353 / SimLex: skipgram 0.074-0.082 /
# 0.553-0.560 / 0.214-0.226, cbow 0.043-0.044 / 0.370-0.385 / 0.195-0.207 over two runs):
# - windows per step: every window of a step sees the same parameters. skipgram at 4,096 with
#   a cap of 32: 0.083 / 0.576 / 0.220; cbow at 1,024 with a cap of 256: 0.040 / 0.377 / 0.217,
#   at 4,096: 0.039 / 0.369 / 0.220, at 16,384: 0.028 / 0.313 / 0.174.
# - repeat cap (batches.py): skipgram diverged with 64 at 8,192 windows and with 128 at 1,024;
#   cbow lost quality with 32 (0.026 / 0.344 / 0.190 at 4,096) and without a cap.
# The GPU figures are to be confirmed on a GPU (bench/word2vec_gpu.py).
GPU_WINDOWS_PER_STEP = 4096
CPU_WINDOWS_PER_STEP = 1024
SUBWORD_WINDOWS_PER_STEP = 1024  # every context word expands into ~30 rows: keep the step's arrays small
REPEAT_CAPS = {"cbow": 256.0, "skipgram": 32.0, "batch_skipgram": 32.0}
SYNCS_PER_EPOCH = 16  # 2 CPU workers, cbow, 2M words: WS-353 0.202 vs 0.208 alone (0.165 with 4)


@dataclass(frozen=True)
class EngineSettings:
    """How the engine runs: tuning of our own, not SageMaker hyperparameters (defaults above)."""

    windows_per_step: int | None = None  # None: by device and subwords
    syncs_per_epoch: int = SYNCS_PER_EPOCH
    repeat_cap: float | None = None  # None: by mode
    fused: bool | None = None  # None: the Triton step wherever it runs


def train_word2vec(ctx: TrainingContext, settings: EngineSettings = EngineSettings()) -> None:
    """Train on the ``train`` channel on ``ctx.device``; rank 0 writes the model and eval.json."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    check_hyperparameters(hp)
    device = torch.device(ctx.device)
    data = read_corpus_ids(ChannelCorpus(ctx.channel("train")), hp.min_count)
    if ctx.stop_requested.is_set():
        raise TrainingStopped("stopped while reading the corpus")
    model = create_model(data, hp, device)
    update, kind = choose_update(hp.mode, device, model.inputs.subwords, settings.fused)
    log.info("Vocabulary: %d words (min_count=%d) out of %d tokens; training on %s with %d worker(s), %s step",
             len(data.words), hp.min_count, data.raw_words, device, ctx.world_size, kind)
    with torch.no_grad():
        train_epochs(ctx, data, model, update, settings)
    if ctx.is_writer:
        write_model(ctx, data, model, hp)


def choose_update(mode: str, device: torch.device, subwords: bool, fused: bool | None) -> tuple[Update, str]:
    """The fused Triton step where it runs (unless ``fused`` is False), else the reference."""
    if fused is not False and not subwords:
        update = kernels.fused_update(mode, device)
        if update is not None:
            return update, "fused (Triton)"
    if fused:
        raise ValueError(f"the fused step cannot run here (device {device}, triton "
                         f"{'missing' if kernels.triton is None else 'present'}, subwords={subwords})")
    return reference_update(mode), "reference (PyTorch)"


@dataclass
class Epochs:
    """What every epoch of one worker uses (see ``train_epochs``)."""

    ctx: TrainingContext
    data: CorpusIds
    model: Model
    update: Update
    ids: torch.Tensor  # this worker's shard of word ids
    sentences: torch.Tensor  # the sentence of each of them
    sampler: Sampler
    windows: WindowSettings
    per_step: int
    syncs_per_epoch: int
    sync: ModelSync
    progress: Progress

    def start_at(self, epoch: int, syncs: int, epochs_done: float) -> checkpointing.Start:
        """Where a job restarted from here starts."""
        return checkpointing.Start(Position(epoch, syncs), epochs_done, self.windows.rate_line)

    def save(self, start: checkpointing.Start) -> None:
        checkpointing.save(self.ctx, self.data.words, self.data.counts, (self.model.inputs.weight, self.model.output),
                           start)


def train_epochs(ctx: TrainingContext, data: CorpusIds, model: Model, update: Update,
                 settings: EngineSettings) -> None:
    """All epochs on this worker's shard, combining the workers' models syncs_per_epoch times an
    epoch; resumes from a checkpoint and saves one after each epoch (see ``checkpoint``)."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    device = model.output.device
    start = checkpointing.resume(ctx, data.words, data.counts, (model.inputs.weight, model.output))
    shard_ids, shard_sentences = data.shard(ctx.rank, ctx.world_size)
    run = Epochs(ctx, data, model, update, torch.as_tensor(shard_ids, dtype=torch.int64, device=device),
                 torch.as_tensor(shard_sentences, device=device),
                 Sampler(data.counts, hp.sampling_threshold, device, (hp.seed, ctx.rank)),
                 _window_settings(hp, start, len(data.words), settings.repeat_cap),
                 settings.windows_per_step or _default_windows_per_step(device, model.inputs.subwords),
                 settings.syncs_per_epoch, ModelSync([model.inputs.weight, model.output], ctx.world_size),
                 Progress(data.raw_words * hp.epochs, hp.learning_rate, device, enabled=ctx.is_writer,
                          start_words=int(start.epochs_done * data.raw_words), metrics=ctx.metrics))
    for epoch in range(start.position.epoch, hp.epochs):
        _train_epoch(run, epoch, skip_syncs=start.position.step if epoch == start.position.epoch else 0)
        run.save(run.start_at(epoch + 1, 0, float(epoch + 1)))
        if epoch + 1 < hp.epochs and runtime.stop_agreed(ctx.stop_requested, 0, ctx.device, every=1):
            raise TrainingStopped(f"stopped by SIGTERM after epoch {epoch + 1}")
    run.progress.finish()


def _train_epoch(run: Epochs, epoch: int, skip_syncs: int) -> None:
    """One epoch; the part before sync ``skip_syncs`` was trained before a restart: its windows
    are drawn again (the same draws) but not trained on. Stops at a sync on SIGTERM."""
    run.sampler.begin_epoch(epoch)
    synced = 0
    for windows, done in epoch_windows(run.ids, run.sentences, run.sampler, run.windows, epoch, run.per_step):
        if synced >= skip_syncs:
            run.update(run.model.inputs, run.model.output, windows)
            run.progress.advance(int((epoch + done) * run.data.raw_words))
        if done * run.syncs_per_epoch >= synced + 1:
            synced = _sync_point(run, epoch, synced + 1, skip_syncs, epoch + done)
    while synced < run.syncs_per_epoch:  # a worker with few windows catches up
        synced = _sync_point(run, epoch, synced + 1, skip_syncs, epoch + 1.0)


def _sync_point(run: Epochs, epoch: int, synced: int, skip_syncs: int, epochs_done: float) -> int:
    """Sync number ``synced`` of the epoch (every worker passes the same ones): combine the
    models, then all vote on a SIGTERM and, if any got one, checkpoint and stop."""
    if synced <= skip_syncs:
        return synced  # done before the restart
    run.sync()
    ctx = run.ctx
    if synced < run.syncs_per_epoch and runtime.stop_agreed(ctx.stop_requested, 0, ctx.device, every=1):
        run.save(run.start_at(epoch, synced, epochs_done))
        raise TrainingStopped(f"stopped by SIGTERM in epoch {epoch + 1}, at sync {synced} of {run.syncs_per_epoch}")
    return synced


def _window_settings(hp: BlazingTextHyperparameters, start: checkpointing.Start, n_words: int,
                     repeat_cap: float | None) -> WindowSettings:
    """Window settings with the rate line to follow: the saved one, or, when a resumed job asks
    for another number of epochs, one from the rate where it stopped down to 0 at the new end."""
    line = start.schedule
    if line.epochs != hp.epochs:
        line = Schedule(line.at(start.epochs_done), 0.0, start.epochs_done, hp.epochs)
    return WindowSettings(hp.window_size, hp.negative_samples, hp.batch_size if hp.mode == "batch_skipgram" else 1,
                          hp.learning_rate, hp.epochs, repeat_cap or REPEAT_CAPS[hp.mode], n_words, line)


def _default_windows_per_step(device: torch.device, subwords: bool) -> int:
    if subwords:
        return SUBWORD_WINDOWS_PER_STEP
    return GPU_WINDOWS_PER_STEP if device.type == "cuda" else CPU_WINDOWS_PER_STEP
