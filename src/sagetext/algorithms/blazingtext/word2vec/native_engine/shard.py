"""A worker's part of the corpus, cut into blocks and sync segments, for the native engine.

Worker ``rank`` of ``world`` takes the contiguous ``rank``-th ``world``-th of the corpus' ids
(as ``torch_engine``'s ``CorpusIds.shard`` does), sentences cut at its two ends. Its sentences
are grouped into blocks of about ``BLOCK_TOKENS`` tokens: a block is what a thread takes at a
time, and it draws its random numbers (subsampling, window sizes, negatives) from a generator
seeded from the epoch's seed and the block's number, so an epoch's windows do not depend on
how many threads train it or which one trains a block. An epoch's blocks are cut into
``syncs`` segments, after each of which the workers combine their models and may stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagetext.algorithms.blazingtext.word2vec.torch_engine.corpus_ids import CorpusIds

BLOCK_TOKENS = 10_000  # word2vec.c and gensim hand threads 10,000-word jobs too


@dataclass(frozen=True)
class Shard:
    ids: np.ndarray  # int32 word ids
    sentence_starts: np.ndarray  # int64: where each sentence begins in ids, then len(ids)
    block_sentences: np.ndarray  # int64: the first sentence of each block, then the number of sentences

    @property
    def tokens(self) -> int:
        return int(len(self.ids))

    @property
    def blocks(self) -> int:
        return int(len(self.block_sentences) - 1)

    def tokens_before(self, block: int) -> int:
        """Tokens in the blocks before ``block``."""
        return int(self.sentence_starts[self.block_sentences[block]])

    def segment(self, k: int, syncs: int) -> tuple[int, int]:
        """Blocks ``[first, last)`` of sync segment ``k`` of ``syncs``."""
        return self.blocks * k // syncs, self.blocks * (k + 1) // syncs


def make_shard(data: CorpusIds, rank: int, world: int, block_tokens: int = BLOCK_TOKENS) -> Shard:
    lo, hi = len(data.ids) * rank // world, len(data.ids) * (rank + 1) // world
    starts = data.sentence_starts
    inner = starts[(starts > lo) & (starts < hi)] - lo
    sentence_starts = np.concatenate([[0], inner, [hi - lo]]).astype(np.int64) if hi > lo else np.zeros(1, np.int64)
    sentences = len(sentence_starts) - 1
    firsts = np.unique(np.searchsorted(sentence_starts[:-1], np.arange(0, hi - lo, block_tokens)))
    block_sentences = np.append(firsts[firsts < sentences], sentences).astype(np.int64)
    return Shard(np.ascontiguousarray(data.ids[lo:hi]), sentence_starts, block_sentences)
