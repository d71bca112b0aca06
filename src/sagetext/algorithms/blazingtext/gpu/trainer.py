"""BlazingText word2vec (cbow, skipgram, batch_skipgram, subwords) trained with PyTorch.

The same job as ``word2vec.train_word2vec`` (gensim), with the same hyperparameters, log lines
and artifacts, on ``ctx.device``: a CUDA GPU, or the CPU (tests, and users who set
``SAGETEXT_WORD2VEC_ENGINE=torch``). Top to bottom:

1. every worker reads the whole channel once into word ids (``corpus_ids``) and so builds the
   same vocabulary, then keeps its contiguous shard (1/world of the ids) on the device;
2. each epoch: subsample, cut into minibatches of windows (``batches``) and update (the fused
   Triton step from ``kernels`` where it runs, else ``step``'s reference);
3. 16 times an epoch the workers' models are combined (``averaging``);
4. rank 0 writes vectors.txt / vectors.bin through ``vectors.write_artifacts`` and, with
   ``evaluation=true``, eval.json and ``#mean_rho`` through ``evaluation``, as the gensim path does.

Progress lines (``progress``) are the gensim path's: words are counted raw, before min_count
and subsampling, summed over workers, as SageMaker counts them. SIGTERM stops training between
steps (``TrainingStopped``); this engine does not checkpoint yet, so a restart starts over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from sagetext.algorithms.blazingtext import evaluation
from sagetext.algorithms.blazingtext.gpu import kernels
from sagetext.algorithms.blazingtext.gpu.averaging import ModelSync
from sagetext.algorithms.blazingtext.gpu.batches import Sampler, WindowSettings, epoch_windows
from sagetext.algorithms.blazingtext.gpu.corpus_ids import CorpusIds, read_corpus_ids
from sagetext.algorithms.blazingtext.gpu.input_rows import InputRows
from sagetext.algorithms.blazingtext.gpu.progress import Progress
from sagetext.algorithms.blazingtext.gpu.step import Update, reference_update
from sagetext.algorithms.blazingtext.vectors import Subwords, WordVectors, write_artifacts
from sagetext.algorithms.blazingtext.word2vec import ChannelCorpus, check_hyperparameters
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.hyperparameters import Hyperparameters

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


@dataclass
class Model:
    inputs: InputRows
    output: torch.Tensor  # (n_words, dim) float32, zeros at the start as in word2vec.c


def train_word2vec(ctx: TrainingContext, settings: EngineSettings = EngineSettings()) -> None:
    """Train on the ``train`` channel on ``ctx.device``; rank 0 writes the model and eval.json."""
    hp = ctx.hyperparameters
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


def create_model(data: CorpusIds, hp: Hyperparameters, device: torch.device) -> Model:
    """The same initial parameters on every worker (seeded with ``seed``, not ``seed + rank``)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(hp.seed)
    subwords = (hp.min_char, hp.max_char, hp.buckets) if hp.subwords else None
    inputs = InputRows.create(data.words, hp.vector_dim, device, generator, subwords)
    return Model(inputs, torch.zeros((len(data.words), hp.vector_dim), dtype=torch.float32, device=device))


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


def train_epochs(ctx: TrainingContext, data: CorpusIds, model: Model, update: Update,
                 settings: EngineSettings) -> None:
    """All epochs on this worker's shard, combining the workers' models syncs_per_epoch times an epoch."""
    hp = ctx.hyperparameters
    device = model.output.device
    shard_ids, shard_sentences = data.shard(ctx.rank, ctx.world_size)
    ids = torch.as_tensor(shard_ids, dtype=torch.int64, device=device)
    sentences = torch.as_tensor(shard_sentences, device=device)
    sampler = Sampler(data.counts, hp.sampling_threshold, device, hp.seed + ctx.rank)
    window_settings = WindowSettings(hp.window_size, hp.negative_samples,
                                     hp.batch_size if hp.mode == "batch_skipgram" else 1, hp.learning_rate, hp.epochs,
                                     settings.repeat_cap or REPEAT_CAPS[hp.mode], len(data.words))
    per_step = settings.windows_per_step or _default_windows_per_step(device, model.inputs.subwords)
    sync = ModelSync([model.inputs.weight, model.output], ctx.world_size)
    progress = Progress(data.raw_words * hp.epochs, hp.learning_rate, device, enabled=ctx.is_writer)
    for epoch in range(hp.epochs):
        synced_before = sync.syncs
        for windows, done in epoch_windows(ids, sentences, sampler, window_settings, epoch, per_step):
            update(model.inputs, model.output, windows)
            progress.advance(int((epoch + done) * data.raw_words))
            if done * settings.syncs_per_epoch >= sync.syncs - synced_before + 1:
                sync()
            if ctx.stop_requested.is_set():
                raise TrainingStopped("stopped by SIGTERM; the PyTorch word2vec engine saves no checkpoint yet")
        while sync.syncs - synced_before < settings.syncs_per_epoch:  # a worker with few windows catches up
            sync()
    progress.finish()


def _default_windows_per_step(device: torch.device, subwords: bool) -> int:
    if subwords:
        return SUBWORD_WINDOWS_PER_STEP
    return GPU_WINDOWS_PER_STEP if device.type == "cuda" else CPU_WINDOWS_PER_STEP


def write_model(ctx: TrainingContext, data: CorpusIds, model: Model, hp: Hyperparameters) -> WordVectors:
    """vectors.txt, vectors.bin and (evaluation=true) eval.json, exactly as the gensim path writes them."""
    inputs = model.inputs
    subwords = Subwords(inputs.minn, inputs.maxn, inputs.ngram_rows()) if inputs.subwords else None
    vectors = WordVectors(data.words, inputs.word_rows(), data.counts.tolist(), subwords)
    fasttext = None
    if subwords is not None:
        fasttext = {"output": model.output.cpu().numpy(), "mode": "cbow" if hp.mode == "cbow" else "skipgram",
                    "window": hp.window_size, "epochs": hp.epochs, "min_count": hp.min_count,
                    "negative": hp.negative_samples, "sample": hp.sampling_threshold, "ntokens": data.raw_words}
    write_artifacts(ctx.model_dir, vectors, fasttext)
    if hp.evaluation:
        evaluation.run_evaluation(vectors.vector, ctx.model_dir, ctx.metrics)
    return vectors
