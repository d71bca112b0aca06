"""The ``train`` channel as sentences of whitespace tokens, for both word2vec engines.

Lines are sentences; a line longer than ``MAX_SENTENCE_LENGTH`` tokens is cut into pieces, as
word2vec.c and gensim's ``LineSentence`` do, and is never held in memory whole (a text8-like
corpus is one 100 MB line, read in chunks).
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterator
from typing import BinaryIO

from sagetext.contract.channels import Channel

MAX_SENTENCE_LENGTH = 10_000  # gensim's (and word2vec.c's) cap: longer lines are cut into pieces
CHUNK_BYTES = 1 << 20


class ChannelCorpus:
    """Restartable iterable of token lists over a channel, for gensim's several passes.

    Pass ``k`` reads ``channel.streams(k)`` (a fresh FIFO per pass in Pipe mode). Lines are
    sentences; a line longer than ``max_length`` tokens is cut into pieces, as gensim's
    ``LineSentence`` does, and is never held in memory whole. ``words_read`` counts tokens
    handed out over all passes (the progress reporter reads it from another thread).

    A pass first skips ``skip`` sentences (the part of an epoch trained before a restart), and
    ends early, setting ``stopped``, once ``stop`` is set; ``sentences`` then tells how many
    sentences of the pass, skipped ones included, were handed out.
    """

    def __init__(self, channel: Channel, max_length: int = MAX_SENTENCE_LENGTH, chunk_bytes: int = CHUNK_BYTES,
                 *, stop: threading.Event | None = None) -> None:
        self.channel = channel
        self.stop = stop if stop is not None else threading.Event()
        self.max_length = max_length
        self.chunk_bytes = chunk_bytes
        self.passes = 0
        self.words_read = 0
        self.skip = 0
        self.sentences = 0
        self.stopped = False

    def __iter__(self) -> Iterator[list[str]]:
        epoch, skip = self.passes, self.skip
        self.passes += 1
        self.sentences, self.stopped = 0, False
        for _name, stream in self.channel.streams(epoch):
            for sentence in read_sentences(stream, self.max_length, self.chunk_bytes):
                if self.sentences < skip:
                    self.sentences += 1
                    continue
                if self.stop.is_set():
                    self.stopped = True
                    return
                self.sentences += 1
                self.words_read += len(sentence)
                yield sentence


def read_sentences(stream: BinaryIO, max_length: int = MAX_SENTENCE_LENGTH,
                   chunk_bytes: int = CHUNK_BYTES) -> Iterator[list[str]]:
    """Whitespace tokens of a UTF-8 stream, one list per line, lines cut at ``max_length`` tokens."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending, tokens = "", []  # pending: a token that may continue in the next chunk
    while chunk := stream.read(chunk_bytes):
        *lines, tail = (pending + decoder.decode(chunk)).split("\n")
        for line in lines:
            tokens.extend(line.split())
            yield from _pieces(tokens, max_length)
            tokens = []
        words = tail.split()
        pending = words.pop() if words and not tail[-1].isspace() else ""
        tokens.extend(words)
        if len(tokens) >= max_length:
            full = len(tokens) - len(tokens) % max_length
            yield from _pieces(tokens[:full], max_length)
            tokens = tokens[full:]
    tokens.extend((pending + decoder.decode(b"", final=True)).split())  # a character cut at the end: U+FFFD
    yield from _pieces(tokens, max_length)


def _pieces(tokens: list[str], max_length: int) -> Iterator[list[str]]:
    for start in range(0, len(tokens), max_length):
        yield tokens[start:start + max_length]
