"""Read the train and validation channels once, as streams, into spilled arrays.

Pass over the channel (once; a Pipe-mode FIFO can be read only once): each block of lines is
tokenized, its tokens numbered by a ``TokenTable`` and counted, and the numbers spilled to a
temporary file. Each worker reads its shard of lines; the word and label counts of all workers
are summed (``all_gather_object``) so every worker builds the same dictionary. Then the
spilled numbers are encoded block by block into input rows and labels, and planned into
training batches, spilled again (``PlannedBatches``). Memory holds the dictionary and a few
blocks at a time, never the corpus: a channel four times as large trains in the same memory.
The order-free work on a block (hashing its tokens, encoding its lines) runs in a second
thread, a block or two ahead of the work that must go in order (numbering, planning).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format.dictionary import Dictionary
from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.algorithms.blazingtext.supervised.batches import PlannedBatches, lines_per_step
from sagetext.algorithms.blazingtext.supervised.encoding import (
    Encoded,
    TokenCounts,
    TokenMaps,
    TokenTable,
    encode,
    token_hashes,
)
from sagetext.contract.context import TrainingContext
from sagetext.data.spill import Spill
from sagetext.data.text import LabeledReader
from sagetext.data.threads import ahead
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

_TOKENS = (("ids", np.int32), ("is_label", np.bool_), ("line_lengths", np.int64))
_ENCODED = (("inputs", np.int32), ("offsets", np.int64), ("labels", np.int32), ("label_offsets", np.int64),
            ("ntokens", np.int64))


class EncodedLines:
    """Encoded lines spilled block by block (the validation channel), read back in order."""

    def __init__(self) -> None:
        self._spill = Spill(_ENCODED)
        self.num_lines = 0

    def add(self, lines: Encoded) -> None:
        self._spill.append(inputs=lines.inputs, offsets=lines.offsets, labels=lines.labels,
                           label_offsets=lines.label_offsets, ntokens=lines.ntokens)
        self.num_lines += lines.num_lines

    def blocks(self) -> Iterator[Encoded]:
        for record in self._spill.records(per_read=4):
            yield Encoded(record["inputs"], record["offsets"], record["labels"], record["label_offsets"],
                          record["ntokens"])

    def close(self) -> None:
        self._spill.close()


@dataclass(frozen=True)
class PreparedData:
    dictionary: Dictionary
    buckets: int  # n-gram rows actually used (0 when word_ngrams is 1, as fastText)
    train: PlannedBatches  # this worker's trainable lines, in batches
    validation: EncodedLines | None  # inputs as training rows, like ``train``

    @property
    def input_rows(self) -> int:
        return self.dictionary.nwords + self.buckets

    def close(self) -> None:
        self.train.close()
        if self.validation is not None:
            self.validation.close()


def prepare(ctx: TrainingContext, lines_per_batch: int | None = None) -> PreparedData:
    """The job's dictionary, planned training batches (``lines_per_batch`` lines each; default:
    ``lines_per_step`` for the job's workers) and encoded validation lines."""
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    table = TokenTable()
    counts = TokenCounts()
    train_tokens = _read(ctx, "train", table, counts)
    validation_tokens = (_read(ctx, "validation", table, None) if ctx.optional_channel("validation") is not None
                         else None)
    dictionary = merged_dictionary(counts, table, hp.min_count)
    if dictionary.nlabels == 0:
        raise ClientError("the 'train' channel has no __label__ tokens")
    buckets = hp.buckets if hp.word_ngrams > 1 else 0
    maps = TokenMaps.build(table, dictionary)

    def encoded(tokens: Spill) -> Iterator[Encoded]:
        def lines(record: dict[str, np.ndarray]) -> Encoded:
            return encode(record["ids"], record["is_label"], record["line_lengths"], maps, dictionary.nwords,
                          hp.word_ngrams, buckets).trainable()
        yield from ahead(lines, tokens.records(per_read=4))
        tokens.close()

    # Workers average their weights row by row, so they keep one row order: fastText's.
    train = PlannedBatches(dictionary.nwords + buckets, renumber=ctx.world_size == 1,
                           lines_per_batch=lines_per_batch or lines_per_step(ctx.world_size))
    for lines in encoded(train_tokens):
        train.add(lines)
    train.finish()
    validation = None
    if validation_tokens is not None:
        validation = EncodedLines()
        for lines in encoded(validation_tokens):
            validation.add(lines.with_inputs(train.training_rows(lines.inputs)))
    return PreparedData(dictionary, buckets, train, validation)


def merged_dictionary(counts: TokenCounts, table: TokenTable, min_count: int) -> Dictionary:
    """The dictionary of all workers' lines together (identical on every worker)."""
    word_total: Counter[bytes] = Counter()
    label_total: Counter[bytes] = Counter()
    tokens_total = 0
    for w, lab, n in runtime.all_gather_object(counts.by_token(table)):
        word_total.update(w)
        label_total.update(lab)
        tokens_total += n
    dictionary = Dictionary.from_counts(word_total, label_total, tokens_total, min_count)
    log.info("Read %d words; number of words: %d, number of labels: %d", dictionary.ntokens, dictionary.nwords,
             dictionary.nlabels)
    return dictionary


def _read(ctx: TrainingContext, name: str, table: TokenTable, counts: TokenCounts | None) -> Spill:
    """The channel's token numbers, spilled block by block; counted into ``counts`` if given."""
    spill = Spill(_TOKENS)
    channel = ctx.channel(name)
    index, count = ctx.shard(channel)
    reader = LabeledReader(channel, epoch=0, rank=index, world_size=count)
    for block, hashes in ahead(lambda block: (block, token_hashes(block)), iter(reader)):
        ids = table.ids(block, hashes)
        if counts is not None:
            counts.add(ids, block.is_label, block.num_lines, len(table.tokens))
        spill.append(ids=ids, is_label=block.is_label, line_lengths=block.line_lengths)
    return spill
