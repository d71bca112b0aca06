"""BlazingText word2vec (cbow, skipgram, batch_skipgram, subwords) trained by the native engine.

The job of the other engines, with the same hyperparameters, log lines, checkpoints and
artifacts, on CPU threads. Top to bottom:

1. every worker reads the whole channel once into word ids (``corpus``), so all build the same
   vocabulary (checked across workers), and keeps its shard, cut into blocks (``shard``);
2. the parameters start as the PyTorch engine's (``torch_engine.model``), as torch tensors whose
   memory the compiled threads update in place;
3. each epoch: ``syncs_per_epoch`` segments of blocks, each trained by this worker's threads
   (``_native.train``: subsampling, windows, shared negatives and the HogBatch update, in C);
   after each segment the workers combine their models (``word2vec.model_sync``, gloo
   across hosts) and vote on a SIGTERM;
4. rank 0 writes vectors.txt, vectors.bin and eval.json (``torch_engine.model.write_model``).

Checkpoints (``torch_engine.checkpoint``, of their own kind): after each epoch, and at the
first sync after a SIGTERM, where training stops. A block's draws depend only on (seed, rank, epoch, block), so a
resumed job trains exactly the windows the uninterrupted one would have; with one thread per
worker it ends with the uninterrupted job's vectors bit for bit (several threads race, as
Hogwild threads do, so their results vary a little from run to run).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec import check_hyperparameters
from sagetext.algorithms.blazingtext.word2vec.learning_rate import MIN_ALPHA_FRACTION, Schedule
from sagetext.algorithms.blazingtext.word2vec.model_sync import ModelSync
from sagetext.algorithms.blazingtext.word2vec.native_engine import IMPORT_ERROR, _native
from sagetext.algorithms.blazingtext.word2vec.native_engine.corpus import read_channel_ids
from sagetext.algorithms.blazingtext.word2vec.native_engine.shard import Shard, make_shard
from sagetext.algorithms.blazingtext.word2vec.torch_engine import checkpoint as checkpointing
from sagetext.algorithms.blazingtext.word2vec.torch_engine.batches import NEGATIVE_POWER, keep_probabilities
from sagetext.algorithms.blazingtext.word2vec.torch_engine.corpus_ids import CorpusIds
from sagetext.algorithms.blazingtext.word2vec.torch_engine.model import Model, create_model, write_model
from sagetext.algorithms.blazingtext.word2vec.torch_engine.progress import Progress
from sagetext.contract.checkpoints import Position, fingerprint
from sagetext.contract.cluster import cpu_count
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

# Model combinations (several workers) and stop points an epoch. text8, batch_skipgram, two hosts of one
# thread: 16 gave SimLex 0.264 and 64 gave 0.287 (one host: 0.285-0.292); 64 cost 16 % more training
# time (only the rows changed since the last combination travel; see word2vec.model_sync)
SYNCS_PER_EPOCH = 64
CALL_BLOCKS = 200  # blocks per call into the threads (about 2M words): a progress line between calls
CPU = torch.device("cpu")


@dataclass(frozen=True)
class EngineSettings:
    """How the engine runs: tuning of our own, not SageMaker hyperparameters."""

    threads: int | None = None  # None: this worker's share of the machine's cores
    syncs_per_epoch: int | None = None  # None: the word2vec_syncs setting, else SYNCS_PER_EPOCH


@dataclass(frozen=True)
class Tables:
    """What every thread reads: subsampling and negative-sampling tables, subword bags."""

    keep: np.ndarray  # uint32 per word: keep a token when a uniform 32-bit draw is below (all ones: always)
    alias_threshold: np.ndarray  # uint32: the unigram^0.75 distribution as an alias table
    alias_index: np.ndarray  # int32
    bag_offsets: np.ndarray | None
    bag_rows: np.ndarray | None

    @classmethod
    def create(cls, counts: np.ndarray, sampling_threshold: float, model: Model) -> "Tables":
        keep = keep_probabilities(counts, sampling_threshold)
        thresholds = np.where(keep >= 1.0, 2.0**32 - 1, np.floor(keep * 2.0**32)).astype(np.uint32)
        alias_threshold, alias_index = _native.alias_table(counts.astype(np.float64) ** NEGATIVE_POWER)
        table = model.inputs.table
        return cls(thresholds, np.frombuffer(alias_threshold, dtype=np.uint32),
                   np.frombuffer(alias_index, dtype=np.int32),
                   None if table is None else table[0].numpy(), None if table is None else table[1].numpy())


def train_word2vec(ctx: TrainingContext, settings: EngineSettings = EngineSettings()) -> None:
    """Train on the ``train`` channel with this worker's threads; rank 0 writes the model and eval.json."""
    if _native is None:
        raise RuntimeError(f"the native word2vec engine is not built ({IMPORT_ERROR}); reinstall sagetext with "
                           "gcc and the Python headers present, or set SAGETEXT_WORD2VEC_ENGINE=gensim")
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    check_hyperparameters(hp)
    data = read_channel_ids(ctx.channel("train"), hp.min_count, ctx.stop_requested)
    check_same_data(ctx, data)
    model = create_model(data, hp, CPU)
    shard = make_shard(data, ctx.rank, ctx.world_size)
    threads = settings.threads or ctx.settings.train_threads or threads_per_worker()
    log.info("Vocabulary: %d words (min_count=%d) out of %d tokens; training with %d thread(s) on each of "
             "%d worker(s)", len(data.words), hp.min_count, data.raw_words, threads, ctx.world_size)
    if ctx.world_size > 1:
        log.info("Worker %d of %d: its shard holds %d of the %d words kept, in %d blocks", ctx.rank + 1,
                 ctx.world_size, shard.tokens, len(data.ids), shard.blocks)
    with torch.no_grad():
        train_epochs(ctx, data, shard, model, threads, settings)
    if ctx.is_writer:
        write_model(ctx, data, model, hp)


def check_same_data(ctx: TrainingContext, data: CorpusIds) -> None:
    """Workers must all have read the same corpus (each trains its own shard of it)."""
    if ctx.world_size == 1:
        return
    prints = runtime.all_gather_object(fingerprint(data.words, data.counts))
    if len(set(prints)) > 1:
        raise ClientError("the training hosts read different train channels (their vocabularies differ); word2vec "
                          "across hosts needs every host to see the whole channel: set the channel's "
                          "S3DataDistributionType to FullyReplicated (each host then trains its own part)")


def threads_per_worker() -> int:
    """Without the ``train_threads`` setting: the cores this process may use shared among the
    workers of this host (``LOCAL_WORLD_SIZE``, set by the launcher)."""
    local_workers = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cpu_count() // max(local_workers, 1))


@dataclass
class Run:
    """What every segment of one worker uses."""

    ctx: TrainingContext
    hp: BlazingTextHyperparameters
    data: CorpusIds
    shard: Shard
    model: Model
    tables: Tables
    line: Schedule
    threads: int
    syncs_per_epoch: int
    sync: ModelSync
    progress: Progress
    trained: np.ndarray  # int64[1]: tokens of this epoch trained so far, counted by the threads

    def start_at(self, epoch: int, syncs: int, epochs_done: float) -> checkpointing.Start:
        """Where a job restarted from here starts."""
        return checkpointing.Start(Position(epoch, syncs), epochs_done, self.line)

    def save(self, start: checkpointing.Start) -> None:
        checkpointing.save(self.ctx, self.data.words, self.data.counts, (self.model.inputs.weight, self.model.output),
                           start, checkpointing.NATIVE_KIND)


def train_epochs(ctx: TrainingContext, data: CorpusIds, shard: Shard, model: Model, threads: int,
                 settings: EngineSettings) -> None:
    """All epochs on this worker's shard from where the checkpoint (if any) stood."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    start = checkpointing.resume(ctx, data.words, data.counts, (model.inputs.weight, model.output),
                                 checkpointing.NATIVE_KIND)
    syncs = settings.syncs_per_epoch or ctx.settings.word2vec_syncs or SYNCS_PER_EPOCH
    run = Run(ctx, hp, data, shard, model, Tables.create(data.counts, hp.sampling_threshold, model),
              rate_line(hp, start), threads, syncs,
              ModelSync([model.inputs.weight, model.output], ctx.world_size),
              Progress(data.raw_words * hp.epochs, hp.learning_rate, CPU, enabled=ctx.is_writer,
                       start_words=int(start.epochs_done * data.raw_words), metrics=ctx.metrics),
              np.zeros(1, dtype=np.int64))
    began = time.monotonic()
    for epoch in range(start.position.epoch, hp.epochs):
        first = start.position.step if epoch == start.position.epoch else 0
        run.trained[0] = shard.tokens_before(shard.segment(first, run.syncs_per_epoch)[0])
        for k in range(first, run.syncs_per_epoch):
            _train_segment(run, epoch, *shard.segment(k, run.syncs_per_epoch))
            run.sync()
            if k + 1 < run.syncs_per_epoch and runtime.stop_agreed(ctx.stop_requested, 0, ctx.device, every=1):
                run.save(run.start_at(epoch, k + 1, epoch + int(run.trained[0]) / max(shard.tokens, 1)))
                raise TrainingStopped(f"stopped by SIGTERM in epoch {epoch + 1}, at sync {k + 1} of "
                                      f"{run.syncs_per_epoch}")
        run.save(run.start_at(epoch + 1, 0, float(epoch + 1)))
        if epoch + 1 < hp.epochs and runtime.stop_agreed(ctx.stop_requested, 0, ctx.device, every=1):
            raise TrainingStopped(f"stopped by SIGTERM after epoch {epoch + 1}")
    run.progress.finish()
    _log_worker_speed(run, start.epochs_done, time.monotonic() - began)


def _train_segment(run: Run, epoch: int, first_block: int, last_block: int) -> None:
    """Blocks ``[first_block, last_block)`` of the epoch, a progress line every few seconds."""
    hp = run.hp
    line = run.line
    rate = (line.start, line.end, line.origin, float(line.epochs), hp.learning_rate * MIN_ALPHA_FRACTION)
    seed = epoch_seed(hp.seed, run.ctx.rank, epoch)
    for block in range(first_block, last_block, CALL_BLOCKS):
        _native.train(
            0 if hp.mode == "cbow" else 1, run.model.inputs.weight.numpy(), run.model.output.numpy(),
            run.shard.ids, run.shard.sentence_starts, run.shard.block_sentences, run.tables.keep,
            run.tables.alias_threshold, run.tables.alias_index, run.tables.bag_offsets, run.tables.bag_rows,
            dim=hp.vector_dim, window=hp.window_size, negatives=hp.negative_samples,
            windows_per_negative_set=hp.batch_size if hp.mode == "batch_skipgram" else 1, rate=rate,
            epoch=float(epoch), seed=seed, first_block=block, last_block=min(block + CALL_BLOCKS, last_block),
            threads=run.threads, progress=run.trained)
        done = int(run.trained[0]) / max(run.shard.tokens, 1)
        run.progress.advance(int((epoch + done) * run.data.raw_words))


def rate_line(hp: BlazingTextHyperparameters, start: checkpointing.Start) -> Schedule:
    """The saved rate line, or, when a resumed job asks for another number of epochs, one from the
    rate where it stopped down to 0 at the new end (as the other engines do)."""
    line = start.schedule
    if line.epochs != hp.epochs:
        line = Schedule(line.at(start.epochs_done), 0.0, start.epochs_done, hp.epochs)
    return line


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    """One 64-bit seed per (seed, rank, epoch), well mixed."""
    return int(np.random.SeedSequence([abs(seed), rank, epoch]).generate_state(1, np.uint64)[0])


def _log_worker_speed(run: Run, epochs_before: float, seconds: float) -> None:
    """Each worker's own throughput (raw words of its shard), so that every host's log shows its part."""
    if run.ctx.world_size == 1:
        return
    share = run.shard.tokens / max(len(run.data.ids), 1)
    words = (run.hp.epochs - epochs_before) * run.data.raw_words * share
    log.info("Worker %d of %d trained its shard: %.0f words in %.1f s, %.2f million words/sec", run.ctx.rank + 1,
             run.ctx.world_size, words, seconds, words / max(seconds, 1e-9) / 1e6)
    log.info("Worker %d of %d: %d model combinations, each summing the updates of %.0f of the %d rows on average",
             run.ctx.rank + 1, run.ctx.world_size, run.sync.syncs, run.sync.rows_sent / max(run.sync.syncs, 1),
             run.sync.rows)
