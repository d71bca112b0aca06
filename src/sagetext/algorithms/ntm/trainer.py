"""NTM training: read the bag-of-words channels, fit ProdLDA, log losses, stop early, write
the model and its topics.

Per epoch: a random ``sub_sample`` fraction of this worker's training shard, shuffled, in
batches of ``mini_batch_size`` per instance (split across the instance's workers); then the
validation loss, which drives early stopping (the training loss when there is no validation
channel). Lines printed (rank 0)::

    Epoch 3/50: batch 20/44, 9700 docs/s, 5.4% done, ETA 4m 10s
    Epoch 3/50: train total_loss 612.1000 (recon 605.3000 + kl 6.8000), 11258 documents, 9800 docs/s, ETA 4m 02s
    #train:total_loss: 612.1
    #validation:total_loss: 640.2

and after training ``#test:total_loss`` / ``#test:perplexity`` with a test channel, the topic
summary, ``#tu``, ``#wetc`` (with word vectors) and ``#npmi``. The ETA is the time left for the
remaining epochs at this run's rate (early stopping may end sooner). TensorBoard gets the losses
per epoch, docs/s, the scores and the topics as a table. Losses are per document
(reconstruction negative log-likelihood + KL); perplexity is exp(total loss / total words). With
the embedding decoder (``ecr.py``) the word embeddings are computed from the training channel
before the first step, and each step adds the clustering penalty's gradient, not its value: the
losses logged and watched by early stopping are the model's own.

Channels are read as streams into a ``DocumentStore`` on disk (memory holds an offset per
document, not the documents); File mode reads a channel once, Pipe mode re-reads each epoch's
FIFO. A checkpoint is saved every epoch (when configured) and on
SIGTERM; a restarted job resumes from it (from an epoch's end exactly: the shuffles are seeded
per epoch and the checkpoint holds every worker's generator state).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from sagetext.algorithms.ntm import coherence, ecr, topics, word_embeddings
from sagetext.algorithms.ntm import model as ntm_model
from sagetext.algorithms.ntm.documents import DocumentStore
from sagetext.algorithms.ntm.hyperparameters import NtmHyperparameters
from sagetext.algorithms.ntm.model import ModelConfig, ProdLDA
from sagetext.contract.artifacts import write_bytes_atomic
from sagetext.contract.checkpoints import Position, generator_state, restore_generator_state
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.progress import Progress
from sagetext.data import bow
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

EVAL_BATCH = 2048
ADADELTA_DEFAULT_LR = 0.001
ADADELTA_RHO, ADADELTA_EPSILON = 0.9, 1e-5  # MXNet's AdaDelta defaults
CHECKPOINT_KIND = "ntm/3"  # 2: batch-norm shifts, two optimizer groups (decay on matrices only); 3: embedding decoder


@dataclass
class EarlyStopping:
    """No improvement = the loss fell by less than ``tolerance`` relative to the best so far."""

    tolerance: float
    patience: int
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, loss: float) -> bool:
        """Record an epoch's loss; True when training should stop."""
        if loss < self.best - self.tolerance * abs(self.best) or not math.isfinite(self.best):
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


@dataclass
class Data:
    """The channels' corpora for this worker. File mode reads a channel once; Pipe mode reads
    the next FIFO (``<channel>_<pass>``, counted per channel) whenever a new pass is asked for."""

    ctx: TrainingContext
    feature_dim: int
    cache: dict[str, DocumentStore] = field(default_factory=dict)
    passes: dict[str, int] = field(default_factory=dict)

    def corpus(self, name: str, new_pass: bool = True) -> DocumentStore | None:
        channel = self.ctx.optional_channel(name)
        if channel is None:
            return None
        if name in self.cache and (channel.mode != "Pipe" or not new_pass):
            return self.cache[name]
        number = self.passes.get(name, 0)
        started = time.monotonic()
        corpus = DocumentStore.read(channel, self.feature_dim, number, *self.ctx.shard(channel))
        if name in self.cache:
            self.cache[name].close()
        if number == 0:
            log.info("Read %d %s documents (%d words) in %.1f s", len(corpus), name,
                     corpus.total_words(), time.monotonic() - started)
        self.passes[name] = number + 1
        self.cache[name] = corpus
        return corpus

    def close(self) -> None:
        for corpus in self.cache.values():
            corpus.close()


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters.typed(NtmHyperparameters)
    torch.manual_seed(hp.seed + ctx.rank)  # the initial weights, dropout and the posterior samples
    config = ModelConfig.from_hyperparameters(hp, embedding_decoder=ctx.settings.ntm_decoder == "embedding")
    data = Data(ctx, config.feature_dim)
    vocab, vectors = read_auxiliary(ctx, config.feature_dim)
    model = ProdLDA(config).to(ctx.device)
    corpus = data.corpus("train")
    assert corpus is not None  # validate() made sure the channel exists
    model.set_background(runtime.all_reduce_sum(torch.from_numpy(corpus.word_counts())).to(ctx.device))
    set_word_embeddings(model, corpus, hp.seed, ctx.device, ctx.settings.ntm_decoder)
    optimizer = make_optimizer(model, hp)
    stopper = EarlyStopping(hp.tolerance, hp.num_patience_epochs)
    start = resume(ctx, model, optimizer, stopper)
    network: nn.Module = model
    if ctx.world_size > 1:
        device_ids = [torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None
        network = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    batch_size = worker_batch_size(ctx)
    log.info("NTM: %s, %d topics, encoder %s, optimizer %s, %d documents per step on each worker, device %s",
             type(model).__name__, config.num_topics, list(config.encoder_layers), hp.optimizer,
             batch_size, ctx.device)
    progress = Progress(hp.epochs, start)  # in epochs
    trained = start  # epochs done
    for epoch in range(start, hp.epochs):
        if epoch > start:
            corpus = data.corpus("train")  # Pipe mode: the next pass; File mode: the same documents
            assert corpus is not None
        train_loss = train_epoch(ctx, network, model, optimizer, corpus, epoch, batch_size, stopper, progress)
        trained = epoch + 1
        ctx.metrics.log("train:total_loss", train_loss, epoch + 1)
        validation = data.corpus("validation")
        loss = train_loss
        if validation is not None:
            loss, _ = evaluate(model, validation, ctx.device, hp.seed)
            ctx.metrics.log("validation:total_loss", loss, epoch + 1)
        stop = stopper.update(loss)
        # an early stop is final: a restarted job goes straight to writing the model
        save_checkpoint(ctx, model, optimizer, stopper, hp.epochs if stop else epoch + 1)
        if stop:
            log.info("Early stopping after epoch %d/%d: the loss has not improved by a relative %g for %d epochs "
                     "(best %.4f)", epoch + 1, hp.epochs, hp.tolerance, hp.num_patience_epochs, stopper.best)
            break
    finish(ctx, model, data, vocab, vectors, trained)
    data.close()


def set_word_embeddings(model: ProdLDA, corpus: DocumentStore, seed: int, device: str, decoder: str) -> None:
    """The embedding decoder's word embeddings from the training corpus (every worker's shard),
    or one line saying why the model keeps the free decoder (``decoder``: the setting)."""
    config = model.config
    if not config.embedding_dims and decoder == "free":
        log.info("NTM: free decoder matrix, as SAGETEXT_NTM_DECODER=free asks")
        return
    if not config.embedding_dims:
        log.info("NTM: free decoder matrix (no corpus word embeddings): they need %d < feature_dim <= %d "
                 "and num_topics <= feature_dim; feature_dim is %d, num_topics %d", word_embeddings.DIMS,
                 word_embeddings.MAX_WORDS, config.feature_dim, config.num_topics)
        return
    started = time.monotonic()
    embeddings, lengths = word_embeddings.from_corpus(config.feature_dim, len(corpus), corpus.word_ids,
                                                      runtime.all_reduce_sum, config.embedding_dims)
    power = model.set_word_embeddings(embeddings.to(device), lengths.to(device), seed)
    log.info("NTM: embedding decoder on %d-dimensional word embeddings from the training corpus (%.1f s); "
             "word masses: embedding length ** %.2f, %.0f effective words", config.embedding_dims,
             time.monotonic() - started, power, ecr.effective_words(lengths, power))


def finish(ctx: TrainingContext, model: ProdLDA, data: Data, vocab: list[str] | None,
           vectors: np.ndarray | None, epochs: int = 0) -> None:
    """Test metrics, topic summary and scores, then (rank 0) the model files. ``epochs``: the
    epochs trained, where TensorBoard puts the final figures."""
    model.eval()
    test = data.corpus("test")
    if test is not None:
        loss, perplexity = evaluate(model, test, ctx.device, ctx.hyperparameters.typed(NtmHyperparameters).seed)
        ctx.metrics.log("test:total_loss", loss, epochs)
        ctx.metrics.log("test:perplexity", perplexity, epochs)
    topic_word = model.topic_word_logits().cpu().numpy()
    counter = coherence.CooccurrenceCounter(topics.metric_words(topic_word))
    corpus = data.corpus("train", new_pass=False)
    assert corpus is not None
    for lo in range(0, len(corpus), EVAL_BATCH):
        rows = range(lo, min(lo + EVAL_BATCH, len(corpus)))
        counter.add(corpus.word_ids(rows.start, rows.stop))
    pair_docs = runtime.all_reduce_sum(torch.from_numpy(counter.pair_docs))
    counter.pair_docs = pair_docs.numpy()
    counter.num_docs = int(runtime.all_reduce_sum(torch.tensor([counter.num_docs]))[0])
    result = topics.report(topic_word, vectors, counter)
    if not ctx.is_writer:
        return
    topics.log_summary(result, vocab)
    scores = result.model_scores()
    for name in ("tu", "wetc", "npmi"):
        score = scores[name]
        if score is not None:
            ctx.metrics.log(name, score, epochs)
    ctx.metrics.text("topics", topics.markdown(result, vocab), epochs)
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    ntm_model.save(model, ctx.model_dir)
    topics.write_json(result, vocab, ctx.model_dir)
    if vocab is not None:
        write_bytes_atomic(ctx.model_dir / bow.VOCAB_FILE, ("\n".join(vocab) + "\n").encode("utf-8"))
    log.info("Wrote %s and %s to %s", ntm_model.MODEL_FILE, topics.TOPICS_FILE, ctx.model_dir)


def train_epoch(ctx: TrainingContext, network: nn.Module, model: ProdLDA, optimizer: torch.optim.Optimizer,
                corpus: DocumentStore, epoch: int, batch_size: int, stopper: EarlyStopping,
                progress: Progress | None = None) -> float:
    """One pass; returns the mean per-document loss (over workers). ``progress`` counts epochs
    for the progress lines' ETA."""
    hp = ctx.hyperparameters.typed(NtmHyperparameters)
    rng = np.random.default_rng([hp.seed, ctx.rank, epoch])
    keep = min(len(corpus), max(2, round(hp.sub_sample * len(corpus))))  # BatchNorm needs two documents
    rows = corpus.shuffled(rng, keep)
    count = math.ceil(len(rows) / batch_size)
    if count > 1 and len(rows) % batch_size == 1:  # a batch of one document cannot train BatchNorm:
        count -= 1  # it joins the batch before
    batches = equal_batch_count(count)
    model.train()
    totals = torch.zeros(3, dtype=torch.float64)  # recon, kl, documents
    started = time.monotonic()
    progress = progress if progress is not None else Progress(hp.epochs, epoch)
    for b in range(batches):
        if runtime.stop_agreed(ctx.stop_requested, b, ctx.device):
            save_checkpoint(ctx, model, optimizer, stopper, epoch)
            raise TrainingStopped()
        end = len(rows) if b == count - 1 else (b + 1) * batch_size
        x = torch.from_numpy(corpus.dense(rows[b * batch_size:end])).to(ctx.device)
        recon, kl = network(x)
        penalty = model.regulariser()
        loss = (recon + kl).mean() + (penalty - penalty.detach())  # the penalty's gradient only
        if not torch.isfinite(loss):
            raise ClientError(f"training diverged: the loss is {loss.item()} in epoch {epoch + 1}, batch {b + 1}; "
                              "lower learning_rate, or set clip_gradient / rescale_gradient")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        adjust_gradients(model, hp.rescale_gradient, hp.clip_gradient)
        optimizer.step()
        totals += torch.tensor([recon.sum().item(), kl.sum().item(), len(x)], dtype=torch.float64)
        progress.update(epoch + (b + 1) / batches)
        if progress.due():
            log.info("Epoch %d/%d: batch %d/%d, %.0f docs/s, %.1f%% done, ETA %s", epoch + 1, hp.epochs, b + 1,
                     batches, totals[2].item() / (time.monotonic() - started), 100 * (progress.fraction or 0.0),
                     progress.eta_text())
    runtime.all_reduce_sum(totals)
    docs = max(totals[2].item(), 1.0)
    seconds = time.monotonic() - started
    progress.update(epoch + 1)
    log.info("Epoch %d/%d: train total_loss %.4f (recon %.4f + kl %.4f), %d documents, %.0f docs/s, ETA %s",
             epoch + 1, hp.epochs, (totals[0] + totals[1]).item() / docs, totals[0].item() / docs,
             totals[1].item() / docs, int(docs), docs / max(seconds, 1e-9), progress.eta_text())
    ctx.metrics.scalar("train:reconstruction_loss", totals[0].item() / docs, epoch + 1)
    ctx.metrics.scalar("train:kl_divergence", totals[1].item() / docs, epoch + 1)
    ctx.metrics.scalar("train:docs_per_sec", docs / max(seconds, 1e-9), epoch + 1)
    return (totals[0] + totals[1]).item() / docs


@torch.no_grad()
def evaluate(model: ProdLDA, corpus: DocumentStore, device: str, seed: int) -> tuple[float, float]:
    """(mean per-document total loss, perplexity) over every worker's shard; eval mode, one
    posterior sample from a fixed-seed generator so that repeated evaluations agree."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64)  # loss, documents, words
    for lo in range(0, len(corpus), EVAL_BATCH):
        x = torch.from_numpy(corpus.dense(np.arange(lo, min(lo + EVAL_BATCH, len(corpus))))).to(device)
        recon, kl = model(x, generator)
        totals += torch.tensor([(recon + kl).sum().item(), len(x), x.sum().item()], dtype=torch.float64)
    runtime.all_reduce_sum(totals)
    model.train(was_training)
    loss, docs, words = totals.tolist()
    return loss / max(docs, 1.0), math.exp(min(loss / max(words, 1.0), 700.0))


def adjust_gradients(model: nn.Module, rescale: float, clip: float) -> None:
    """SageMaker's order: multiply by rescale_gradient, then clip each component."""
    params = [p for p in model.parameters() if p.grad is not None]
    if rescale != 1.0:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(rescale)
    if math.isfinite(clip):
        nn.utils.clip_grad_value_(params, clip)


def make_optimizer(model: nn.Module, hp: NtmHyperparameters) -> torch.optim.Optimizer:
    """SageMaker's optimizers as MXNet defines them. ``weight_decay`` applies to the weight
    matrices only, as MXNet's default weight-decay multipliers do (0 for biases and shifts): a
    decayed shift would pull every word towards the same background frequency. ``adadelta``
    is MXNet's (rho 0.9, epsilon 1e-5), whose step takes no learning rate; ours is scaled by
    ``learning_rate / 0.001`` so that the default is MXNet's step and a user's value still acts."""
    lr, decay = hp.learning_rate, hp.weight_decay
    matrices = [p for p in model.parameters() if p.dim() > 1]
    vectors = [p for p in model.parameters() if p.dim() <= 1]
    params = [{"params": matrices, "weight_decay": decay}, {"params": vectors, "weight_decay": 0.0}]
    name = hp.optimizer
    if name == "adam":  # fused: one kernel for all parameters (the same update; 20 % less time a step on CPU)
        return torch.optim.Adam(params, lr=lr, betas=(0.99, 0.999), fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adadelta(params, lr=lr / ADADELTA_DEFAULT_LR, rho=ADADELTA_RHO, eps=ADADELTA_EPSILON)


def worker_batch_size(ctx: TrainingContext) -> int:
    """``mini_batch_size`` is per instance: split it across this host's workers."""
    return max(1, ctx.hyperparameters.typed(NtmHyperparameters).mini_batch_size // ctx.workers_per_host)


def equal_batch_count(batches: int) -> int:
    """Every worker must take the same number of steps (DDP): the smallest shard's count."""
    return min(runtime.all_gather_object(batches))


def read_auxiliary(ctx: TrainingContext, feature_dim: int) -> tuple[list[str] | None, np.ndarray | None]:
    channel = ctx.optional_channel("auxiliary")
    if channel is None:
        return None, None
    vocab_path, vectors_path = bow.auxiliary_files(channel)
    if vocab_path is None:
        log.warning("The auxiliary channel has no %s: topics are shown as word ids, WETC is not computed",
                    bow.VOCAB_FILE)
        return None, None
    vocab = bow.read_vocab(vocab_path, feature_dim)
    if vectors_path is None:
        log.info("No word vectors in the auxiliary channel: WETC is not computed (SageMaker uses GloVe)")
        return vocab, None
    vectors, found = bow.read_word_vectors(vectors_path, vocab)
    if not found.all():
        log.warning("%d of %d vocabulary words have no vector in %s; they count as similarity 0 in WETC",
                    int((~found).sum()), len(vocab), vectors_path.name)
    return vocab, vectors


def save_checkpoint(ctx: TrainingContext, model: ProdLDA, optimizer: torch.optim.Optimizer,
                    stopper: EarlyStopping, next_epoch: int) -> None:
    """Rank 0 saves the state, with every worker's random generator state (gathered: every
    worker calls this), so that a job restarted from an epoch's end continues exactly."""
    if not ctx.checkpoints.enabled:
        return
    generators = runtime.all_gather_object(generator_state(ctx.device))
    ctx.checkpoints.save(CHECKPOINT_KIND, Position(next_epoch), {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "best": stopper.best,
        "bad_epochs": stopper.bad_epochs, "generators": generators})


def _restore_generators(ctx: TrainingContext, saved: Any) -> None:
    """This worker's generator state from the checkpoint, when it was saved by as many workers."""
    if not isinstance(saved, list) or len(saved) != ctx.world_size:
        return
    restore_generator_state(saved[ctx.rank], ctx.device)


def resume(ctx: TrainingContext, model: ProdLDA, optimizer: torch.optim.Optimizer, stopper: EarlyStopping) -> int:
    """Restore a checkpoint if there is one; the epoch to start from (a checkpoint is taken at
    an epoch's end, or on SIGTERM, when the interrupted epoch is trained again)."""
    resumed = ctx.checkpoints.load(CHECKPOINT_KIND)
    if resumed is None:
        return 0
    state = resumed.state
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    stopper.best, stopper.bad_epochs = float(state["best"]), int(state["bad_epochs"])
    _restore_generators(ctx, state.get("generators"))
    return resumed.position.epoch
