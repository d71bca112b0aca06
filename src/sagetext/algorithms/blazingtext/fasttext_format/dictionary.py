"""The supervised vocabulary, built exactly as fastText builds it, and its hashes.

fastText (``dictionary.cc``) counts every token of the training file plus one ``</s>`` per
line, keeps words seen at least ``min_count`` times and every label, and numbers words then
labels by descending count. Word n-grams are hashed into ``buckets`` extra input rows with
the FNV-1a 32-bit hash of each word (bytes sign-extended, as fastText does for the models it
has published) combined in 64-bit arithmetic. Everything here works on whole arrays so that
a corpus of millions of tokens is never walked token by token in Python.

Divergences: fastText sorts with an unstable sort, so words of equal count come out in an
unspecified order; here they are ordered by their bytes, so every worker builds the same
dictionary. Lines the reader skipped (no label, no word) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

EOS = b"</s>"
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
FNV64_OFFSET = 14695981039346656037
FNV64_PRIME = 1099511628211
LONG_TOKEN = 256  # longer tokens are hashed one by one
NGRAM_MULTIPLIER = 116049371


@dataclass(frozen=True)
class Dictionary:
    """Words (``</s>`` included) then labels, each with its count; ids are list positions."""

    words: tuple[bytes, ...]
    word_counts: np.ndarray
    labels: tuple[bytes, ...]
    label_counts: np.ndarray
    ntokens: int  # every token read, labels and </s> included (fastText's ntokens)

    @property
    def nwords(self) -> int:
        return len(self.words)

    @property
    def nlabels(self) -> int:
        return len(self.labels)

    @cached_property
    def word_index(self) -> dict[bytes, int]:
        return {word: i for i, word in enumerate(self.words)}

    @cached_property
    def label_index(self) -> dict[bytes, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def label_names(self) -> list[str]:
        return [label.decode("utf-8", errors="replace") for label in self.labels]

    @classmethod
    def from_counts(cls, words: Mapping[bytes, int], labels: Mapping[bytes, int], ntokens: int,
                    min_count: int) -> "Dictionary":
        """Keep words with ``count >= min_count``; order by descending count, then bytes."""
        kept_words, kept_counts = _ranked(words, min_count)
        label_names, label_counts = _ranked(labels, 0)
        return cls(kept_words, kept_counts, label_names, label_counts, int(ntokens))


def _ranked(counts: Mapping[bytes, int], min_count: int) -> tuple[tuple[bytes, ...], np.ndarray]:
    """Names with ``count >= min_count`` by descending count, then by bytes (C-level sort)."""
    values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    keep = np.flatnonzero(values >= min_count)
    names = list(counts.keys())
    pairs = sorted(zip((-values[keep]).tolist(), [names[i] for i in keep.tolist()]))
    return tuple(name for _, name in pairs), -np.array([count for count, _ in pairs], dtype=np.int64)


def fnv1a_32(tokens: Iterable[bytes]) -> np.ndarray:
    """fastText's ``Dictionary::hash`` of each token, as the int32 it stores."""
    tokens = list(tokens)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return span_hashes(np.frombuffer(b"".join(tokens), dtype=np.uint8), starts, lengths)[0]


def span_hashes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the byte spans ``data[starts[i]:starts[i] + lengths[i]]``, all at once.

    Returns fastText's FNV-1a 32-bit hash (bytes sign-extended, stored as int32) and a 64-bit
    FNV-1a hash that, together with the first, identifies a token. Spans are processed
    longest first, so at byte ``k`` the spans still going are a prefix of that order.
    """
    count = len(starts)
    h32 = np.full(count, FNV_OFFSET, dtype=np.uint32)
    h64 = np.full(count, FNV64_OFFSET, dtype=np.uint64)
    long = np.flatnonzero(lengths > LONG_TOKEN)
    all_lengths = lengths
    if len(long):
        lengths = np.where(lengths > LONG_TOKEN, 0, lengths)
    if count and lengths.max() > 0:
        longest = int(lengths.max())
        keys = lengths.astype(np.uint16) if longest < 1 << 16 else lengths
        order = np.argsort(keys, kind="stable")[::-1]  # 16-bit keys: a radix sort
        begin, size = starts[order], lengths[order]
        active = count - np.searchsorted(size[::-1], np.arange(longest), side="right")
        signed = data.view(np.int8)
        p32, p64 = np.uint32(FNV_PRIME), np.uint64(FNV64_PRIME)
        with np.errstate(over="ignore"):
            for k in range(longest):
                a = int(active[k])
                chars = signed[begin[:a] + k]
                h32[:a] ^= chars.astype(np.int32).view(np.uint32)  # uint32_t(int8_t(c)), as fastText
                h32[:a] *= p32
                h64[:a] ^= chars.view(np.uint8).astype(np.uint64)
                h64[:a] *= p64
        h32[order], h64[order] = h32.copy(), h64.copy()
    for i in long.tolist():  # a handful at most: one Python loop each beats thousands of numpy passes
        h32[i], h64[i] = _fnv_one(data[starts[i]:starts[i] + all_lengths[i]].tobytes())
    return h32.view(np.int32), h64


def _fnv_one(token: bytes) -> tuple[int, int]:
    h32, h64 = FNV_OFFSET, FNV64_OFFSET
    for byte in token:
        h32 = ((h32 ^ ((byte | 0xFFFFFF00) if byte > 127 else byte)) * FNV_PRIME) & 0xFFFFFFFF
        h64 = ((h64 ^ byte) * FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h32, h64


def word_ngram_rows(hashes: np.ndarray, line_ends: np.ndarray, n: int, nwords: int,
                    buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Input rows of the word n-grams of order 2..n, as fastText's ``addWordNgrams``.

    ``hashes`` are the int32 hashes of a run of lines' word tokens (``</s>`` included, words
    outside the vocabulary too), ``line_ends[i]`` the index one past the end of token ``i``'s
    line. Returns, per order, ``(start positions, rows)``: the n-gram beginning at each
    position that fits in its line, mapped to ``nwords + (hash % buckets)``.
    """
    extended = hashes.astype(np.int64).view(np.uint64)  # int32 -> uint64 sign extension, as in C++
    positions = np.arange(len(hashes), dtype=np.int64)
    combined = extended
    out = []
    with np.errstate(over="ignore"):
        for order in range(2, n + 1):
            size = len(hashes) - order + 1
            if size <= 0:
                break
            combined = combined[:size] * np.uint64(NGRAM_MULTIPLIER) + extended[order - 1:]
            fits = line_ends[:size] > positions[:size] + order - 1
            rows = (combined[fits] % np.uint64(buckets)).astype(np.int64) + nwords
            out.append((positions[:size][fits], rows.astype(np.int32)))
    return out
