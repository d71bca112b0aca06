"""The ``train`` channel read once into word ids, by the compiled tokenizer.

The same vocabulary, ids and sentences as ``torch_engine.corpus_ids.read_corpus_ids`` over
``word2vec.corpus.ChannelCorpus`` (whitespace tokens as Python's ``str.split`` finds them,
lines as sentences cut every 10,000 tokens, words ranked by count then first appearance,
words under min_count dropped), about fifty times faster: the Python reader does a dict
lookup per token. Words are decoded as Python decodes the stream (invalid UTF-8 replaced);
two byte strings that decode to the same word become one word.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from sagetext.algorithms.blazingtext.word2vec.corpus import CHUNK_BYTES, MAX_SENTENCE_LENGTH
from sagetext.algorithms.blazingtext.word2vec.native_engine import _native
from sagetext.algorithms.blazingtext.word2vec.progress import PROGRESS_SECONDS
from sagetext.algorithms.blazingtext.word2vec.torch_engine.corpus_ids import CorpusIds, rank_vocabulary
from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingStopped

log = logging.getLogger(__name__)


def read_channel_ids(channel: Channel, min_count: int, stop: threading.Event | None = None,
                     max_length: int = MAX_SENTENCE_LENGTH, chunk_bytes: int = CHUNK_BYTES) -> CorpusIds:
    """Every stream of the channel's first pass (Pipe mode: ``<channel>_0``), numbered and ranked."""
    tokenizer = _native.Tokenizer(max_length)
    started = last = time.monotonic()
    for _name, stream in channel.streams(0):
        while chunk := stream.read(chunk_bytes):
            tokenizer.feed(chunk)
            if stop is not None and stop.is_set():
                raise TrainingStopped("stopped while reading the corpus")
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                log.info("Reading the train channel: %d words so far", tokenizer.tokens)
        tokenizer.finish()
    words, provisional = merge_equal_words([w.decode("utf-8", errors="replace") for w in tokenizer.words()],
                                           np.frombuffer(tokenizer.ids(), dtype=np.int32))
    lengths = np.frombuffer(tokenizer.lengths(), dtype=np.int64)
    del tokenizer
    data = rank_vocabulary(provisional, words, lengths, min_count)
    log.info("Read %d words in %.1f s", data.raw_words, time.monotonic() - started)
    return data


def merge_equal_words(words: list[str], provisional: np.ndarray) -> tuple[list[str], np.ndarray]:
    """One number per distinct decoded word, still in order of first appearance."""
    first: dict[str, int] = {}
    owner = np.fromiter((first.setdefault(w, i) for i, w in enumerate(words)), dtype=np.int64, count=len(words))
    if len(first) == len(words):
        return words, provisional
    kept = np.unique(owner)
    renumber = np.searchsorted(kept, owner).astype(np.int32)
    return [words[i] for i in kept.tolist()], renumber[provisional]
