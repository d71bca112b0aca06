"""Bag-of-words channels for topic models: word-count vectors from RecordIO-protobuf or CSV,
plus the auxiliary channel's ``vocab.txt`` and word vectors.

Documents come as word-count vectors of length ``feature_dim``:

* ``application/x-recordio-protobuf``: one Record per document, ``features["values"]`` a dense
  or sparse float32/float64/int32 tensor, exactly as SageMaker's SDK writers produce them;
* ``text/csv``: one dense row of counts per line, no header, no label column.

The format is taken from the channel's ContentType; without one, a file starting with the
RecordIO magic is RecordIO and anything else CSV. Records are read as a stream, one at a time,
each turned into its compact sparse form (``Document``: word ids and counts); training keeps
them on disk (``algorithms.ntm.documents``), never the raw bytes. Each worker takes the records
whose index hashes to its ``rank`` (see ``documents``). A bad record
(wrong length, key out of range, negative or non-finite count) raises ``ClientError`` naming the
file and the record number.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sagetext.contract.channels import Channel
from sagetext.data import compression, recordio
from sagetext.data.media_types import CSV, OCTET_STREAM, RECORDIO, RECORDIO_FRAMED, TEXT, media_type
from sagetext.data.text import line_owner
from sagetext.errors import ClientError

_MAGIC = struct.pack("<I", recordio.MAGIC)
VOCAB_FILE = "vocab.txt"
VECTOR_SUFFIXES = (".vec", ".vectors", ".w2v")
VECTOR_NAMES = ("vectors.txt",)
MAX_VECTOR_DIM = 4096  # word vectors are 50 to 1,000 wide; this bounds len(vocab) * d
_FIELD_SEPARATOR = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Document:
    """One document: sorted word ids (int64) and their counts (float32)."""

    ids: np.ndarray
    counts: np.ndarray


def documents(channel: Channel, feature_dim: int, epoch: int = 0, rank: int = 0,
              world_size: int = 1) -> Iterator[Document]:
    """Stream the documents of one pass, sharded across workers by a hash of the record index
    (``text.line_owner``: a file whose records alternate between topics or classes is still
    spread evenly, which ``index % world_size`` would not do)."""
    index = 0
    for name, stream in channel.streams(epoch):
        for doc in read_stream(stream, name, feature_dim, channel.content_type):
            if world_size == 1 or int(line_owner(np.array([index]), world_size)[0]) == rank:
                yield doc
            index += 1
    if index == 0:
        raise ClientError(f"channel '{channel.name}' holds no documents")


def read_stream(stream: BinaryIO, name: str, feature_dim: int,
                content_type: str | None = None) -> Iterator[Document]:
    """The documents of one file or pipe, in the format given (or sniffed)."""
    kind = _format(stream, content_type, name)
    if kind == RECORDIO:
        yield from _recordio_documents(stream, name, feature_dim)
    else:
        yield from _csv_documents(stream, name, feature_dim)


def _format(stream: BinaryIO, content_type: str | None, name: str) -> str:
    media = media_type(content_type)
    if media in (RECORDIO, RECORDIO_FRAMED):
        return RECORDIO
    if media == CSV:
        return CSV
    head = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
    if media and media not in (TEXT, OCTET_STREAM):
        raise ClientError(f"{name}: ContentType {content_type!r} is not supported for bag-of-words "
                          f"data; expected {RECORDIO} or {CSV}")
    return RECORDIO if head == _MAGIC else CSV


def _recordio_documents(stream: BinaryIO, name: str, feature_dim: int) -> Iterator[Document]:
    for number, record in enumerate(recordio.read_records(stream, name), start=1):
        where = f"{name}: record {number}"
        if "values" not in record.features:
            # a name that is not valid UTF-8 comes back as bytes: show it as such
            given = ", ".join(sorted(n if isinstance(n, str) else repr(n) for n in record.features)) or "none"
            raise ClientError(f"{where}: has no features['values'] tensor (features given: {given})")
        tensor = recordio.tensor_to_sparse(record.features["values"], f"{where} features['values']")
        yield checked_document(tensor.keys, tensor.values, tensor.shape, feature_dim, where)


def checked_document(keys: np.ndarray, values: np.ndarray, shape: tuple[int, ...],
                     feature_dim: int, where: str) -> Document:
    """A Document from sparse keys/values, after every check a count vector must pass."""
    if math.prod(shape) != feature_dim or len(shape) > 2 or (len(shape) == 2 and shape[0] != 1):
        raise ClientError(f"{where}: vector has shape {list(shape)}; expected {feature_dim} "
                          f"values (feature_dim={feature_dim})")
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ClientError(f"{where}: word {int(keys[bad.argmax()])} has count {values[bad.argmax()]}; "
                          "counts must be finite numbers >= 0")
    if (values < 0).any():
        i = int((values < 0).argmax())
        raise ClientError(f"{where}: word {int(keys[i])} has negative count {values[i]:g}; "
                          "counts must be >= 0")
    keys = np.asarray(keys, dtype=np.int64)
    keep = values > 0
    keys, values = keys[keep], values[keep]
    order = np.argsort(keys, kind="stable")
    return Document(keys[order], values[order].astype(np.float32))


def _csv_documents(stream: BinaryIO, name: str, feature_dim: int) -> Iterator[Document]:
    for number, raw in enumerate(stream, start=1):
        where = f"{name}: line {number}"
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ClientError(f"{where}: is not UTF-8 text (is this CSV? For RecordIO set "
                              f"ContentType {RECORDIO})") from None
        if not line:
            continue
        cells = line.split(",")
        if len(cells) != feature_dim:
            raise ClientError(f"{where}: has {len(cells)} values; expected {feature_dim} "
                              f"(feature_dim={feature_dim}, dense counts, no label column)")
        try:
            row = np.array(cells, dtype=np.float64)
        except ValueError:
            cell = next(c for c in cells if not _is_number(c))
            raise ClientError(f"{where}: {cell[:40]!r} is not a number; expected dense word "
                              "counts, no header") from None
        keys = np.flatnonzero(row)
        yield checked_document(keys, row[keys], (feature_dim,), feature_dim, where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- auxiliary channel -------------------------------------------------------------------

def auxiliary_files(channel: Channel) -> tuple[Path | None, Path | None]:
    """(vocab.txt, word-vector file) found in the auxiliary channel, each None when absent."""
    vocab = vectors = None
    for path in channel.files():
        if path.name == VOCAB_FILE:
            vocab = path
        elif path.name in VECTOR_NAMES or path.suffix in VECTOR_SUFFIXES:
            vectors = path
    return vocab, vectors


def read_vocab(path: Path, feature_dim: int) -> list[str]:
    """Words by id from ``vocab.txt``: one word per line, UTF-8. A line ``word <integer>``
    (the ``word id`` form some corpora ship) gives ``word``. Lines end at ``\\n``, ``\\r\\n`` or
    ``\\r``; other Unicode line breaks (U+0085, U+2028, form feed ...) are whitespace inside a
    line, so they cannot shift the word ids."""
    try:
        text = compression.read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClientError(f"{path.name}: is not UTF-8 (byte {e.start}); expected one word per line") from None
    words = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            parts = parts[:1]
        words.append(" ".join(parts))
    while words and not words[-1]:
        words.pop()
    if len(words) != feature_dim:
        raise ClientError(f"{path.name}: has {len(words)} words; expected one per word id, "
                          f"feature_dim={feature_dim}")
    return words


def read_word_vectors(path: Path, vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, found) for ``vocab`` from a word2vec text file (``word v1 .. vd`` per line,
    an optional ``count dim`` header): a (len(vocab), d) float32 array, zero rows for missing
    words, and a boolean mask of the words found. Only vocabulary words are kept in memory.

    Fields are separated by spaces or tabs; every value must be a finite number, and ``d`` at
    most ``MAX_VECTOR_DIM`` (the array is ``len(vocab) * d`` floats, so ``d`` is never taken
    from the file unchecked). A word listed twice in ``vocab`` gets its vector at both ids."""
    index: dict[str, list[int]] = {}
    for i, word in enumerate(vocab):
        index.setdefault(word, []).append(i)
    vectors: np.ndarray | None = None
    found = np.zeros(len(vocab), dtype=bool)
    with compression.open_file(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
                                                                newline="\n") as f:
        for number, line in enumerate(f, start=1):
            word, rest = (_FIELD_SEPARATOR.split(line.strip(" \t\r\n"), maxsplit=1) + [""])[:2]
            if number == 1 and word.isascii() and word.isdigit() and rest.isascii() and rest.isdigit():
                continue  # the "count dim" header
            ids = index.get(word)
            if ids is None or not rest:
                continue
            values = _vector(word, rest, path.name, number)
            if values is None:
                continue
            if vectors is None:
                vectors = np.zeros((len(vocab), len(values)), dtype=np.float32)
            if len(values) != vectors.shape[1]:
                raise ClientError(f"{path.name}: line {number} (word {word!r}) has {len(values)} dimensions; "
                                  f"earlier lines have {vectors.shape[1]}")
            vectors[ids], found[ids] = values, True
    if vectors is None:
        raise ClientError(f"{path.name}: no vector for any vocabulary word; expected word2vec "
                          "text format, 'word v1 v2 ...' per line")
    return vectors, found


def _vector(word: str, rest: str, name: str, number: int) -> np.ndarray | None:
    """The values ``v1 .. vd`` of the vector line ``number`` (``rest`` is the line after the
    word), checked; None when there is none."""
    fields = rest.split(maxsplit=MAX_VECTOR_DIM)  # never more than MAX_VECTOR_DIM + 1 strings
    if not fields:
        return None
    if len(fields) > MAX_VECTOR_DIM:
        raise ClientError(f"{name}: line {number} (word {word!r}) has more than {MAX_VECTOR_DIM} values; word "
                          f"vectors of at most {MAX_VECTOR_DIM} dimensions are accepted")
    try:
        with np.errstate(over="ignore"):
            values = np.array(fields, dtype=np.float32)
    except ValueError:
        bad = next((f for f in fields if not _is_number(f)), fields[0])
        raise ClientError(f"{name}: line {number} (word {word!r}): {bad[:40]!r} is not a number; expected "
                          "word2vec text format, 'word v1 v2 ...' per line") from None
    if not np.isfinite(values).all():
        bad = fields[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise ClientError(f"{name}: line {number} (word {word!r}): {bad[:40]!r} is not a finite float32 number; "
                          "word vectors must be finite")
    return values
