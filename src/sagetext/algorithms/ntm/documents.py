"""This worker's documents of one pass over a channel, kept on disk and read back in windows.

A channel is read once per pass (``bow.documents``: RecordIO or CSV, checked record by record)
and each document's word ids and counts are spilled to a temporary file (``data.spill``).
Memory holds a few windows of ``WINDOW_DOCS`` consecutive documents at a time, never the
channel, so a channel of any size trains in the same memory.

Shuffling is uniform over the whole shard (``shuffled``): files are often grouped (20 Newsgroups'
training file is sorted by newsgroup), and mini-batches drawn one window at a time would train
on one part of the corpus after another: the topics then mix words of unrelated parts (on 20
Newsgroups, NPMI 0.12 instead of 0.25 with the tuned recipe; see BENCHMARKS.md). ``dense``
serves a window's documents from the window when it is cached or worth reading whole (a shard
of at most ``CACHED_WINDOWS`` windows stays cached; an evaluation reads consecutive rows), and
scattered documents of a larger shard one record at a time (``Spill.take``), so memory still
holds a few windows and one mini-batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sagetext.contract.channels import Channel
from sagetext.data import bow
from sagetext.data.spill import Spill

WINDOW_DOCS = 8192
CACHED_WINDOWS = 2
WHOLE_WINDOW_SHARE = 16  # a window is read whole when a call wants 1/16 of it or more
_FIELDS = (("ids", np.int32), ("counts", np.float32))


@dataclass(frozen=True)
class Window:
    """Consecutive documents in CSR layout: document i has ``ids[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray
    ids: np.ndarray
    counts: np.ndarray


class DocumentStore:
    """Documents as sparse (ids, counts) on disk; ``dense`` gives count vectors of any rows."""

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim
        self._spill = Spill(_FIELDS)
        self._words = 0.0
        self._word_counts = np.zeros(feature_dim, dtype=np.float64)
        self._cache: dict[int, Window] = {}

    @classmethod
    def read(cls, channel: Channel, feature_dim: int, epoch: int = 0, rank: int = 0,
             world_size: int = 1) -> "DocumentStore":
        """This worker's shard of pass ``epoch`` over ``channel``."""
        store = cls(feature_dim)
        for doc in bow.documents(channel, feature_dim, epoch, rank, world_size):
            store.add(doc.ids, doc.counts)
        return store

    def add(self, ids: np.ndarray, counts: np.ndarray) -> None:
        self._spill.append(ids=ids, counts=counts)
        self._words += float(counts.sum(dtype=np.float64))
        np.add.at(self._word_counts, ids, counts)

    def __len__(self) -> int:
        return len(self._spill)

    def total_words(self) -> float:
        return self._words

    def word_counts(self) -> np.ndarray:
        """How often each word id occurs in these documents, (feature_dim,) float64."""
        return self._word_counts.copy()

    def shuffled(self, rng: np.random.Generator, keep: int) -> np.ndarray:
        """``keep`` rows drawn uniformly at random from the whole shard, in random order."""
        return rng.permutation(len(self))[:keep]

    def dense(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The count vectors of ``rows`` as a dense float32 (len(rows), feature_dim) array."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.feature_dim), dtype=np.float32)
        windows = rows // WINDOW_DOCS
        few_windows = len(self) <= CACHED_WINDOWS * WINDOW_DOCS
        for w in np.unique(windows).tolist():
            at = np.flatnonzero(windows == w)
            if not (few_windows or w in self._cache or len(at) * WHOLE_WINDOW_SHARE >= WINDOW_DOCS):
                for i, record in zip(at.tolist(), self._spill.take(rows[at])):
                    out[i, record["ids"]] = record["counts"]
                continue
            window = self._window(w)
            local = rows[at] - w * WINDOW_DOCS
            starts, lengths = window.indptr[local], np.diff(window.indptr)[local]
            take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
            out[np.repeat(at, lengths), window.ids[take]] = window.counts[take]
        return out

    def word_ids(self, first: int, last: int) -> list[np.ndarray]:
        """The word ids of documents ``first`` to ``last`` (exclusive)."""
        return [record["ids"] for record in self._spill.read(first, last)]

    def close(self) -> None:
        self._cache.clear()
        self._spill.close()

    def _window(self, w: int) -> Window:
        if w not in self._cache:
            while len(self._cache) >= CACHED_WINDOWS:
                del self._cache[next(iter(self._cache))]  # the oldest
            records = self._spill.read(w * WINDOW_DOCS, min((w + 1) * WINDOW_DOCS, len(self)))
            indptr = np.zeros(len(records) + 1, dtype=np.int64)
            np.cumsum([len(r["ids"]) for r in records], out=indptr[1:])
            self._cache[w] = Window(indptr, np.concatenate([r["ids"] for r in records]),
                                    np.concatenate([r["counts"] for r in records]))
        return self._cache[w]
