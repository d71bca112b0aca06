"""Read the train and validation channels once and turn them into encoded arrays.

Each worker reads its shard of lines; the word and label counts of all workers are summed
(``all_gather_object``) so every worker builds the same dictionary, then encodes its lines.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sagetext.algorithms.blazingtext.dictionary import Dictionary
from sagetext.algorithms.blazingtext.encoding import Encoded, TokenizedCorpus, TokenMaps, TokenTable, encode_corpus
from sagetext.contract.context import TrainingContext
from sagetext.data.text import LabeledReader
from sagetext.distributed import runtime
from sagetext.errors import ClientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedData:
    dictionary: Dictionary
    buckets: int  # n-gram rows actually used (0 when word_ngrams is 1, as fastText)
    train: Encoded  # this worker's trainable lines
    validation: Encoded | None

    @property
    def input_rows(self) -> int:
        return self.dictionary.nwords + self.buckets


def prepare(ctx: TrainingContext) -> PreparedData:
    hp = ctx.hyperparameters
    table = TokenTable()
    train = _read(ctx, "train", table)
    validation_channel = ctx.optional_channel("validation")
    validation = _read(ctx, "validation", table) if validation_channel is not None else None
    dictionary = merged_dictionary(train, hp.min_count)
    if dictionary.nlabels == 0:
        raise ClientError("the 'train' channel has no __label__ tokens")
    buckets = hp.buckets if hp.word_ngrams > 1 else 0
    maps = TokenMaps.build(table, dictionary)
    encoded_train = encode_corpus(train, maps, dictionary.nwords, hp.word_ngrams, buckets).trainable()
    encoded_validation = None
    if validation is not None:
        encoded_validation = encode_corpus(validation, maps, dictionary.nwords, hp.word_ngrams, buckets).trainable()
    return PreparedData(dictionary, buckets, encoded_train, encoded_validation)


def merged_dictionary(corpus: TokenizedCorpus, min_count: int) -> Dictionary:
    """The dictionary of all workers' lines together (identical on every worker)."""
    words, labels, ntokens = corpus.counts()
    word_total: Counter[bytes] = Counter()
    label_total: Counter[bytes] = Counter()
    tokens_total = 0
    for w, lab, n in runtime.all_gather_object((words, labels, ntokens)):
        word_total.update(w)
        label_total.update(lab)
        tokens_total += n
    dictionary = Dictionary.from_counts(word_total, label_total, tokens_total, min_count)
    log.info("Read %d words; number of words: %d, number of labels: %d", dictionary.ntokens, dictionary.nwords,
             dictionary.nlabels)
    return dictionary


def _read(ctx: TrainingContext, name: str, table: TokenTable) -> TokenizedCorpus:
    reader = LabeledReader(ctx.channel(name), epoch=0, rank=ctx.rank, world_size=ctx.world_size)
    return TokenizedCorpus.from_blocks(reader, table)
