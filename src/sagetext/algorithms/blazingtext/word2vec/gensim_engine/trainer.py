"""BlazingText's word2vec modes on CPU (``cbow``, ``skipgram``, ``batch_skipgram``), trained by gensim.

A user gets what SageMaker's BlazingText gives: the same hyperparameters,
``vectors.txt`` / ``vectors.bin`` / ``eval.json`` in the model folder, and the same log lines
(``Alpha: ...  Progress: ...  Million Words/sec: ...``, ``Training finished!``, ``#mean_rho``).

Why gensim: its word2vec and fastText trainers are optimised C (Cython), multi-threaded, and
match the reference word2vec.c / fastText quality; we only add what SageMaker's contract needs
around them: streaming the ``train`` channel (a text8-like corpus is one 100 MB line, read in
chunks), BlazingText's progress lines, and artifacts written through ``vectors`` so that a GPU
trainer can write the same files through the same code.

On CPU ``batch_skipgram`` trains like ``skipgram`` (``batch_size`` only shapes GPU batches), and
a multi-host job trains on rank 0 alone with gensim's threads; the other ranks return.

Spot restarts (``checkpoint``): gensim trains one epoch per ``train()`` call, each given the
start and end learning rates of that epoch on the whole run's linear decay, so the schedule is
the same as one call over all epochs, and a resumed job simply continues it. A checkpoint is
saved after every epoch. On SIGTERM the corpus stops handing out sentences, gensim finishes the
jobs already queued (a fraction of a second) and returns; the checkpoint then records how many
sentences of the epoch were trained, and a resumed job skips them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gensim.models import FastText, Word2Vec

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.word2vec import check_hyperparameters, evaluation
from sagetext.algorithms.blazingtext.word2vec.corpus import ChannelCorpus
from sagetext.algorithms.blazingtext.word2vec.gensim_engine import checkpoint as checkpointing
from sagetext.algorithms.blazingtext.word2vec.gensim_engine.checkpoint import epochs_done
from sagetext.algorithms.blazingtext.word2vec.learning_rate import MIN_ALPHA_FRACTION, Schedule
from sagetext.algorithms.blazingtext.word2vec.progress import PROGRESS_SECONDS, log_finished, log_progress
from sagetext.algorithms.blazingtext.word2vec.vectors import FastTextFields, Subwords, WordVectors, write_artifacts
from sagetext.contract import progress
from sagetext.contract.checkpoints import Position
from sagetext.contract.cluster import cpu_count
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.metrics import MetricLogger
from sagetext.errors import ClientError

log = logging.getLogger(__name__)



class ProgressReporter:
    """Logs BlazingText's progress line every few seconds from a background thread.

    Words are counted as SageMaker (and fastText) count them: raw tokens read from the input,
    before frequent-word subsampling and min_count filtering, so rates compare with theirs.
    Alpha is the linearly decayed learning rate at the current progress; a resumed job counts
    the epochs done before it (``done``), and its ETA follows this run's rate.
    """

    def __init__(self, corpus: ChannelCorpus, words_per_epoch: int, schedule: Schedule, done: float = 0.0,
                 interval: float = PROGRESS_SECONDS, metrics: MetricLogger | None = None) -> None:
        self.corpus, self.words_per_epoch = corpus, max(words_per_epoch, 1)
        self.schedule, self.done, self.interval = schedule, done, interval  # done: epochs before this run
        self.metrics = metrics
        self.start_words = corpus.words_read
        self.start_time = time.monotonic()
        self.run = progress.Progress(schedule.epochs, done)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="word2vec-progress", daemon=True)

    def __enter__(self) -> "ProgressReporter":
        self.start_words, self.start_time = self.corpus.words_read, time.monotonic()
        self.run = progress.Progress(self.schedule.epochs, self.done)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def words(self) -> int:
        return self.corpus.words_read - self.start_words

    @property
    def seconds(self) -> float:
        return max(time.monotonic() - self.start_time, 1e-9)

    def log_line(self) -> None:
        epochs = min(self.done + self.words / self.words_per_epoch, self.schedule.epochs)
        self.run.update(epochs)
        progress_fraction = epochs / max(self.schedule.epochs, 1)
        alpha = self.schedule.at(epochs)
        log_progress(alpha, progress_fraction, self.words / self.seconds, self.run.eta_text(), self.metrics,
                     round(epochs * self.words_per_epoch))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.log_line()


def train_word2vec(ctx: TrainingContext) -> None:
    """Train cbow / skipgram / batch_skipgram on the ``train`` channel; rank 0 writes the model."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    check_hyperparameters(hp)
    if ctx.world_size > 1:
        if not ctx.is_writer:
            log.info("Rank %d: the CPU word2vec trainer runs on rank 0 only; nothing to do here", ctx.rank)
            return
        log.info("The CPU word2vec path trains in one process with gensim's threads; "
                 "ranks 1..%d stay idle", ctx.world_size - 1)
    if hp.mode == "batch_skipgram":
        log.info("batch_skipgram on CPU trains as skipgram (batch_size=%d applies to GPU batches)", hp.batch_size)
    corpus = ChannelCorpus(ctx.channel("train"), stop=ctx.stop_requested)
    model = build_model(hp, workers=cpu_count(), seed=hp.seed + ctx.rank)
    position, alpha, resumed = start(ctx, model, corpus)
    log.info("Vocabulary: %d words (min_count=%d) out of %d tokens; training with %d threads",
             len(model.wv), hp.min_count, model.corpus_total_words, model.workers)
    schedule = Schedule(alpha, model.min_alpha, epochs_done(position, model.corpus_count), hp.epochs)
    if resumed:
        log_resumption(position, model.corpus_count, schedule)
    with ProgressReporter(corpus, model.corpus_total_words, schedule, schedule.origin,
                          metrics=ctx.metrics) as reporter:
        train_epochs(ctx, model, corpus, schedule, position)
        reporter.log_line()
    log_finished(reporter.words / reporter.seconds, reporter.seconds)
    vectors = to_word_vectors(model)
    write_artifacts(ctx.model_dir, vectors, FastTextFields.of(hp, model.syn1neg, model.corpus_total_words))
    if hp.evaluation:
        evaluation.run_evaluation(vectors.vector, ctx.model_dir, ctx.metrics)


def start(ctx: TrainingContext, model: Word2Vec, corpus: ChannelCorpus) -> tuple[Position, float, bool]:
    """The vocabulary and weights from the checkpoint, else from a pass over the data; where to
    start (a position whose step counts sentences), the learning rate there, and whether that
    is a checkpoint's position."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    saved = checkpointing.load(ctx)
    if saved is not None:
        checkpointing.restore(model, saved)
        return saved.position, saved.alpha, True
    model.build_vocab(corpus_iterable=corpus)
    if corpus.stopped:  # SIGTERM during the vocabulary pass: nothing trained yet, nothing to save
        raise TrainingStopped("stopped while building the vocabulary")
    if len(model.wv) == 0:
        raise ClientError(f"train channel: no word occurs at least min_count={hp.min_count} times "
                          f"({model.corpus_total_words} words read); lower min_count or add data")
    return Position(0, 0), hp.learning_rate, False


def log_resumption(at: Position, corpus_count: int, schedule: Schedule) -> None:
    """Where the resumed job continues (the checkpoint's own line says the epoch and sentence)."""
    if at.epoch >= schedule.epochs:
        log.info("All %d epochs were trained before the restart; writing the model", schedule.epochs)
        return
    log.info("Continuing epoch %d of %d at sentence %d of %d, learning rate %.6g", at.epoch + 1, schedule.epochs,
             at.step + 1, corpus_count, schedule.at(epochs_done(at, corpus_count)))


def train_epochs(ctx: TrainingContext, model: Word2Vec, corpus: ChannelCorpus, schedule: Schedule,
                 position: Position) -> None:
    """One gensim ``train()`` per epoch (or rest of one), a checkpoint after each; stops on SIGTERM."""
    count = model.corpus_count
    while position.epoch < schedule.epochs:
        corpus.skip = position.step
        model.train(corpus_iterable=corpus, total_examples=count - position.step, epochs=1,
                    start_alpha=schedule.at(epochs_done(position, count)),
                    end_alpha=schedule.at(position.epoch + 1))
        if corpus.stopped and corpus.sentences < count:
            position = Position(position.epoch, corpus.sentences)
            log.info("Stopping in epoch %d after sentence %d of %d", position.epoch + 1, position.step, count)
            checkpointing.save(ctx, model, position, schedule.at(epochs_done(position, count)))
            raise TrainingStopped(f"stopped in epoch {position.epoch + 1}")
        position = Position(position.epoch + 1, 0)
        log.info("-------------- End of epoch: %d", position.epoch)
        checkpointing.save(ctx, model, position, schedule.at(position.epoch))
        if ctx.stop_requested.is_set():
            raise TrainingStopped(f"stopped after epoch {position.epoch}")


def build_model(hp: BlazingTextHyperparameters, workers: int, seed: int) -> Word2Vec:
    """An untrained gensim Word2Vec (or FastText with subwords) with BlazingText's settings."""
    common: dict[str, Any] = dict(
        sg=0 if hp.mode == "cbow" else 1, vector_size=hp.vector_dim, window=hp.window_size,
        negative=hp.negative_samples, hs=0, sample=hp.sampling_threshold, min_count=hp.min_count,
        epochs=hp.epochs, alpha=hp.learning_rate, min_alpha=hp.learning_rate * MIN_ALPHA_FRACTION,
        workers=workers, seed=seed, max_vocab_size=None,
    )
    if hp.subwords:
        return FastText(min_n=hp.min_char, max_n=hp.max_char, bucket=hp.buckets, **common)
    return Word2Vec(**common)


def to_word_vectors(model: Word2Vec) -> WordVectors:
    """The trained embedding as the trainer-independent value ``vectors`` writes and serves."""
    wv = model.wv
    words = list(wv.index_to_key)
    counts = [int(c) for c in wv.expandos["count"]]
    if isinstance(model, FastText):
        return WordVectors(words, wv.vectors_vocab, counts, Subwords(wv.min_n, wv.max_n, wv.vectors_ngrams))
    return WordVectors(words, wv.vectors, counts)


