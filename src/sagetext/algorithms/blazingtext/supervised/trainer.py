"""BlazingText supervised training: epochs of SGD, validation, early stopping, checkpoints.

Reads top to bottom: prepare the data, build or resume the model, run the epochs, validate
after each, stop early if asked, then write ``model.bin`` (rank 0 only, atomically). The
learning rate falls linearly from ``learning_rate`` to 0 over all tokens of all epochs, as
in fastText. Log lines follow BlazingText's.

An epoch is a sequence of segments of mini-batches. Between segments the loop honours a stop
request (SIGTERM: checkpoint, then ``TrainingStopped``), logs progress, and, with several
workers, averages parameters (``AVERAGES_PER_EPOCH`` times an epoch). On CPU the batches of a
segment may be shared by ``train_threads`` threads (a setting, default 1) that update the same
weights without locks, as fastText's threads do (Hogwild); each torch op runs on one core,
because a step's ops are too small to split profitably. With one thread a run is repeatable
bit for bit.

Two SGD engines run this loop. A one-worker CPU job with ``loss`` softmax or ova uses the
compiled per-line step (``compiled``: fastText's own update, numpy weights, no torch import;
its batches are only units of work between stop checks); GPUs, several workers, ``ns`` and
``hs``, and installs without the compiled extension use the PyTorch mini-batch step (``model``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sagetext.algorithms.blazingtext.fasttext_format import model_file
from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.supervised import checkpoint as checkpointing
from sagetext.algorithms.blazingtext.supervised import compiled
from sagetext.algorithms.blazingtext.supervised.batches import Batch, LineBatch, PlannedBatches
from sagetext.algorithms.blazingtext.supervised.checkpoint import TrainState
from sagetext.algorithms.blazingtext.supervised.corpus import EncodedLines, PreparedData, prepare
from sagetext.algorithms.blazingtext.supervised.weights import Weights
from sagetext.contract import progress
from sagetext.contract.artifacts import write_atomic
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

SEGMENT_BATCHES = 64  # batches read from the spill at a time
# Planned batches up to this size stay in memory as tensors after the first epoch reads them
# (small data sets: no re-reading and re-parsing of the spill every epoch); larger ones stream.
KEEP_IN_MEMORY_BYTES = 64 << 20
AVERAGES_PER_EPOCH = 4  # 1, 4 and 16 give the same accuracy on IMDB; each costs one all-reduce of the model


class Run:
    """One training run's fixed parts: context, data, model, batches, threads, clocks."""

    def __init__(self, ctx: TrainingContext, data: PreparedData, model: Weights) -> None:
        self.ctx = ctx
        self.hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
        self.data = data
        self.model = model
        self.compiled = isinstance(model, compiled.ArrayModel)
        self.batches = data.train
        self.kept: dict[tuple[int, int], list[Any]] | None = {} if data.train.nbytes <= KEEP_IN_MEMORY_BYTES else None
        self.loss: Any = None  # the PyTorch path's output layer (losses.OutputLoss)
        if not self.compiled:
            from sagetext.algorithms.blazingtext.supervised import losses

            self.loss = losses.make(self.hp.loss, data.dictionary.label_counts, self.hp.negative_samples, ctx.device)
        self.total_tokens = self.hp.epochs * data.train.ntokens
        self.points = averaging_points(len(data.train), ctx.world_size)
        self.threads = training_threads(ctx)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sgd") if self.threads > 1 else None
        self.sgd_seconds = 0.0
        self.sgd_tokens = 0
        self.progress = progress.Progress(self.total_tokens)  # restarted by ``resume_progress``

    def synchronise(self) -> None:
        """Average the parameters of all workers (model averaging; a no-op alone).

        Tried on IMDB with 2 workers: averaging only over the workers that changed a row gives
        the same accuracy as plain averaging; summing the workers' changes diverges.
        """
        if self.ctx.world_size > 1:  # the PyTorch path's tensors
            runtime.average_([self.model.input, self.model.output])  # type: ignore[attr-defined]

    def lr(self, tokens_done: int) -> float:
        """fastText's linear decay; times the number of workers when their models are averaged.

        Averaging divides each worker's steps by the number of workers; the larger rate makes
        the averaged update, to first order, that of one sequential pass over all workers'
        lines (2 workers on a 3,000-review IMDB slice: 0.79 with it, 0.65 without; one worker
        0.81).
        """
        rate = self.hp.learning_rate * self.ctx.world_size
        return rate * max(0.0, 1.0 - tokens_done / max(self.total_tokens, 1))

    def segment(self, start: int, end: int) -> list[Any]:
        """Batches ``start`` to ``end`` (exclusive), kept for the next epochs when small: numpy
        arrays (``LineBatch``) for the compiled SGD, else tensors on the device (``Batch``)."""
        if self.kept is not None and (start, end) in self.kept:
            return self.kept[(start, end)]
        batches: list[Any] = (self.batches.read_arrays(start, end) if self.compiled
                              else self.batches.read(start, end, self.ctx.device))
        if self.kept is not None:
            self.kept[(start, end)] = batches
        return batches

    def words_per_second(self) -> float:
        return self.sgd_tokens * self.ctx.world_size / max(self.sgd_seconds, 1e-9)

    def resume_progress(self, state: TrainState) -> None:
        """Count this run's rate and ETA from where ``state`` (a checkpoint's, or a new one) starts."""
        self.progress = progress.Progress(self.total_tokens, state.tokens_done)

    def log_progress(self, state: TrainState, force: bool = False) -> None:
        """BlazingText's progress line every few seconds, with the time left (ETA, ours); the
        learning rate and the rate also go to TensorBoard, against the tokens trained."""
        self.progress.update(state.tokens_done)
        if self.ctx.is_writer and (self.progress.due() or force):
            lr, speed = self.lr(state.tokens_done), self.words_per_second() / 1e6
            log.info("##### Alpha: %.4f  Progress: %.2f%%  Million Words/sec: %.2f  ETA: %s #####", lr,
                     100.0 * state.tokens_done / max(self.total_tokens, 1), speed, self.progress.eta_text())
            self.ctx.metrics.scalar("train:learning_rate", lr, state.tokens_done)
            self.ctx.metrics.scalar("train:million_words_per_sec", speed, state.tokens_done)


def train(ctx: TrainingContext) -> None:
    """Train on ``ctx``'s channels and write ``model.bin`` (see the module docstring)."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    if compiled.chosen(ctx.device, ctx.world_size, hp.loss):
        _train(ctx, use_compiled=True)
        return
    import torch

    threads = torch.get_num_threads()
    if ctx.device == "cpu":
        torch.set_num_threads(1)
    try:
        _train(ctx, use_compiled=False)
    finally:
        torch.set_num_threads(threads)


def _train(ctx: TrainingContext, use_compiled: bool) -> None:
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    clock = time.monotonic()
    data = prepare(ctx, compiled.LINES_PER_BATCH if use_compiled else None)
    prepared = time.monotonic()
    if data.dictionary.nlabels == 1 and ctx.is_writer:
        log.warning("The training data has a single label, %s: the model will give it to every line with "
                    "probability 1. A classifier needs lines of at least two labels; check the __label__ "
                    "prefixes of the 'train' channel", data.dictionary.label_names()[0])
    model: Weights
    if use_compiled:
        model = compiled.ArrayModel.initial(data.input_rows, data.dictionary.nlabels, hp.vector_dim, hp.seed,
                                            data.train.row_order)
    else:
        from sagetext.algorithms.blazingtext.supervised.model import Model

        model = Model.initial(data.input_rows, data.dictionary.nlabels, hp.vector_dim, hp.seed, ctx.device,
                              data.train.row_order)
    run = Run(ctx, data, model)
    state = checkpointing.resume(ctx, data.dictionary, model, run.total_tokens, run.points,
                                 data.train.lines_per_batch)
    run.resume_progress(state)
    log.info("Training on %s with %d thread(s) (%s SGD): %d lines in %d batches (%.0f MB spilled); data ready in "
             "%.2f s, model in %.2f s", ctx.device, run.threads, "compiled per-line" if use_compiled else "PyTorch",
             data.train.num_lines, len(run.batches), data.train.nbytes / 1e6, prepared - clock,
             time.monotonic() - prepared)
    try:
        while state.epoch < hp.epochs:
            _run_epoch(run, state)
            state.epoch, state.batch, state.averages_done = state.epoch + 1, 0, 0
            if ctx.is_writer:
                log.info("-------------- End of epoch: %d", state.epoch)
            stop = _validate(run, state)
            checkpointing.save(ctx, data.dictionary, model, state, run.total_tokens, data.train.lines_per_batch)
            if stop:
                break
        if state.best is not None:
            run.model.copy_(state.best)
        _finish(run, state, clock)
    finally:
        if run.pool is not None:
            run.pool.shutdown()
        data.close()


def _segments(run: Run, first: int) -> list[tuple[int, int]]:
    """The epoch's segments from batch ``first``: SEGMENT_BATCHES long, cut after averaging points."""
    segments, start = [], first
    while start < len(run.batches):
        end = min(start + SEGMENT_BATCHES, len(run.batches))
        upcoming = [p for p in run.points if p >= start]
        end = min(end, upcoming[0] + 1) if upcoming else end
        segments.append((start, end))
        start = end
    return segments


def _run_epoch(run: Run, state: TrainState) -> None:
    ctx = run.ctx
    for start, end in _segments(run, state.batch):
        _run_segment(run, run.segment(start, end), state)
        state.batch = end
        averaged = run.points.count(end - 1)
        for _ in range(averaged):
            run.synchronise()
        state.averages_done += averaged
        run.log_progress(state)
        if not run.model.is_finite():  # fastText stops on NaN too
            raise ClientError(f"training diverged in epoch {state.epoch + 1}: the weights are no longer finite; "
                              f"use a smaller learning_rate (now {run.hp.learning_rate})")
        if _stop_requested(ctx, at_average=averaged > 0):
            checkpointing.save(ctx, run.data.dictionary, run.model, state, run.total_tokens,
                               run.data.train.lines_per_batch)
            raise TrainingStopped(f"stopped in epoch {state.epoch + 1} after batch {state.batch} of {len(run.batches)}")
    for _ in range(len(run.points) - state.averages_done):
        run.synchronise()  # a worker short of batches still takes part
    run.log_progress(state, force=True)


def _run_segment(run: Run, batches: list[Batch] | list[LineBatch], state: TrainState) -> None:
    """SGD over ``batches``, shared out to the threads in contiguous parts (Hogwild)."""
    shares = min(run.threads, len(batches))
    start, clock = state.tokens_done, time.monotonic()
    seed = (run.hp.seed, run.ctx.rank, state.epoch)
    step = _compiled_step if run.compiled else _torch_step

    def work(part: list[Any]) -> int:
        done = 0
        for batch in part:  # the rate follows the tokens of all threads together
            step(run, batch, run.lr(start + done * shares), run.lr(start + (done + batch.ntokens) * shares), seed)
            done += batch.ntokens
        return done

    if shares <= 1 or run.pool is None:
        done = work(batches)
    else:
        cuts = [round(k * len(batches) / shares) for k in range(shares + 1)]
        done = sum(run.pool.map(work, [batches[a:b] for a, b in zip(cuts, cuts[1:])]))
    state.tokens_done += done
    run.sgd_tokens += done
    run.sgd_seconds += time.monotonic() - clock


def _compiled_step(run: Run, batch: LineBatch, lr_start: float, lr_end: float, seed: tuple[int, ...]) -> None:
    model = run.model
    assert isinstance(model, compiled.ArrayModel)
    compiled.train_batch(model.input, model.output, batch, lr_start, lr_end, run.hp.loss, seed)


def _torch_step(run: Run, batch: Batch, lr_start: float, lr_end: float, seed: tuple[int, ...]) -> None:
    from sagetext.algorithms.blazingtext.supervised.model import sgd_step

    sgd_step(run.model, batch, lr_start, run.loss, seed)  # type: ignore[arg-type]


def training_threads(ctx: TrainingContext) -> int:
    """SGD threads: the ``train_threads`` setting (``SAGETEXT_TRAIN_THREADS``) on CPU, else 1.

    Not the core count by default: two threads each with their own batch act like batches of
    twice the size, which costs accuracy (IMDB slice of 3,000 reviews: 0.78 with 2 threads,
    0.81 with 1; full IMDB: 0.894 against 0.895) for a speed-up of 1 to 1.5 on 2 cores.
    """
    return (ctx.settings.train_threads or 1) if ctx.device.startswith("cpu") else 1


def averaging_points(num_batches: int, world_size: int) -> list[int]:
    """Batches after which workers average their parameters: AVERAGES_PER_EPOCH per epoch."""
    if world_size == 1:
        return []
    return [max(round(k * num_batches / AVERAGES_PER_EPOCH) - 1, 0) for k in range(1, AVERAGES_PER_EPOCH + 1)]


def _stop_requested(ctx: TrainingContext, at_average: bool) -> bool:
    """Alone: whenever SIGTERM came. Distributed: only where all workers meet, and all agree."""
    if ctx.world_size == 1:
        return ctx.stop_requested.is_set()
    if not at_average:
        return False
    import torch

    flag = torch.tensor([1.0 if ctx.stop_requested.is_set() else 0.0], device=ctx.device)
    return bool(runtime.all_reduce_sum(flag).item() > 0)


def _validate(run: Run, state: TrainState) -> bool:
    """Log validation accuracy; keep the best weights; True when early stopping says stop."""
    if run.data.validation is None:
        return False
    hp, writer = run.hp, run.ctx.is_writer
    accuracy = _accuracy(run, run.data.validation)
    if writer:
        log.info("Validation accuracy: %f", accuracy)
        run.ctx.metrics.scalar("validation_accuracy", accuracy, state.epoch)
    if accuracy > state.best_accuracy:
        state.best_accuracy, state.epochs_without_improvement = accuracy, 0
        if hp.early_stopping:
            if writer:
                log.info("Validation accuracy improved! Storing best weights...")
            state.best = run.model.clone()
    else:
        state.epochs_without_improvement += 1
    if hp.early_stopping and state.epoch >= hp.min_epochs and state.epochs_without_improvement >= hp.patience:
        if writer:
            log.info("Stopping early: validation accuracy has not improved for %d epochs (best %f)",
                     state.epochs_without_improvement, state.best_accuracy)
        return True
    return False


def _accuracy(run: Run, data: PlannedBatches | EncodedLines) -> float:
    ctx = run.ctx
    hits, total = _hits(run, data), data.num_lines
    hits_all, total_all = _sum(ctx, hits), _sum(ctx, total)
    return hits_all / total_all if total_all else 0.0


def _hits(run: Run, data: PlannedBatches | EncodedLines) -> int:
    """Lines of ``data`` whose top label is one of theirs (fastText's precision@1 numerator)."""
    blocks = data.blocks() if isinstance(data, EncodedLines) else data.lines()
    return sum(block.hits(run.model.top_labels_of(block, run.loss)) for block in blocks)


def _sum(ctx: TrainingContext, value: int) -> int:
    if ctx.world_size == 1:
        return value
    import torch

    return int(runtime.all_reduce_sum(torch.tensor([float(value)], dtype=torch.float64, device=ctx.device)).item())


def _finish(run: Run, state: TrainState, started: float) -> None:
    """Write ``model.bin`` (in a thread: its row reordering and writing overlap the accuracy
    passes, which take the other core) and log the final figures."""
    ctx, data = run.ctx, run.data
    with ThreadPoolExecutor(1, thread_name_prefix="write-model") as writer:
        written = writer.submit(write_model, ctx, data, run.model) if ctx.is_writer else None
        train_accuracy = _accuracy(run, data.train)
        train_examples = _sum(ctx, data.train.num_lines)
        validation = data.validation
        validation_accuracy = _accuracy(run, validation) if validation is not None else 0.0
        validation_examples = _sum(ctx, validation.num_lines) if validation is not None else 0
        if written is None:
            return
        written.result()
    log.info("Saved %s (%d words, %d labels, %d buckets)", ctx.model_dir / model_file.MODEL_FILE,
             data.dictionary.nwords, data.dictionary.nlabels, data.buckets)
    log.info("Training finished.")
    log.info("Average throughput in Million words/sec: %.2f", run.words_per_second() / 1e6)
    log.info("Total training time in seconds: %.2f", time.monotonic() - started)
    log.info("SGD time in seconds: %.2f", run.sgd_seconds)
    ctx.metrics.log("train_accuracy", train_accuracy, state.epoch)  # TensorBoard's x-axis: epochs
    log.info("Number of train examples: %d", train_examples)
    if validation is not None:
        ctx.metrics.log("validation_accuracy", validation_accuracy, state.epoch)
        log.info("Number of validation examples: %d", validation_examples)


def write_model(ctx: TrainingContext, data: PreparedData, model: Weights) -> None:
    """``model.bin`` in fastText's format, written atomically."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    args = model_file.Args(dim=hp.vector_dim, word_ngrams=hp.word_ngrams, bucket=data.buckets,
                             epoch=hp.epochs, min_count=hp.min_count, loss=model_file.LOSS_CODES[hp.loss],
                             neg=hp.negative_samples)
    ft = model_file.FastTextModel(args, data.dictionary, *model.fasttext_matrices())
    write_atomic(ctx.model_dir / model_file.MODEL_FILE, lambda f: model_file.write(f, ft))
