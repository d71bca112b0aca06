"""Labelled text corpora: fastText ``__label__`` lines and augmented-manifest JSON Lines.

A ``__label__`` line holds one or more label tokens (``__label__<x>``, anywhere on the line)
and the words, separated by fastText's whitespace: space, tab, vertical tab, carriage return,
form feed and NUL; lines end at ``\\n``. A manifest line is ``{"source": "...", "label": 1}``
or ``"label": [1, 3]``; each label ``x`` becomes the token ``__label__x``.

In Pipe mode with ``RecordWrapperType: RecordIO`` a stream starts with RecordIO's magic
number and is read record by record, in one of two shapes, told apart by the first record:
each record holds lines of a file (SageMaker wraps each S3 object as one record; a record may
also hold a single line), read as they would be from the file, in either format; or each
record holds one attribute value of an augmented-manifest line, paired back into manifest
lines by ``data.manifest``, which also turns manifest lines into ``__label__`` lines.

The readers work on blocks of whole lines kept as UTF-8 bytes, the way fastText reads its
input, so that tokens and hashes match fastText byte for byte; a token is a span (start,
end) of its block, found with numpy, so a corpus of millions of words is never cut into
millions of Python objects.
Invalid UTF-8 is replaced by U+FFFD (counted and reported). Lines without a label or
without a word, blank lines and broken JSON are skipped, counted, and reported once per
channel with the first few file names and line numbers; a channel (or shard) with no usable
line is a ``ClientError`` naming its files.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from sagetext.contract.channels import Channel
from sagetext.data import manifest, media_types, recordio
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

LABEL_PREFIX = b"__label__"
_RECORDIO_MAGIC = recordio.MAGIC.to_bytes(4, "little")
BLOCK_BYTES = 1 << 20  # lines are handed out in blocks of about this size
EXAMPLES_SHOWN = 5
ATTRIBUTE_SNIFF_BYTES = 1 << 16  # how much of a first RecordIO record shows its shape

# fastText's separators (dictionary.cc readWord).
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[ord(c) for c in " \t\n\v\f\r\0"]] = True
_PREFIX = np.frombuffer(LABEL_PREFIX, dtype=np.uint8)


@dataclass(frozen=True)
class LabeledBlock:
    """Consecutive lines, tokenized: token ``i`` is ``text[starts[i]:ends[i]]``, labels included.

    ``is_label[i]`` says whether token ``i`` is a label; ``line_lengths[j]`` is the number of
    tokens (labels included) on line ``j``. Tokens stay spans of ``text`` so that large
    blocks are never cut into millions of Python objects.
    """

    text: bytes
    starts: np.ndarray
    ends: np.ndarray
    is_label: np.ndarray
    line_lengths: np.ndarray

    @property
    def num_lines(self) -> int:
        return len(self.line_lengths)

    @property
    def tokens(self) -> list[bytes]:
        return [self.text[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist())]

    def lines(self) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """``(labels, words)`` per line; convenient for small inputs and tests."""
        tokens, start = self.tokens, 0
        for length in self.line_lengths.tolist():
            toks, flags = tokens[start:start + length], self.is_label[start:start + length]
            yield [t for t, f in zip(toks, flags) if f], [t for t, f in zip(toks, flags) if not f]
            start += length


def tokenize(text: bytes) -> LabeledBlock:
    """Split ``text`` (lines joined by ``\\n``) into tokens the way fastText does.

    A final line without ``\\n`` counts as a line; an empty ``text`` has no line.
    """
    raw = np.frombuffer(text, dtype=np.uint8)
    space = _WHITESPACE[raw]
    begins = ~space
    begins[1:] &= space[:-1]
    finishes = ~space
    finishes[:-1] &= space[1:]
    starts = np.flatnonzero(begins)
    ends = np.flatnonzero(finishes) + 1
    line_ends = np.flatnonzero(raw == 10)
    if text and not text.endswith(b"\n"):
        line_ends = np.append(line_ends, len(raw))
    lengths = np.diff(np.searchsorted(starts, line_ends), prepend=0)
    is_label = np.zeros(len(starts), dtype=bool)
    is_label[np.searchsorted(starts, _label_starts(raw, begins))] = True
    return LabeledBlock(text, starts, ends, is_label, lengths)


def tokenize_lines(lines: Iterable[str]) -> LabeledBlock:
    """One line per string (newlines inside a string become spaces); used for requests."""
    items = [line.replace("\n", " ") for line in lines]
    return tokenize("\n".join(items).encode("utf-8") + b"\n") if items else tokenize(b"")


def _label_starts(raw: np.ndarray, begins: np.ndarray) -> np.ndarray:
    """Byte offsets of the tokens that begin with ``__label__`` (vectorised)."""
    candidates = np.flatnonzero(begins & (raw == _PREFIX[0]))
    candidates = candidates[candidates + len(_PREFIX) <= len(raw)]
    for k in range(1, len(_PREFIX)):
        candidates = candidates[raw[candidates + k] == _PREFIX[k]]
    return candidates


@dataclass
class ReadReport:
    """What a reader skipped or repaired, for one log line and the empty-channel error."""

    channel: str
    files: list[str] = field(default_factory=list)
    lines_read: int = 0
    lines_used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    utf8_repaired: int = 0

    def skip(self, reason: str, source: str, line_number: int) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < EXAMPLES_SHOWN:
            self.examples.append(f"{source}:{line_number} ({reason})")

    def log_summary(self) -> None:
        if self.skipped:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
            log.warning("Channel '%s': skipped %d of %d lines (%s); first: %s", self.channel,
                        sum(self.skipped.values()), self.lines_read, reasons, ", ".join(self.examples))
        if self.utf8_repaired:
            log.warning("Channel '%s': %d lines had invalid UTF-8; bad bytes were replaced by U+FFFD",
                        self.channel, self.utf8_repaired)

    def raise_if_empty(self) -> None:
        if self.lines_used:
            return
        names = ", ".join(self.files) or "no files"
        detail = f"; skipped: {', '.join(self.examples)}" if self.examples else ""
        raise ClientError(f"channel '{self.channel}' has no usable line in {names}: each line needs at least "
                          f"one __label__<x> token and one word (or a JSON object with 'source' and "
                          f"'label'; an augmented manifest in Pipe mode needs AttributeNames "
                          f"[\"source\", \"label\"], in that order){detail}")


class LabeledReader:
    """Read one pass of a channel as ``LabeledBlock``s of usable lines.

    With ``world_size > 1`` this worker gets the lines ``i`` (counted over all files of the
    channel) with ``owner(i) == rank``, where ``owner`` is a fixed hash of ``i``: disjoint
    shards that cover every line and that no order in the file lines up with. (``i %
    world_size`` would give each worker a single class of a file whose labels alternate.)
    After the iteration ``report`` is complete, has been logged, and an empty result has
    raised ``ClientError``.
    """

    def __init__(self, channel: Channel, epoch: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.channel = channel
        self.epoch = epoch
        self.rank = rank
        self.world_size = world_size
        self.report = ReadReport(channel.name)
        self._line_index = 0  # over the whole channel, for sharding

    def __iter__(self) -> Iterator[LabeledBlock]:
        for name, stream in self.channel.streams(self.epoch):
            self.report.files.append(name)
            chunks, json_lines = self._chunks(stream, name)
            for line_numbers, text in self._shard(chunks):
                broken: set[int] = set()
                if json_lines:
                    text, broken = manifest.manifest_to_lines(text)
                block = self._usable(text, name, line_numbers, broken)
                if block.num_lines:
                    yield block
        self.report.log_summary()
        self.report.raise_if_empty()

    def _chunks(self, stream: BinaryIO, name: str) -> tuple[Iterator[bytes], bool]:
        """Chunks of whole lines of one file or pipe, and whether they are manifest JSON lines."""
        if stream.peek(4)[:4] == _RECORDIO_MAGIC:  # type: ignore[attr-defined]
            records = _payloads(stream, name)
            first_record = next(records, None)
            if first_record is None:
                return iter(()), False
            records = itertools.chain([first_record], records)
            if not _holds_lines(first_record):
                return _in_blocks(manifest.attribute_lines(records), BLOCK_BYTES), True
            chunks = _record_lines(records)
        else:
            chunks = line_chunks(stream)
        first = next(chunks, b"")
        return itertools.chain([first] if first else [], chunks), self._is_json_lines(first[:64])

    def _is_json_lines(self, head: bytes) -> bool:
        kind = media_types.media_type(self.channel.content_type)
        if kind == media_types.JSONLINES:
            return True
        if kind.startswith("text/"):
            return False
        return head.lstrip().startswith(b"{")

    def _shard(self, chunks: Iterator[bytes]) -> Iterator[tuple[np.ndarray, bytes]]:
        """``(file line numbers, text)``: this worker's lines of each chunk."""
        file_line = 1
        for chunk in chunks:
            if self.world_size == 1:
                count = chunk.count(b"\n")
                yield np.arange(file_line, file_line + count), chunk
            else:
                lines = chunk.split(b"\n")[:-1]
                count = len(lines)
                mine = np.flatnonzero(line_owner(np.arange(self._line_index, self._line_index + count),
                                                 self.world_size) == self.rank)
                if len(mine):
                    yield file_line + mine, b"\n".join([lines[j] for j in mine.tolist()]) + b"\n"
            self._line_index += count
            file_line += count

    def _usable(self, text: bytes, source: str, line_numbers: np.ndarray, broken: set[int]) -> LabeledBlock:
        """Tokenize, repairing bad UTF-8 and dropping (and reporting) unusable lines.

        ``line_numbers`` are the lines' numbers in their file; ``broken`` holds the indices of
        JSON records that could not be read (given as blank lines).
        """
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            text = self._repair_utf8(text)
        block = tokenize(text)
        labels = np.bincount(np.repeat(np.arange(block.num_lines), block.line_lengths),
                             weights=block.is_label, minlength=block.num_lines)
        words = block.line_lengths - labels
        bad = (labels == 0) | (words == 0)
        self.report.lines_read += block.num_lines
        if not bad.any():
            self.report.lines_used += block.num_lines
            return block
        lines = text.split(b"\n")
        for j in np.flatnonzero(bad).tolist():
            reason = ("bad JSON record" if j in broken else "blank" if block.line_lengths[j] == 0
                      else "no label" if labels[j] == 0 else "no words")
            self.report.skip(reason, source, int(line_numbers[j]))
        kept = [line for line, b in zip(lines, bad.tolist()) if not b]
        self.report.lines_used += len(kept)
        return tokenize(b"\n".join(kept) + b"\n") if kept else tokenize(b"")

    def _repair_utf8(self, text: bytes) -> bytes:
        lines = text.split(b"\n")
        for j, line in enumerate(lines):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                lines[j] = line.decode("utf-8", errors="replace").encode("utf-8")
                self.report.utf8_repaired += 1
        return b"\n".join(lines)


def line_owner(indices: np.ndarray, world_size: int) -> np.ndarray:
    """The worker of each line index: splitmix64 of the index, modulo ``world_size``."""
    x = indices.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x % np.uint64(world_size)).astype(np.int64)


def _payloads(stream: BinaryIO, name: str) -> Iterator[bytes]:
    """The payloads of a RecordIO-wrapped stream; broken framing is a ClientError naming it."""
    try:
        yield from recordio.read_payloads(stream)
    except ClientError as e:
        raise ClientError(f"{name}: starts as RecordIO-wrapped records but {e}") from None


def _holds_lines(record: bytes) -> bool:
    """Whether a RecordIO record holds lines of a file (a ``__label__`` line, or a JSON object
    on its first line) rather than one attribute value of an augmented-manifest line."""
    head = record[:ATTRIBUTE_SNIFF_BYTES]
    if tokenize(head).is_label.any():
        return True
    first_line = head.lstrip().split(b"\n", 1)[0]
    if not first_line.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first_line), dict)
    except (ValueError, RecursionError):
        return False


def _record_lines(records: Iterable[bytes], size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The lines held by records, about ``size`` bytes at a time; a record's last line ends
    where the record does."""
    return _in_blocks((p if p.endswith(b"\n") else p + b"\n" for p in records), size)


def _in_blocks(lines: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``lines`` (each ending in a newline) joined into blocks of about ``size`` bytes."""
    pieces: list[bytes] = []
    held = 0
    for line in lines:
        pieces.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(pieces)
            pieces, held = [], 0
    if pieces:
        yield b"".join(pieces)


def line_chunks(stream: BinaryIO, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Whole lines, about ``size`` bytes at a time, each chunk ending in ``\\n``.

    A line longer than ``size`` is gathered in pieces and joined once, so that reading it takes
    time linear in its length.
    """
    pending: list[bytes] = []  # the start of a line not finished yet
    while True:
        data = stream.read(size)
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending.append(data)
            continue
        yield b"".join([*pending, data[:cut]])
        pending = [data[cut:]] if cut < len(data) else []
    if pending:
        yield b"".join(pending) + b"\n"
