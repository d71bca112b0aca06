"""The ``train`` channel read once into a vocabulary and a stream of word ids.

One pass over the channel through ``word2vec.ChannelCorpus`` (the gensim path's tokenizer:
whitespace tokens, lines as sentences, lines cut every 10,000 tokens). Each token gets a
provisional number the first time it is seen (one dict lookup per token, the only per-token
Python work); then words are ranked by count, ties in order of first appearance as gensim
ranks them, and words under ``min_count`` are dropped from the id stream before any window is
formed, as word2vec.c drops them. Sentences left empty are dropped.

The ids stay in memory (4 bytes per kept token, 8 per sentence) and every epoch replays them:
re-tokenizing the text each epoch would leave a GPU idle. A corpus of 17M words takes 68 MB.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sagetext.errors import ClientError

log = logging.getLogger(__name__)

FLUSH_TOKENS = 1 << 20  # provisional numbers go from a Python list into numpy this often


@dataclass(frozen=True)
class CorpusIds:
    """A corpus as word ids, with its vocabulary (words by descending count)."""

    words: list[str]
    counts: np.ndarray  # int64, one per word, descending
    ids: np.ndarray  # int32 word ids of the kept tokens, in corpus order
    sentence_starts: np.ndarray  # int64 index in ``ids`` where each sentence begins; starts with 0
    raw_words: int  # tokens in one pass, those under min_count included (what throughput counts)

    @property
    def kept_words(self) -> int:
        return int(len(self.ids))

    def shard(self, rank: int, world_size: int) -> tuple[np.ndarray, np.ndarray]:
        """This worker's contiguous slice of the ids and the sentence number of each of them."""
        lo, hi = len(self.ids) * rank // world_size, len(self.ids) * (rank + 1) // world_size
        lengths = np.diff(self.sentence_starts, append=len(self.ids))
        sentence = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
        return self.ids[lo:hi], sentence[lo:hi]


def read_corpus_ids(sentences: Iterable[list[str]], min_count: int) -> CorpusIds:
    """Number the tokens of ``sentences`` (one pass), rank the vocabulary, drop rare words."""
    numbers: defaultdict[str, int] = defaultdict()
    numbers.default_factory = numbers.__len__  # a new word gets the next number
    number = numbers.__getitem__
    chunks: list[np.ndarray] = []
    pending: list[int] = []
    lengths: list[int] = []
    for sentence in sentences:
        pending.extend(map(number, sentence))
        lengths.append(len(sentence))
        if len(pending) >= FLUSH_TOKENS:
            chunks.append(np.array(pending, dtype=np.int32))
            pending = []
    chunks.append(np.array(pending, dtype=np.int32))
    return rank_vocabulary(np.concatenate(chunks), list(numbers), np.asarray(lengths, dtype=np.int64), min_count)


def rank_vocabulary(provisional: np.ndarray, words_by_number: list[str], lengths: np.ndarray,
                    min_count: int) -> CorpusIds:
    """A corpus numbered in order of first appearance (``provisional``: int32 numbers into
    ``words_by_number``; ``lengths``: tokens per sentence) -> ranked ids without rare words."""
    counts = np.bincount(provisional, minlength=len(words_by_number)).astype(np.int64)
    order = np.argsort(-counts, kind="stable")  # descending count, ties by first appearance
    order = order[counts[order] >= min_count]
    if len(order) == 0:
        raise ClientError(f"train channel: no word occurs at least min_count={min_count} times "
                          f"({len(provisional)} words read); lower min_count or add data")
    new_number = np.full(len(words_by_number), -1, dtype=np.int32)
    new_number[order] = np.arange(len(order), dtype=np.int32)
    renumbered = new_number[provisional]
    kept = renumbered >= 0
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])]).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)
    kept_before = np.concatenate([[0], np.cumsum(kept, dtype=np.int64)])
    kept_per_sentence = kept_before[np.append(starts[1:], len(kept))] - kept_before[starts]
    return CorpusIds(
        words=[words_by_number[i] for i in order.tolist()],
        counts=counts[order],
        ids=renumbered[kept],
        sentence_starts=kept_before[starts][kept_per_sentence > 0],
        raw_words=int(len(provisional)),
    )
