"""The neural topic model: ProdLDA (Srivastava & Sutton 2017, "Autoencoding Variational
Inference for Topic Models"), and its safe on-disk format.

Why ProdLDA rather than NVDM or a mixture (LDA-like) decoder: on 20 Newsgroups its topics are
markedly more coherent (NPMI) and more distinct (TU) than NVDM's, which is what a topic model
is used for; the paper reports it, and our benchmark (bench/ntm_topics.py, BENCHMARKS.md)
measures it against gensim's LDA. The ingredients that matter:

* a **logistic-normal prior** that is the Laplace approximation of a Dirichlet(alpha=1) in the
  softmax basis, so the posterior can be reparameterized (a Gaussian) yet prefers sparse
  document-topic mixtures;
* a **product-of-experts decoder**: word logits = W @ theta (unnormalized), one softmax over
  the vocabulary, so a topic can sharpen words instead of only adding probability mass. W is
  ``beta`` of the **embedding decoder** (``ecr.py``: topics and words embedded in one space, a
  topic's words the nearest ones, with ECRTM's clustering regulariser keeping topics apart) when
  the corpus's word embeddings fit (``word_embeddings.fits``), else a free K x V matrix;
* **batch normalization** on the posterior heads and on the decoder logits, with a fixed unit
  scale and a learned shift (ProdLDA's own setting), which keeps the decoder from collapsing
  onto the most frequent words;
* a **background word distribution**: the decoder's shift is each word's log frequency in the
  training corpus (centred) before the first step (``set_background``), so that the topics model
  what sets documents apart rather than relearning how common each word is (SAGE, Eisenstein et
  al. 2011; Scholar, Card et al. 2018). Without it, the common words headed many topics at once;
* **free bits** on the KL term while training (Kingma et al. 2016, "Improved Variational
  Inference with Inverse Autoregressive Flow"): a topic whose KL, averaged over the batch, is
  below ``FREE_BITS`` nats gets no gradient from it. Under SageMaker's defaults (adadelta, whose
  first steps are the same small size for every weight) the KL pull reaches the encoder before
  the decoder has learned topics that make theta worth encoding; on corpora with weak topic
  structure (IMDB reviews) the posterior then collapses to the prior within a few epochs and
  the topics come from what little signal is left. The floor keeps the encoder informative.
  The loss value reported is the true KL; only its gradient is masked.

Encoder: ``feature_dim -> encoder_layers (activation, optional batch norm) -> (mu, logvar)``,
with dropout (0.2) after the hidden layers and on theta while training. Topic weights for
serving are the posterior mean proportions ``softmax(mu)``, which sum to 1.

The model file (``model.pt``) is a ``torch.save`` of tensors and plain values only (read back
with ``weights_only=True``): a format version, the ``ModelConfig`` and the state dict. Version 3
adds ``embedding_dims`` (0: the free decoder) and, with the embedding decoder, its topic and word
embeddings; version 2 files are free-decoder models; version 1 files (batch norm without shifts)
load with zero shifts, which is the network they were.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from sagetext.algorithms.ntm import word_embeddings
from sagetext.algorithms.ntm.ecr import EmbeddingDecoder
from sagetext.algorithms.ntm.hyperparameters import NtmHyperparameters
from sagetext.contract.artifacts import write_atomic
from sagetext.errors import ClientError

FORMAT = "sagetext-ntm"
FORMAT_VERSION = 3
MODEL_FILE = "model.pt"
DROPOUT = 0.2
PRIOR_ALPHA = 1.0
FREE_BITS = 0.5  # nats per topic, batch mean (see the module docstring)
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class ModelConfig:
    feature_dim: int
    num_topics: int
    encoder_layers: tuple[int, ...]
    activation: str
    batch_norm: bool
    embedding_dims: int = 0  # the embedding decoder's D; 0: a free decoder matrix

    @classmethod
    def from_hyperparameters(cls, hp: NtmHyperparameters, embedding_decoder: bool = True) -> "ModelConfig":
        """``embedding_decoder``: the embedding decoder where the vocabulary allows it (else free)."""
        layers = hp.encoder_layers
        if layers == "auto":
            layers = (3 * hp.num_topics, 2 * hp.num_topics)
        fits = embedding_decoder and word_embeddings.fits(hp.feature_dim, hp.num_topics)
        dims = word_embeddings.DIMS if fits else 0
        return cls(hp.feature_dim, hp.num_topics, tuple(layers), hp.encoder_layers_activation, hp.batch_norm, dims)


class ShiftedBatchNorm(nn.BatchNorm1d):
    """Batch normalization with a unit scale and a learned shift (``shift``), as ProdLDA uses it:
    the scale stays fixed so that the normalization keeps every unit's spread, the shift lets a
    unit move as a whole (a word's background frequency, the posterior's mean log variance)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False)
        self.shift = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.shift


class ProdLDA(nn.Module):
    """Encoder q(z|x) = N(mu, sigma^2), theta = softmax(z); decoder p(w|theta) = softmax(BN(W theta))."""

    prior_mean: torch.Tensor  # buffers (register_buffer)
    prior_var: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.feature_dim
        for size in config.encoder_layers:
            layers.append(nn.Linear(width, size))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[config.activation]())
            width = size
        self.encoder = nn.Sequential(*layers)
        self.dropout = nn.Dropout(DROPOUT)
        k = config.num_topics
        self.mu = nn.Linear(width, k)
        self.logvar = nn.Linear(width, k)
        self.mu_bn = ShiftedBatchNorm(k)
        self.logvar_bn = ShiftedBatchNorm(k)
        self.decoder: nn.Linear | None = None
        self.embedding_decoder: EmbeddingDecoder | None = None
        if config.embedding_dims:
            self.embedding_decoder = EmbeddingDecoder(k, config.feature_dim, config.embedding_dims)
        else:
            self.decoder = nn.Linear(k, config.feature_dim, bias=False)
            nn.init.xavier_uniform_(self.decoder.weight)
        self.decoder_bn = ShiftedBatchNorm(config.feature_dim)
        prior_mean, prior_var = laplace_prior(k, PRIOR_ALPHA)
        self.register_buffer("prior_mean", prior_mean)
        self.register_buffer("prior_var", prior_var)

    @torch.no_grad()
    def set_background(self, word_counts: torch.Tensor) -> None:
        """Start the decoder's shift at each word's centred log frequency (add-one smoothed)."""
        log_frequency = torch.log((word_counts.double() + 1.0) / (word_counts.double() + 1.0).sum())
        self.decoder_bn.shift.copy_(log_frequency - log_frequency.mean())

    def set_word_embeddings(self, embeddings: torch.Tensor, lengths: torch.Tensor, seed: int) -> float:
        """The embedding decoder's fixed word embeddings (``word_embeddings.from_corpus``) and its
        topics' start (words drawn with ``seed``); returns the power of its word masses."""
        assert self.embedding_decoder is not None, "a free-decoder model has no word embeddings"
        return self.embedding_decoder.set_words(embeddings, lengths, seed)

    def encode(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.dropout(self.encoder(counts))
        return self.mu_bn(self.mu(hidden)), self.logvar_bn(self.logvar(hidden))

    def topic_weights(self, counts: torch.Tensor) -> torch.Tensor:
        """Posterior mean topic proportions softmax(mu), one row per document (eval mode)."""
        mu, _ = self.encode(counts)
        return F.softmax(mu, dim=1)

    def forward(self, counts: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-document (reconstruction loss, KL divergence), each of shape (batch,)."""
        mu, logvar = self.encode(counts)
        noise = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        theta = self.dropout(F.softmax(mu + noise * torch.exp(0.5 * logvar), dim=1))
        if self.embedding_decoder is not None:
            word_logits = theta @ self.embedding_decoder.beta()
        else:
            assert self.decoder is not None
            word_logits = self.decoder(theta)
        log_probs = F.log_softmax(self.decoder_bn(word_logits), dim=1)
        reconstruction = -(counts * log_probs).sum(dim=1)
        var = torch.exp(logvar)
        kl_topics = 0.5 * ((var / self.prior_var) + (mu - self.prior_mean) ** 2 / self.prior_var
                           - 1.0 + torch.log(self.prior_var) - logvar)
        if not self.training:
            return reconstruction, kl_topics.sum(dim=1)
        trained = (kl_topics.mean(dim=0) >= FREE_BITS).to(kl_topics.dtype).detach()  # free bits
        kl = (kl_topics * trained).sum(dim=1) + (kl_topics * (1.0 - trained)).sum(dim=1).detach()
        return reconstruction, kl

    def regulariser(self) -> torch.Tensor:
        """The embedding decoder's clustering penalty (training adds its gradient only); 0 without it."""
        if self.embedding_decoder is None:
            return self.decoder_bn.shift.new_zeros(())
        return self.embedding_decoder.penalty()

    def topic_word_logits(self) -> torch.Tensor:
        """(num_topics, feature_dim): each topic's unnormalized word scores (decoder columns, or
        the embedding decoder's log-beta)."""
        if self.embedding_decoder is not None:
            return self.embedding_decoder.logits().detach()
        assert self.decoder is not None
        return self.decoder.weight.detach().t()


def laplace_prior(num_topics: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the Laplace approximation to a symmetric Dirichlet(alpha) in the
    softmax basis (MacKay 1998; ProdLDA eq. 3)."""
    a = torch.full((num_topics,), alpha)
    mean = torch.log(a) - torch.log(a).mean()
    var = (1.0 / a) * (1.0 - 2.0 / num_topics) + (1.0 / a).sum() / num_topics ** 2
    return mean, var


def save(model: ProdLDA, model_dir: Path) -> Path:
    """Write ``model.pt`` atomically; tensors moved to CPU."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    config = asdict(model.config)
    config["encoder_layers"] = list(config["encoder_layers"])
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config, "state_dict": state}
    path = model_dir / MODEL_FILE
    write_atomic(path, lambda f: torch.save(payload, f))
    return path


def load(model_dir: Path, device: str = "cpu") -> ProdLDA:
    """Read ``model.pt`` (nothing unpickled) into an eval-mode model."""
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise ClientError(f"{path}: no NTM model file; expected {MODEL_FILE} written by NTM training")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ClientError(f"{path}: cannot be read as an NTM model ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ClientError(f"{path}: not a sagetext NTM model file")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ClientError(f"{path}: format version {version!r}; this build reads up to {FORMAT_VERSION}")
    raw = payload["config"]
    config = ModelConfig(int(raw["feature_dim"]), int(raw["num_topics"]),
                         tuple(int(x) for x in raw["encoder_layers"]), str(raw["activation"]),
                         bool(raw["batch_norm"]), int(raw.get("embedding_dims", 0)))
    model = ProdLDA(config).to(device)
    state = payload["state_dict"]
    if version == 1:  # written before the shifts: zero shifts are that network
        state = {**{k: torch.zeros_like(v) for k, v in model.state_dict().items() if k.endswith(".shift")}, **state}
    model.load_state_dict(state)
    return model.eval()
