"""Seq2Seq training data: RecordIO-protobuf sentence pairs → bucketed, padded batches.

Each record of the ``train`` and ``validation`` channels is one pair with int32
``features["source"]`` and ``features["target"]`` ids (spec §4.2), without BOS/EOS. Pairs are
truncated to the maximum lengths (the target keeps one place for ``</s>``), grouped into
Sockeye's parallel buckets, and batched by sentences or by target tokens. The batch order of
an epoch depends only on the seed and the epoch, so a resumed job sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sagetext.algorithms.seq2seq.config import DataConfig
from sagetext.algorithms.seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID
from sagetext.contract.channels import Channel
from sagetext.data import recordio
from sagetext.errors import ClientError

Pair = tuple[np.ndarray, np.ndarray]  # source ids, target ids (int64, no BOS/EOS)


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


def read_pairs(channel: Channel, source_vocab_size: int, target_vocab_size: int) -> list[Pair]:
    """Every pair of a channel; ids outside a vocabulary or a missing field name the record."""
    pairs: list[Pair] = []
    for file_name, stream in channel.streams():
        for number, record in enumerate(recordio.read_records(stream), start=1):
            where = f"channel '{channel.name}', file {file_name}, record {number}"
            pairs.append((_ids(record, "source", source_vocab_size, where),
                          _ids(record, "target", target_vocab_size, where)))
    if not pairs:
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


def truncate(pairs: Iterable[Pair], config: DataConfig) -> list[Pair]:
    """Cut sources to max_seq_len_source and targets to max_seq_len_target - 1 (room for </s>)."""
    return [(s[:config.max_seq_len_source], t[:config.max_seq_len_target - 1]) for s, t in pairs]


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


def length_ratio(pairs: list[Pair]) -> float:
    return float(np.mean([(len(t) + 1) / max(1, len(s)) for s, t in pairs]))


def bucket_pairs(pairs: list[Pair], buckets: list[tuple[int, int]]) -> list[list[int]]:
    """Indices of the pairs in each bucket: the first bucket that holds both sides."""
    members: list[list[int]] = [[] for _ in buckets]
    for index, (source, target) in enumerate(pairs):
        for b, (source_len, target_len) in enumerate(buckets):
            if len(source) <= source_len and len(target) + 1 <= target_len:
                members[b].append(index)
                break
    return members


class BatchPlan:
    """The batches of each epoch as lists of pair indices, reproducible from (seed, epoch)."""

    def __init__(self, pairs: list[Pair], config: DataConfig, seed: int) -> None:
        self.pairs = pairs
        self.config = config
        self.seed = seed
        self.buckets = parallel_buckets(config, length_ratio(pairs))
        self.members = bucket_pairs(pairs, self.buckets)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
        """This worker's batches for ``epoch``: shuffled within buckets, then in batch order.
        Every worker gets the same number of batches (the remainder is dropped)."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches: list[list[int]] = []
        for (_, target_len), members in zip(self.buckets, self.members):
            shuffled = list(members)
            rng.shuffle(shuffled)
            size = self._sentences_per_batch(target_len)
            batches += [shuffled[i:i + size] for i in range(0, len(shuffled), size)]
        rng.shuffle(batches)
        usable = len(batches) - len(batches) % world_size if world_size > 1 else len(batches)
        return batches[rank:usable:world_size]

    def _sentences_per_batch(self, target_len: int) -> int:
        if self.config.batch_type == "word":
            return max(1, self.config.batch_size // target_len)
        return self.config.batch_size


def make_batch(pairs: list[Pair], indices: list[int]) -> Batch:
    """Pad the chosen pairs to the longest in the batch; the target gets <s> / </s>."""
    chosen = [pairs[i] for i in indices]
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


def sequential_batches(pairs: list[Pair], batch_size: int) -> Iterator[Batch]:
    """Batches in data order (validation), pairs of similar length together for speed."""
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]), len(pairs[i][1])))
    for start in range(0, len(order), batch_size):
        yield make_batch(pairs, order[start:start + batch_size])
