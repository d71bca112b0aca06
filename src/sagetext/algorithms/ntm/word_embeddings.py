"""Word embeddings drawn from the training corpus itself, for the NTM's embedding decoder
(``ecr.py``): the positive pointwise mutual information (PPMI) of document co-occurrence,
factored by a truncated SVD into ``U_D sqrt(S_D)`` (Levy & Goldberg 2014), each row then scaled
to unit length. A word's length before that scaling is kept too: it is small for words that
co-occur with everything alike (general-purpose words), and sets the word's mass in the
regulariser's transport plan.

The counts are a V x V matrix of document frequencies (how many documents hold both words),
streamed over this worker's training shard in batches of documents and summed across workers
with the runtime's all-reduce, as float32 (exact up to 16.7 million documents). ``MAX_WORDS``
caps V: at 20,000 words that matrix is 1.6 GB on every worker, the most we allow next to a
model whose own decoder is then 20,000 x K; above it the model keeps the free decoder
(``fits``), as it does when there are fewer words than topics or than ``DIMS`` + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh

from sagetext.algorithms.ntm.coherence import pair_document_counts

DIMS = 25  # D: the embedding size (BENCHMARKS.md, issue 15: the one setting that moved TU much)
MAX_WORDS = 20_000  # V x V float32 counts: 1.6 GB at the cap (see the module docstring)
DENSE_SVD_WORDS = 4_000  # up to here LAPACK on the dense matrix (seconds at 2,000 words); above, ARPACK
PPMI_ROWS = 1024  # rows of the counts turned into PPMI at a time (1024 x V float64 temporaries)
BATCH_DOCS = 256  # documents per sparse pair product: more hold more distinct pairs at once


def fits(feature_dim: int, num_topics: int) -> bool:
    """Whether the embedding decoder applies: DIMS < V <= MAX_WORDS, and a word per topic to start at."""
    return DIMS < feature_dim <= MAX_WORDS and num_topics <= feature_dim


def count_corpus(vocab_size: int, num_docs: int, word_ids: Callable[[int, int], list[np.ndarray]],
                 all_reduce: Callable[[torch.Tensor], torch.Tensor]) -> tuple[np.ndarray, int]:
    """Pair document counts and the number of documents, over this worker's ``num_docs``
    documents (read ``BATCH_DOCS`` at a time with ``word_ids(first, last)``), summed by ``all_reduce``."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.float32)
    for lo in range(0, num_docs, BATCH_DOCS):
        pairs = pair_document_counts(vocab_size, word_ids(lo, min(lo + BATCH_DOCS, num_docs)))
        counts[pairs.row, pairs.col] += pairs.data  # each pair once: no dense V x V per batch
    total = all_reduce(torch.tensor([float(num_docs)], dtype=torch.float64))
    return all_reduce(torch.from_numpy(counts)).numpy(), int(total[0].item())


def ppmi(counts: np.ndarray, num_docs: int) -> sp.csr_matrix:
    """max(0, log(P(i, j) / (P(i) P(j)))) off the diagonal, from pair document counts; sparse
    (pairs that never co-occur are 0). Computed ``PPMI_ROWS`` rows at a time, so that the only
    V x V array held is ``counts`` itself."""
    df = np.diag(counts).astype(np.float64)
    blocks = []
    for lo in range(0, len(counts), PPMI_ROWS):
        hi = min(lo + PPMI_ROWS, len(counts))
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 counts: -inf; unseen words: nan
            pmi = np.log(counts[lo:hi].astype(np.float64) * num_docs / np.outer(df[lo:hi], df))
        pmi[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        pmi[~(pmi > 0)] = 0.0
        blocks.append(sp.csr_matrix(pmi))
    return cast(sp.csr_matrix, sp.vstack(blocks, format="csr"))


def embed(matrix: sp.csr_matrix, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit-length rows of ``U_D sqrt(S_D)`` as float32, the rows' lengths before the scaling as
    float64) of ``matrix`` (V x V). Words with no co-occurrence get a zero row and length 0."""
    size = matrix.shape[0]
    # the matrix is symmetric: its singular pairs are its eigenpairs of largest |eigenvalue|
    if size <= DENSE_SVD_WORDS:  # LAPACK's evr on both ends of the spectrum: little workspace
        dense = matrix.toarray()
        if size <= 2 * dims:
            values, vectors = scipy.linalg.eigh(dense)
        else:
            low = scipy.linalg.eigh(dense, subset_by_index=[0, dims - 1], driver="evr")
            high = scipy.linalg.eigh(dense, subset_by_index=[size - dims, size - 1], driver="evr")
            values, vectors = np.concatenate([low[0], high[0]]), np.concatenate([low[1], high[1]], axis=1)
    else:  # ARPACK, from a fixed start so that every worker and every run agree
        v0 = np.random.default_rng(0).uniform(0.5, 1.5, size)
        values, vectors = eigsh(matrix, k=dims, which="LM", v0=v0)
    order = np.argsort(-np.abs(values), kind="stable")[:dims]
    u, s = vectors[:, order], np.abs(values[order])
    u[matrix.getnnz(axis=1) == 0] = 0.0  # no co-occurrence: exactly no embedding
    e = u * np.sqrt(s)
    lengths = np.linalg.norm(e, axis=1, keepdims=True)
    return torch.from_numpy(e / (lengths + 1e-12)).float(), torch.from_numpy(lengths[:, 0])


def from_corpus(vocab_size: int, num_docs: int, word_ids: Callable[[int, int], list[np.ndarray]],
                all_reduce: Callable[[torch.Tensor], torch.Tensor],
                dims: int = DIMS) -> tuple[torch.Tensor, torch.Tensor]:
    """The corpus's word embeddings (V, dims) and their lengths before unit scaling (V,)."""
    counts, total = count_corpus(vocab_size, num_docs, word_ids, all_reduce)
    return embed(ppmi(counts, total), dims)
