"""Seq2Seq training data: RecordIO-protobuf sentence pairs → bucketed, padded batches.

Each record of the ``train`` and ``validation`` channels is one pair with int32
``features["source"]`` and ``features["target"]`` ids, without BOS/EOS. Pairs are
truncated to the maximum lengths (the target keeps one place for ``</s>``), grouped into
Sockeye's parallel buckets, and batched by sentences or by target tokens. The batch order of
an epoch depends only on the seed and the epoch, so a resumed job sees the same batches.

Channels are read as streams into a ``PairStore``: the pairs go to a temporary file
(``data.spill``) and memory keeps only their lengths (for bucketing), so a channel of any size
trains in the same memory; each batch reads its pairs back.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

from sagetext.algorithms.seq2seq.config import DataConfig
from sagetext.algorithms.seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID
from sagetext.contract.channels import Channel
from sagetext.data import recordio
from sagetext.data.spill import Spill
from sagetext.errors import ClientError

Pair = tuple[np.ndarray, np.ndarray]  # source ids, target ids (int64, no BOS/EOS)
_FIELDS = (("source", np.int32), ("target", np.int32))


class PairStore(Sequence[Pair]):
    """Sentence pairs on disk (see the module docstring), their lengths in memory."""

    def __init__(self) -> None:
        self._spill = Spill(_FIELDS)
        self._lengths = np.zeros((1024, 2), dtype=np.int32)

    @classmethod
    def of(cls, pairs: Iterable[Pair]) -> "PairStore":
        store = cls()
        for source, target in pairs:
            store.append(source, target)
        return store

    def append(self, source: np.ndarray, target: np.ndarray) -> None:
        count = len(self)
        if count == len(self._lengths):
            self._lengths = np.resize(self._lengths, (2 * count, 2))
        self._lengths[count] = len(source), len(target)
        self._spill.append(source=source, target=target)

    def __len__(self) -> int:
        return len(self._spill)

    @property
    def source_lengths(self) -> np.ndarray:
        return self._lengths[:len(self), 0]

    @property
    def target_lengths(self) -> np.ndarray:
        return self._lengths[:len(self), 1]

    @overload
    def __getitem__(self, index: int) -> Pair: ...

    @overload
    def __getitem__(self, index: slice) -> list[Pair]: ...

    def __getitem__(self, index: int | slice) -> Pair | list[Pair]:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.take([index % len(self)])[0]

    def __iter__(self) -> Iterator[Pair]:
        for record in self._spill.records(per_read=4096):
            yield record["source"].astype(np.int64), record["target"].astype(np.int64)

    def take(self, indices: Iterable[int]) -> list[Pair]:
        return [(r["source"].astype(np.int64), r["target"].astype(np.int64)) for r in self._spill.take(list(indices))]


def lengths(pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """(source lengths, target lengths) of ``pairs``, without reading a stored pair."""
    if isinstance(pairs, PairStore):
        return pairs.source_lengths, pairs.target_lengths
    return (np.array([len(s) for s, _ in pairs], dtype=np.int64), np.array([len(t) for _, t in pairs], dtype=np.int64))


def take(pairs: Sequence[Pair], indices: list[int]) -> list[Pair]:
    return pairs.take(indices) if isinstance(pairs, PairStore) else [pairs[i] for i in indices]


@dataclass(frozen=True)
class Batch:
    source: torch.Tensor  # (B, S) ids, PAD-padded
    source_length: torch.Tensor  # (B,)
    target_input: torch.Tensor  # (B, T) <s> y1 .. yn, padded
    target_output: torch.Tensor  # (B, T) y1 .. yn </s>, padded

    @property
    def num_target_tokens(self) -> int:
        return int((self.target_output != PAD_ID).sum())

    def to(self, device: str) -> "Batch":
        return Batch(self.source.to(device), self.source_length.to(device),
                     self.target_input.to(device), self.target_output.to(device))


def read_pairs(channel: Channel, source_vocab_size: int, target_vocab_size: int) -> PairStore:
    """Every pair of a channel; ids outside a vocabulary or a missing field name the record."""
    pairs = PairStore()
    for file_name, stream in channel.streams():
        for number, record in enumerate(recordio.read_records(stream, f"channel '{channel.name}', file {file_name}"),
                                        start=1):
            where = f"channel '{channel.name}', file {file_name}, record {number}"
            pairs.append(_ids(record, "source", source_vocab_size, where),
                         _ids(record, "target", target_vocab_size, where))
    if not len(pairs):
        raise ClientError(f"channel '{channel.name}': no sentence pairs (expected RecordIO-protobuf records "
                          "with int32 features 'source' and 'target')")
    return pairs


def _ids(record: recordio.Record, name: str, vocab_size: int, where: str) -> np.ndarray:
    if name not in record.features:
        raise ClientError(f"{where}: features[{name!r}] is missing; each record needs int32 "
                          "features 'source' and 'target'")
    values = recordio.decode_tensor(record.features[name], f"{where} features[{name!r}]")
    if isinstance(values, recordio.SparseTensor) or values.ndim != 1 or values.dtype.kind != "i":
        raise ClientError(f"{where}: features[{name!r}] must be a dense 1-D int32 tensor of token ids")
    bad = np.flatnonzero((values < 0) | (values >= vocab_size))
    if len(bad):
        side = "source" if name == "source" else "target"
        raise ClientError(f"{where}: {name} id {int(values[bad[0]])} at position {int(bad[0])} is out of "
                          f"range for the {side} vocabulary of {vocab_size} tokens")
    return values.astype(np.int64)


def truncate(pairs: Iterable[Pair], config: DataConfig) -> PairStore:
    """Cut sources to max_seq_len_source and targets to max_seq_len_target - 1 (room for </s>)."""
    return PairStore.of((s[:config.max_seq_len_source], t[:config.max_seq_len_target - 1]) for s, t in pairs)


def define_buckets(max_len: int, step: int) -> list[int]:
    return list(range(step, max_len, step)) + [max_len]


def parallel_buckets(config: DataConfig, length_ratio: float) -> list[tuple[int, int]]:
    """Sockeye's ``define_parallel_buckets``: the longer side steps by bucket_width, the other
    by bucket_width scaled with the average target/source length ratio."""
    max_source, max_target = config.max_seq_len_source, config.max_seq_len_target
    if not config.bucketing_enabled:
        return [(max_source, max_target)]
    source_step = target_step = config.bucket_width
    if length_ratio >= 1.0:
        source_step = max(1, round(config.bucket_width / length_ratio))
    else:
        target_step = max(1, round(config.bucket_width * length_ratio))
    sources, targets = define_buckets(max_source, source_step), define_buckets(max_target, target_step)
    sources += [sources[-1]] * (len(targets) - len(sources))
    targets += [targets[-1]] * (len(sources) - len(targets))
    return sorted(set(zip((max(2, b) for b in sources), (max(2, b) for b in targets))))


def length_ratio(pairs: Sequence[Pair]) -> float:
    sources, targets = lengths(pairs)
    return float(np.mean((targets + 1) / np.maximum(1, sources)))


def bucket_pairs(pairs: Sequence[Pair], buckets: list[tuple[int, int]]) -> list[list[int]]:
    """Indices of the pairs in each bucket: the first bucket that holds both sides."""
    sources, targets = lengths(pairs)
    placed = np.zeros(len(sources), dtype=bool)
    members: list[list[int]] = []
    for source_len, target_len in buckets:
        fits = ~placed & (sources <= source_len) & (targets + 1 <= target_len)
        members.append(np.flatnonzero(fits).tolist())
        placed |= fits
    return members


class BatchPlan:
    """The batches of each epoch as lists of pair indices, reproducible from (seed, epoch)."""

    def __init__(self, pairs: Sequence[Pair], config: DataConfig, seed: int) -> None:
        self.pairs = pairs
        self.config = config
        self.seed = seed
        self.buckets = parallel_buckets(config, length_ratio(pairs))
        self.members = bucket_pairs(pairs, self.buckets)
        targets = lengths(pairs)[1] + 1  # </s> counted
        self.sizes = [self._sentences_per_batch(float(targets[members].mean()) if members else 1.0)
                      for members in self.members]

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
        """This worker's batches for ``epoch``: shuffled within buckets, then in batch order.
        Every worker gets the same number of batches (the remainder is dropped)."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches: list[list[int]] = []
        for size, members in zip(self.sizes, self.members):
            shuffled = list(members)
            rng.shuffle(shuffled)
            batches += [shuffled[i:i + size] for i in range(0, len(shuffled), size)]
        rng.shuffle(batches)
        usable = len(batches) - len(batches) % world_size if world_size > 1 else len(batches)
        return batches[rank:usable:world_size]

    def _sentences_per_batch(self, mean_target_len: float) -> int:
        """Pairs per batch in a bucket whose targets average ``mean_target_len`` tokens: with
        ``batch_type=word``, about ``batch_size`` target tokens, as Sockeye's word batches count
        them (by the bucket's mean length, not its padded length: what Sockeye calls max-word)."""
        if self.config.batch_type == "word":
            return max(1, round(self.config.batch_size / mean_target_len))
        return self.config.batch_size


def make_batch(pairs: Sequence[Pair], indices: list[int]) -> Batch:
    """Pad the chosen pairs to the longest in the batch; the target gets <s> / </s>."""
    chosen = take(pairs, indices)
    source_len = max(1, max(len(s) for s, _ in chosen))
    target_len = max(len(t) for _, t in chosen) + 1
    source = torch.full((len(chosen), source_len), PAD_ID, dtype=torch.long)
    target_in = torch.full((len(chosen), target_len), PAD_ID, dtype=torch.long)
    target_out = torch.full((len(chosen), target_len), PAD_ID, dtype=torch.long)
    lengths = torch.zeros(len(chosen), dtype=torch.long)
    for row, (s, t) in enumerate(chosen):
        s_len = max(1, len(s))  # an empty source reads as one <pad>: the encoder needs a step
        source[row, :len(s)] = torch.from_numpy(s)
        lengths[row] = s_len
        target_in[row, 0] = BOS_ID
        target_in[row, 1:len(t) + 1] = torch.from_numpy(t)
        target_out[row, :len(t)] = torch.from_numpy(t)
        target_out[row, len(t)] = EOS_ID
    return Batch(source, lengths, target_in, target_out)


def sequential_batches(pairs: Sequence[Pair], batch_size: int) -> Iterator[Batch]:
    """Batches in data order (validation), pairs of similar length together for speed."""
    sources, targets = lengths(pairs)
    order = np.lexsort((targets, sources)).tolist()
    for start in range(0, len(order), batch_size):
        yield make_batch(pairs, order[start:start + batch_size])
