"""Turn tokenized lines into the flat integer arrays that training and prediction use.

Each line becomes the list of input-matrix rows fastText averages for it (its in-vocabulary
words, ``</s>``, and the hashed word n-grams, which also span words outside the vocabulary)
plus its label ids. Tokens are first numbered by a ``TokenTable`` (hashed and looked up a
whole block at a time); everything is numpy on whole blocks of lines, with no Python work
per token. Training, validation and serving requests go through the same ``encode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format.dictionary import (
    EOS,
    Dictionary,
    fnv1a_32,
    span_hashes,
    word_ngram_rows,
)
from sagetext.algorithms.blazingtext.supervised.hashindex import HashIndex
from sagetext.data.text import LABEL_PREFIX, LabeledBlock


class TokenTable:
    """Every distinct token seen so far, numbered in order of first appearance.

    Tokens are told apart by two hashes computed on the block's bytes at once (fastText's
    32-bit FNV-1a and a 64-bit FNV-1a): 96 bits, so two different tokens of a corpus share
    both with a probability far below that of a hardware error; a clash is detected anyway.
    """

    def __init__(self) -> None:
        self.index = HashIndex()  # 64-bit hash -> token number
        self.tokens: list[bytes] = []
        self._hashes = np.zeros(1024, dtype=np.int32)  # fastText hash per token number

    @property
    def hashes(self) -> np.ndarray:
        return self._hashes[:len(self.tokens)]

    def ids(self, block: LabeledBlock, hashes: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The number of each token of ``block`` (``hashes``: its ``token_hashes``, if known)."""
        h32, h64 = token_hashes(block) if hashes is None else hashes
        numbers, new = self.index.lookup_or_add(h64)
        if len(new):
            self.tokens.extend(block.text[a:b] for a, b in zip(block.starts[new].tolist(), block.ends[new].tolist()))
            if len(self.tokens) > len(self._hashes):
                self._hashes = np.resize(self._hashes, 2 * len(self.tokens))
            self._hashes[numbers[new]] = h32[new]
        if (h32 != self._hashes[numbers]).any():
            raise RuntimeError("two different tokens share both 96 bits of hash; please report this corpus")
        return numbers.astype(np.int32)


def token_hashes(block: LabeledBlock) -> tuple[np.ndarray, np.ndarray]:
    """The two hashes of each token of ``block`` (see ``TokenTable``); needs no table, so
    blocks can be hashed ahead, in another thread."""
    return span_hashes(np.frombuffer(block.text, dtype=np.uint8), block.starts, block.ends - block.starts)


class TokenCounts:
    """Word and label counts by token number, added up block by block as a channel is read."""

    def __init__(self) -> None:
        self.words = np.zeros(0, dtype=np.int64)
        self.labels = np.zeros(0, dtype=np.int64)
        self.lines = 0

    def add(self, ids: np.ndarray, is_label: np.ndarray, num_lines: int, table_size: int) -> None:
        if len(self.words) < table_size:
            grown = max(table_size, 2 * len(self.words))
            self.words = np.pad(self.words, (0, grown - len(self.words)))
            self.labels = np.pad(self.labels, (0, grown - len(self.labels)))
        self.words[:table_size] += np.bincount(ids[~is_label], minlength=table_size)
        self.labels[:table_size] += np.bincount(ids[is_label], minlength=table_size)
        self.lines += num_lines

    def by_token(self, table: TokenTable) -> tuple[dict[bytes, int], dict[bytes, int], int]:
        """Word counts (``</s>`` once per line), label counts, and all tokens read."""
        tokens = table.tokens
        word_ids, label_ids = np.flatnonzero(self.words), np.flatnonzero(self.labels)
        word_counts = dict(zip([tokens[i] for i in word_ids.tolist()], self.words[word_ids].tolist()))
        word_counts[EOS] = word_counts.get(EOS, 0) + self.lines
        label_counts = dict(zip([tokens[i] for i in label_ids.tolist()], self.labels[label_ids].tolist()))
        return word_counts, label_counts, int(self.words.sum() + self.labels.sum()) + self.lines


@dataclass(frozen=True)
class TokenMaps:
    """Per token number: its input row (-1: none), label id (-1: none) and fastText hash."""

    word_rows: np.ndarray
    label_ids: np.ndarray
    hashes: np.ndarray
    eos_row: int
    eos_hash: int

    @classmethod
    def build(cls, table: TokenTable, dictionary: Dictionary) -> "TokenMaps":
        word_id, label_id = dictionary.word_index, dictionary.label_index
        tokens, count = table.tokens, len(table.tokens)
        is_label = np.fromiter(map(bytes.startswith, tokens, repeat(LABEL_PREFIX)), dtype=bool, count=count)
        rows = np.fromiter(map(word_id.get, tokens, repeat(-1)), dtype=np.int32, count=count)
        labels = np.fromiter(map(label_id.get, tokens, repeat(-1)), dtype=np.int32, count=count)
        rows[is_label] = -1
        labels[~is_label] = -1
        return cls(rows, labels, table.hashes.copy(), word_id.get(EOS, -1), int(fnv1a_32([EOS])[0]))


@dataclass(frozen=True)
class Encoded:
    """Lines as input rows and label ids: line ``j`` uses ``inputs[offsets[j]:offsets[j+1]]``."""

    inputs: np.ndarray  # int32 rows of the input matrix
    offsets: np.ndarray  # int64, num_lines + 1
    labels: np.ndarray  # int32 label ids
    label_offsets: np.ndarray  # int64, num_lines + 1
    ntokens: np.ndarray  # int64 tokens per line as fastText counts them (labels and </s> included)

    @property
    def num_lines(self) -> int:
        return len(self.offsets) - 1

    def hits(self, top: np.ndarray) -> int:
        """Lines whose predicted label ``top[j]`` is one of theirs (fastText's precision@1 numerator)."""
        if self.num_lines == 0:
            return 0
        line_of_label = np.repeat(np.arange(self.num_lines), np.diff(self.label_offsets))
        hit = np.zeros(self.num_lines, dtype=bool)
        hit[line_of_label[self.labels == top[line_of_label]]] = True
        return int(hit.sum())

    def select(self, keep: np.ndarray) -> "Encoded":
        """The lines where ``keep`` is true, in order."""
        inputs, offsets = _select_ragged(self.inputs, self.offsets, keep)
        labels, label_offsets = _select_ragged(self.labels, self.label_offsets, keep)
        return Encoded(inputs, offsets, labels, label_offsets, self.ntokens[keep])

    def lines(self, first: int, last: int) -> "Encoded":
        """Lines ``first`` to ``last`` (exclusive), as views."""
        a, b = int(self.offsets[first]), int(self.offsets[last])
        la, lb = int(self.label_offsets[first]), int(self.label_offsets[last])
        return Encoded(self.inputs[a:b], self.offsets[first:last + 1] - a, self.labels[la:lb],
                       self.label_offsets[first:last + 1] - la, self.ntokens[first:last])

    def with_inputs(self, inputs: np.ndarray) -> "Encoded":
        """The same lines with their inputs replaced (renumbered)."""
        return Encoded(inputs, self.offsets, self.labels, self.label_offsets, self.ntokens)

    def trainable(self) -> "Encoded":
        """Lines with at least one input row and one known label (fastText skips the others)."""
        keep = (np.diff(self.offsets) > 0) & (np.diff(self.label_offsets) > 0)
        return self if keep.all() else self.select(keep)

    @classmethod
    def concatenate(cls, parts: list["Encoded"]) -> "Encoded":
        if not parts:
            empty = np.zeros(0, dtype=np.int32)
            return cls(empty, np.zeros(1, dtype=np.int64), empty, np.zeros(1, dtype=np.int64),
                       np.zeros(0, dtype=np.int64))
        return cls(np.concatenate([p.inputs for p in parts]), _join_offsets([p.offsets for p in parts]),
                   np.concatenate([p.labels for p in parts]), _join_offsets([p.label_offsets for p in parts]),
                   np.concatenate([p.ntokens for p in parts]))


def encode(ids: np.ndarray, is_label: np.ndarray, line_lengths: np.ndarray, maps: TokenMaps,
           nwords: int, word_ngrams: int, buckets: int) -> Encoded:
    """Encode one block of lines (token numbers, label flags, tokens per line)."""
    num_lines = len(line_lengths)
    line_of_token = np.repeat(np.arange(num_lines), line_lengths)
    label_counts = np.bincount(line_of_token[is_label], minlength=num_lines)
    word_counts = line_lengths - label_counts
    # Each line's word tokens followed by </s>, as fastText reads a line.
    seq_len = word_counts + 1
    seq_ends = np.cumsum(seq_len)
    eos_at = seq_ends - 1
    rows = np.empty(int(seq_ends[-1]) if num_lines else 0, dtype=np.int32)
    hashes = np.empty_like(rows)
    not_eos = np.ones(len(rows), dtype=bool)
    not_eos[eos_at] = False
    word_ids = ids[~is_label]
    rows[not_eos], rows[eos_at] = maps.word_rows[word_ids], maps.eos_row
    hashes[not_eos], hashes[eos_at] = maps.hashes[word_ids], maps.eos_hash
    line_of_seq = np.repeat(np.arange(num_lines), seq_len)
    known = np.flatnonzero(rows >= 0)
    parts = [(line_of_seq[known], rows[known])]
    if word_ngrams > 1 and buckets > 0:
        line_ends = np.repeat(seq_ends, seq_len)
        for positions, ngram_rows in word_ngram_rows(hashes, line_ends, word_ngrams, nwords, buckets):
            parts.append((line_of_seq[positions], ngram_rows))
    inputs, offsets = group_by_line(parts, num_lines)
    label_ids = maps.label_ids[ids[is_label]]
    label_lines = line_of_token[is_label]
    known_labels = label_ids >= 0
    labels, label_offsets = group_by_line([(label_lines[known_labels], label_ids[known_labels])], num_lines)
    return Encoded(inputs, offsets, labels, label_offsets, (line_lengths + 1).astype(np.int64))


def group_by_line(parts: list[tuple[np.ndarray, np.ndarray]], num_lines: int) -> tuple[np.ndarray, np.ndarray]:
    """Interleave per-line runs of several arrays (each sorted by line) into one ragged array."""
    counts = [np.bincount(lines, minlength=num_lines) for lines, _ in parts]
    total = np.sum(counts, axis=0) if counts else np.zeros(num_lines, dtype=np.int64)
    offsets = np.zeros(num_lines + 1, dtype=np.int64)
    np.cumsum(total, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    before = offsets[:-1].copy()
    for (lines, values), count in zip(parts, counts):
        first = np.cumsum(count) - count  # index in this part of each line's first value
        out[before[lines] + np.arange(len(lines)) - first[lines]] = values
        before += count
    return out, offsets


def _select_ragged(values: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)
    mask = np.repeat(keep, lengths)
    new_offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=new_offsets[1:])
    return values[mask], new_offsets


def _join_offsets(parts: list[np.ndarray]) -> np.ndarray:
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for offsets in parts:
        out.append(offsets[1:] + base)
        base += int(offsets[-1])
    return np.concatenate(out)
