"""Exploration (issue 15, not the product): NTM under SageMaker's defaults with ECRTM's embedding
clustering regulariser (Wu et al. 2023) on word embeddings computed from the training corpus,
patched into ``ProdLDA`` at run time. BENCHMARKS.md, "ECRTM's regulariser on word embeddings
drawn from the corpus itself", has the figures and why it is not in the model yet.

What the patch does (see ``patch_model``):
* word embeddings: PPMI of document co-occurrence on the training corpus, truncated SVD
  ``U_D sqrt(S_D)``, rows scaled to unit length; fixed;
* topic embeddings (K x D, learned), started at the embeddings of K distinct random words;
* decoder: ``beta_k = softmax_w(-||t_k - e_w||^2 / TAU)`` replaces the decoder matrix; word logits
  ``BN(theta @ beta)``; the decoder's weight holds ``beta`` so that the topic report ranks by it;
* ``LAMBDA * sum(pi * cost)``, ``pi`` the entropic transport plan (topics 1/K, words 1/V or, with
  ``--word-mass length``, by their squared embedding length before the scaling; epsilon EPSILON),
  a gradient only: the loss reported and watched by early stopping excludes it.

Since commit d564bdc the model has this decoder (``src/sagetext/algorithms/ntm/ecr.py``, the
``--word-mass length`` setting at D=25): the patch targets the free-decoder model before it
(main at 96770d9) and is refused on later builds; ``--baseline`` runs the model as it is.

Run:  python bench/ntm_ecr_explore.py --corpus 20news --k 100 --seed 0 [--dims 25] [--baseline]
      (``--corpus imdb10k``: the 10,000 reviews ``default_rng(0).choice(50000, 10000)``; ``--recipe``)
Prints one JSON line with NPMI and TU of the top 10 words (the scorer of ``ntm_topics.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ntm_topics as nt  # noqa: E402

from sagetext.algorithms.ntm import model as ntm_model  # noqa: E402
from sagetext.contract.metrics import configure_logging  # noqa: E402

TAU, LAMBDA, EPSILON = 0.2, 250.0, 0.02


def ppmi_embeddings(docs: nt.Docs, vocab_size: int, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-length rows of ``U_D sqrt(S_D)`` of the PPMI of document co-occurrence, and the rows'
    lengths before the scaling (small for words that co-occur with everything alike)."""
    rows = [r for r, doc in enumerate(docs) for _ in doc]
    cols = [i for doc in docs for i, _ in doc]
    x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), vocab_size))
    pair_docs = (x.T @ x).toarray()
    df = np.diag(pair_docs).copy()
    with np.errstate(divide="ignore"):
        pmi = np.log(pair_docs * len(docs) / np.outer(df + 1e-12, df + 1e-12))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    np.fill_diagonal(ppmi, 0.0)
    u, s, _ = np.linalg.svd(ppmi)
    e = u[:, :dims] * np.sqrt(s[:dims])
    lengths = np.linalg.norm(e, axis=1, keepdims=True)
    return torch.from_numpy(e / (lengths + 1e-12)).float(), torch.from_numpy(lengths[:, 0])


def sinkhorn(cost: torch.Tensor, log_b: torch.Tensor, iters: int,
             g: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropic transport plan between uniform topic masses and word masses ``exp(log_b)`` (log
    domain), warm-startable."""
    k, v = cost.shape
    log_a = torch.full((k,), -math.log(k))
    kernel = -cost / EPSILON
    g = torch.zeros(v) if g is None else g
    for _ in range(iters):
        f = log_a - torch.logsumexp(kernel + g[None, :], 1)
        g = log_b - torch.logsumexp(kernel + f[:, None], 0)
    return torch.exp(kernel + f[:, None] + g[None, :]), g


def patch_model(docs: nt.Docs, dims: int, word_mass: str) -> None:
    original_background = ntm_model.ProdLDA.set_background

    def set_background(self: ntm_model.ProdLDA, word_counts: torch.Tensor) -> None:
        original_background(self, word_counts)
        e, lengths = ppmi_embeddings(docs, self.config.feature_dim, dims)
        self.register_buffer("word_emb", e)
        mass = lengths ** 2 if word_mass == "length" else torch.ones(len(e), dtype=torch.float64)
        self.register_buffer("log_word_mass", torch.log(mass / mass.sum()).float())
        pick = torch.randperm(len(e), generator=torch.Generator().manual_seed(0))[:self.config.num_topics]
        self.topic_emb = nn.Parameter(e[pick].clone())

    def forward(self: ntm_model.ProdLDA, counts: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(counts)
        noise = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        theta = self.dropout(F.softmax(mu + noise * torch.exp(0.5 * logvar), dim=1))
        cost = torch.cdist(self.topic_emb, self.word_emb) ** 2
        beta = F.softmax(-cost / TAU, dim=1)
        with torch.no_grad():
            self.decoder.weight.copy_(beta.t())
        recon = -(counts * F.log_softmax(self.decoder_bn(theta @ beta), dim=1)).sum(dim=1)
        kl_topics = 0.5 * (torch.exp(logvar) / self.prior_var + (mu - self.prior_mean) ** 2 / self.prior_var
                           - 1.0 + torch.log(self.prior_var) - logvar)
        if not self.training:
            return recon, kl_topics.sum(dim=1)
        trained = (kl_topics.mean(dim=0) >= ntm_model.FREE_BITS).to(kl_topics.dtype).detach()
        kl = (kl_topics * trained).sum(dim=1) + (kl_topics * (1.0 - trained)).sum(dim=1).detach()
        with torch.no_grad():
            warm = getattr(self, "_sinkhorn_g", None)
            plan, self._sinkhorn_g = sinkhorn(cost.detach(), self.log_word_mass, 100 if warm is None else 10, warm)
        penalty = LAMBDA * (plan * cost).sum()
        return recon, kl + penalty - penalty.detach()

    original_state_dict = ntm_model.ProdLDA.state_dict

    def state_dict(self: ntm_model.ProdLDA, *args: object, **kwargs: object) -> dict:
        state = original_state_dict(self, *args, **kwargs)  # type: ignore[arg-type]
        return {k: v for k, v in state.items() if k not in ("word_emb", "topic_emb", "log_word_mass")}

    ntm_model.ProdLDA.set_background = set_background  # type: ignore[method-assign]
    ntm_model.ProdLDA.forward = forward  # type: ignore[method-assign]
    ntm_model.ProdLDA.state_dict = state_dict  # type: ignore[method-assign,assignment]


def corpus(name: str) -> tuple[list[str], nt.Docs, nt.Docs | None]:
    if name == "20news":
        return nt.news_corpus()
    vocab, docs, _ = nt.imdb_corpus()
    picked = [docs[i] for i in np.random.default_rng(0).choice(len(docs), 10000, replace=False)]
    return vocab, [doc for doc in picked if doc], None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="20news", choices=["20news", "imdb10k"])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dims", type=int, default=25, help="embedding size D")
    parser.add_argument("--word-mass", default="uniform", choices=["uniform", "length"],
                        help="each word's mass in the transport plan: 1/V (ECRTM), or by its squared "
                             "embedding length before the scaling")
    parser.add_argument("--baseline", action="store_true", help="the model as it is, no patch")
    parser.add_argument("--recipe", action="store_true", help="the tuned recipe's hyperparameters")
    parser.add_argument("--test", action="store_true", help="20news: give the test channel (perplexity)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    configure_logging()
    vocab, train, test = corpus(args.corpus)
    if not args.baseline:
        if hasattr(ntm_model.ProdLDA, "set_word_embeddings"):
            parser.error("the model already has the embedding decoder (commit d564bdc): use --baseline, or run "
                         "this script on main at 96770d9")
        patch_model(train, args.dims, args.word_mass)
    hp = {"feature_dim": str(len(vocab)), "num_topics": str(args.k), "seed": str(args.seed),
          **(nt.RECIPE if args.recipe else {})}
    with tempfile.TemporaryDirectory() as tmp:
        result = nt.run_ntm(Path(tmp), train, test if args.test else None, vocab, hp)
    counter_docs = [np.array([i for i, _ in doc], dtype=np.int64) for doc in train]
    result = nt.score(result, counter_docs, vocab)
    dims = None if args.baseline else f"{args.dims}, word mass {args.word_mass}"
    print(json.dumps({"corpus": args.corpus, "k": args.k, "seed": args.seed, "dims": dims,
                      "recipe": args.recipe, "npmi": round(result["npmi"], 4), "tu": round(result["tu"], 4),
                      "perplexity": result["perplexity"], "epochs": result["epochs_run"],
                      "topics": result["example_topics"]}), flush=True)


if __name__ == "__main__":
    main()
