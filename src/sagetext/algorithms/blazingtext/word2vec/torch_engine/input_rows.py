"""The input matrix, and which of its rows make a word's input vector.

Without subwords a word's input vector is its own row. With ``subwords=true`` the matrix holds
the word rows, then ``buckets`` char n-gram rows, and a word's vector is the mean of its own row
and the rows of its n-grams (``min_char``..``max_char`` characters of ``<word>``, hashed into the
buckets with fastText's hash, the one ``vectors.Subwords`` uses to serve unseen words), as in
fastText; its gradient is added in full to every one of those rows, as fastText adds it.
The word -> rows map is a CSR table on the device; gathering is ``embedding_bag(mode="mean")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sagetext.algorithms.blazingtext.word2vec.vectors import EOS


@dataclass(frozen=True)
class Bags:
    """Where the rows of a batch of words sit: ``rows`` flat, ``owner[i]`` = the word of ``rows[i]``."""

    rows: torch.Tensor  # (R,) int64 row numbers
    owner: torch.Tensor  # (R,) int64 index into the flattened words
    starts: torch.Tensor  # (N,) int64 where each word's rows begin in ``rows``


class InputRows:
    """Input vectors of words, read and updated in batches."""

    def __init__(self, weight: torch.Tensor, n_words: int, minn: int = 0, maxn: int = 0,
                 table: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.weight = weight  # (n_words + buckets, dim) float32
        self.n_words = n_words
        self.minn, self.maxn = minn, maxn
        self.table = table  # (offsets (n_words + 1,), rows) with subwords; None without

    @classmethod
    def create(cls, words: Sequence[str], dim: int, device: torch.device, generator: torch.Generator,
               subwords: tuple[int, int, int] | None = None) -> "InputRows":
        """word2vec.c's initialisation: uniform in [-0.5/dim, 0.5/dim). ``subwords``: (minn, maxn, buckets)."""
        buckets = subwords[2] if subwords else 0
        weight = torch.empty((len(words) + buckets, dim), dtype=torch.float32, device=device)
        weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)
        if subwords is None:
            return cls(weight, len(words))
        minn, maxn, _ = subwords
        offsets, rows = subword_table(words, minn, maxn, buckets)
        table = (torch.as_tensor(offsets, device=device), torch.as_tensor(rows, device=device))
        return cls(weight, len(words), minn, maxn, table)

    @property
    def subwords(self) -> bool:
        return self.table is not None

    def gather(self, words: torch.Tensor) -> tuple[torch.Tensor, Bags | None]:
        """Input vectors of ``words`` (any shape) -> (*words.shape, dim), and the bags to update."""
        if self.table is None:
            return self.weight[words], None
        bags = self._bags(words.reshape(-1))
        vectors = F.embedding_bag(bags.rows, self.weight, bags.starts, mode="mean")
        return vectors.reshape(*words.shape, -1), bags

    def bag_sizes(self, words: torch.Tensor) -> torch.Tensor:
        """How many rows each of ``words`` (any shape) has, as float32 (subwords only)."""
        assert self.table is not None
        offsets = self.table[0]
        return (offsets[words + 1] - offsets[words]).to(torch.float32)

    def add_(self, words: torch.Tensor, bags: Bags | None, grads: torch.Tensor) -> None:
        """Add ``grads`` (*words.shape, dim) to each word's rows (summed where rows repeat)."""
        flat = grads.reshape(-1, grads.shape[-1])
        if bags is None:
            self.weight.index_add_(0, words.reshape(-1), flat)
        else:
            self.weight.index_add_(0, bags.rows, flat[bags.owner])

    def _bags(self, words: torch.Tensor) -> Bags:
        assert self.table is not None
        offsets, table_rows = self.table
        first = offsets[words]
        lengths = offsets[words + 1] - first
        starts = torch.cumsum(lengths, 0) - lengths
        total = int(lengths.sum())  # one device-to-host sync per step
        owner = torch.repeat_interleave(torch.arange(len(words), device=words.device), lengths, output_size=total)
        within = torch.arange(total, device=words.device) - starts[owner]
        return Bags(table_rows[first[owner] + within], owner, starts)

    def word_rows(self) -> np.ndarray:
        return self.weight[:self.n_words].cpu().numpy()

    def ngram_rows(self) -> np.ndarray:
        return self.weight[self.n_words:].cpu().numpy()


def subword_table(words: Sequence[str], minn: int, maxn: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR table: word ``i``'s rows are ``rows[offsets[i]:offsets[i + 1]]`` (its own row first).

    Computed by the native engine's C where it is built (the same hashes, a hundred times faster
    on a large vocabulary), else word by word with gensim's ``ft_ngram_hashes``."""
    from sagetext.algorithms.blazingtext.word2vec.native_engine import _native

    if _native is not None:
        offsets_bytes, rows_bytes = _native.subword_table([w.encode("utf-8") for w in words], minn=minn, maxn=maxn,
                                                          buckets=buckets)
        return np.frombuffer(offsets_bytes, dtype=np.int64).copy(), np.frombuffer(rows_bytes, dtype=np.int64).copy()
    from gensim.models.fasttext import ft_ngram_hashes  # here: gensim takes seconds to import
    rows: list[int] = []
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    n_words = len(words)
    for i, word in enumerate(words):
        rows.append(i)
        if word != EOS:  # fastText gives </s> no n-grams
            rows.extend(n_words + h for h in ft_ngram_hashes(word, minn, maxn, buckets))
        offsets[i + 1] = len(rows)
    return offsets, np.asarray(rows, dtype=np.int64)
