"""How good the topics are: topic uniqueness (TU), word-embedding topic coherence (WETC) and
normalized pointwise mutual information (NPMI), each per topic and for the model.

* **TU** (SageMaker NTM): for topic k, the mean over its top-n words of
  1 / cnt(w), where cnt(w) is how many topics have w among their top n. Range [1/K, 1].
* **WETC** (pairwise, Ding et al. 2018): the mean cosine similarity over all pairs of a
  topic's top-n words. SageMaker uses GloVe 6B 50-d internally; we cannot ship GloVe, so WETC
  uses the word vectors the user puts in the auxiliary channel (word2vec text format). Words
  without a vector count as similarity 0 (SageMaker substitutes a default vector).
* **NPMI** (extension; Lau et al. 2014, the measure the ProdLDA paper reports): the mean over
  pairs of a topic's top-n words of log(P(i,j) / (P(i)P(j))) / -log P(i,j), with probabilities
  from document co-occurrence (the fraction of documents containing the words), -1 for pairs
  that never co-occur. Computed here rather than with gensim's CoherenceModel because that
  needs token lists and uses sliding windows, while a bag-of-words corpus only has documents.

Top words are ranked by the topic's decoder scores; n = ``TOP_N`` (10) for the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

TOP_N = 10


def top_words(topic_word: np.ndarray, n: int) -> np.ndarray:
    """(K, n) word ids, highest score first, per topic row of ``topic_word``."""
    order = np.argsort(-topic_word, axis=1, kind="stable")
    return order[:, :n]


def topic_uniqueness(top: np.ndarray) -> np.ndarray:
    """TU of each topic from its top-word ids (K, n)."""
    words, counts = np.unique(top, return_counts=True)
    cnt = dict(zip(words.tolist(), counts.tolist()))
    return np.array([np.mean([1.0 / cnt[w] for w in row]) for row in top.tolist()])


def wetc(top: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Pairwise WETC of each topic: mean cosine similarity over pairs of its top words.
    ``vectors`` has one row per word id; zero rows (missing words) give similarity 0."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    scores = []
    for row in top:
        e = unit[row]
        sim = e @ e.T
        n = len(row)
        scores.append((sim.sum() - np.trace(sim)) / (n * (n - 1)) if n > 1 else 0.0)
    return np.asarray(scores, dtype=np.float64)


def pair_document_counts(vocab_size: int, documents: Sequence[np.ndarray]) -> sp.coo_matrix:
    """(V, V) sparse float32: how many of ``documents`` (word-id arrays, repeats allowed) hold both
    words; the diagonal is each word's document frequency."""
    rows = np.repeat(np.arange(len(documents)), [np.size(d) for d in documents])
    ids = np.concatenate([np.asarray(d, dtype=np.int64).ravel() for d in documents]) if documents else rows
    present = sp.csr_matrix((np.ones(len(ids), dtype=np.float32), (rows, ids)), shape=(len(documents), vocab_size))
    present.sum_duplicates()
    present.data[:] = 1.0
    pairs = (present.T @ present).tocoo()
    pairs.sum_duplicates()
    return pairs



class CooccurrenceCounter:
    """Document frequencies and co-document frequencies of a fixed set of words, fed one
    batch of documents (word-id lists) at a time, so the corpus is never held."""

    def __init__(self, words: Iterable[int]) -> None:
        self.words = np.unique(np.fromiter(words, dtype=np.int64))
        self.position = {int(w): i for i, w in enumerate(self.words)}
        m = len(self.words)
        self.pair_docs = np.zeros((m, m), dtype=np.int64)
        self.num_docs = 0

    def add(self, documents: Sequence[np.ndarray]) -> None:
        """Count each document's distinct words (ids); other words are ignored."""
        if len(documents) and len(self.words):
            places = []
            for document in documents:
                ids = np.asarray(document, dtype=np.int64).ravel()
                place = np.minimum(np.searchsorted(self.words, ids), len(self.words) - 1)
                places.append(place[self.words[place] == ids])
            pairs = pair_document_counts(len(self.words), places)
            self.pair_docs[pairs.row, pairs.col] += np.rint(pairs.data).astype(np.int64)
        self.num_docs += len(documents)

    def npmi(self, top: np.ndarray) -> np.ndarray:
        """NPMI of each topic (rows of word ids, all among the counted words)."""
        n = max(self.num_docs, 1)
        scores = []
        for row in top:
            idx = [self.position[int(w)] for w in row]
            total, pairs = 0.0, 0
            for a in range(len(idx)):
                for b in range(a + 1, len(idx)):
                    total += _npmi(self.pair_docs[idx[a], idx[b]] / n, self.pair_docs[idx[a], idx[a]] / n,
                                   self.pair_docs[idx[b], idx[b]] / n)
                    pairs += 1
            scores.append(total / pairs if pairs else 0.0)
        return np.asarray(scores, dtype=np.float64)


def _npmi(p_ij: float, p_i: float, p_j: float) -> float:
    if p_ij <= 0.0:
        return -1.0
    if p_ij >= 1.0:
        return 1.0
    return float(np.log(p_ij / (p_i * p_j)) / -np.log(p_ij))
