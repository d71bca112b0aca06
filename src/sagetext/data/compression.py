"""Channel files read as they were before compression; binary files that no reader can use refused.

SageMaker hands a channel's S3 objects to the container byte for byte, so a user who uploads
``train.txt.gz`` (or an object named ``train`` that happens to be xz) gets the compressed
bytes. gzip, bzip2 and xz are recognised by their magic bytes, never by the file name (S3 keys
often have no suffix, or a wrong one), and undone on the fly, in File and Pipe mode alike.

Anything else that is not text is refused with a ``ClientError`` naming the file: a zip, zstd,
7z, RAR, LZ4 or Snappy file and a tar archive (by their signatures), UTF-16 or UTF-32 text (by
its byte-order mark), and binary data, whose first block is mostly not UTF-8 *and* holds
control bytes (random, encrypted or compressed bytes: about 40 % invalid, 10 % control bytes).
Text in a legacy encoding (Latin-1, GBK) has no control bytes and passes, to be read with its
undecodable bytes replaced as before; so does text with a stray NUL. Read as text, a binary
file would train a model on junk and end with exit 0. RecordIO (the framing of
RecordIO-protobuf channels and of Pipe mode's RecordIO wrapping) is binary by design and
passes, compressed or not.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from sagetext.errors import ClientError

BUFFER_BYTES = 1 << 16
SNIFF_BYTES = 4096  # the first block, checked for binary content
MAGIC_BYTES = 8  # enough for every signature below
INVALID_SHARE = 0.2  # of the first block not UTF-8: random bytes about 0.4, Latin-1 text about 0.15
CONTROL_SHARE = 0.02  # control bytes besides whitespace: random bytes about 0.1, text about 0

_RECORDIO = (0xCED7230A).to_bytes(4, "little")  # data.recordio.MAGIC, without importing protobuf
_DECOMPRESSORS: dict[str, Callable[[Any], io.BufferedIOBase]] = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw),
    "bzip2": lambda raw: bz2.BZ2File(raw),
    "xz": lambda raw: lzma.LZMAFile(raw),
}
_REFUSED = (  # (magic bytes, what the file is)
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x04\x22\x4d\x18", "LZ4-compressed"),
    (b"\xff\x06\x00\x00sNaPpY", "Snappy-compressed"),
)
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16"))
_WHITESPACE_CONTROLS = frozenset(b"\t\n\v\f\r\x1b")  # ESC: terminal colours in logged text
_CONTROL = bytes(b for b in range(32) if b not in _WHITESPACE_CONTROLS) + b"\x7f"
_ACCEPTED = "gzip, bzip2 or xz-compressed or uncompressed"


def open_stream(raw: BinaryIO, name: str) -> BinaryIO:
    """``raw`` (a file or a pipe) as a buffered stream of its uncompressed bytes, with ``peek``.

    ``name`` (e.g. ``channel 'train', file a.txt``) names the file in every error: content that
    is neither text nor RecordIO, or compressed data that turns out corrupt or truncated,
    wherever a reader meets it."""
    stream: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, BUFFER_BYTES)  # type: ignore[type-var]
    head, stream = _head(stream, MAGIC_BYTES)
    kind = compression_of(head)
    if kind is not None:
        stream = io.BufferedReader(_Checked(_DECOMPRESSORS[kind](stream), name, kind), BUFFER_BYTES)
    head, stream = _head(stream, SNIFF_BYTES)
    refuse_binary(head, name, kind)
    return stream


@contextmanager
def open_file(path: Path, name: str | None = None) -> Iterator[BinaryIO]:
    """The file at ``path`` as ``open_stream`` gives it; closed on leaving the block."""
    with open(path, "rb") as raw:
        stream = open_stream(raw, name or path.name)
        try:
            yield stream
        finally:
            stream.close()


def read_bytes(path: Path, name: str | None = None) -> bytes:
    """The whole uncompressed content of a (small) file such as a vocabulary."""
    with open_file(path, name) as stream:
        return stream.read()


def compression_of(head: bytes) -> str | None:
    """"gzip", "bzip2" or "xz" when ``head`` (the first bytes of a file) starts like one, else None."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def refuse_binary(head: bytes, name: str, compression: str | None = None) -> None:
    """Raise ``ClientError`` when ``head``, a file's first (uncompressed) block, is neither text
    nor RecordIO."""
    if not head or head.startswith(_RECORDIO):
        return
    inside = f"holds, {compression}-compressed," if compression else "is"
    for magic, what in _REFUSED:
        if head.startswith(magic):
            raise ClientError(f"{name}: {inside} {what}, which sagetext cannot read; channel files must "
                              f"be text or RecordIO, {_ACCEPTED} (gzip, bzip2 and xz are undone on the fly)")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise ClientError(f"{name}: {inside} a tar archive; extract it and upload its files instead")
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raise ClientError(f"{name}: {inside} {encoding} text; save it as UTF-8")
    invalid = head.decode("utf-8", errors="replace").count("\ufffd") - head.decode("utf-8", errors="ignore").count(
        "\ufffd")  # the undecodable bytes (each replaced by one U+FFFD), not U+FFFD characters of the text
    controls = len(head) - len(head.translate(None, _CONTROL))
    if invalid > INVALID_SHARE * len(head) and controls > CONTROL_SHARE * len(head):
        subject = f"holds {compression}-compressed data that is" if compression else "is"
        raise ClientError(f"{name}: {subject} not UTF-8 text or RecordIO but binary data ({invalid} undecodable "
                          f"and {controls} control bytes in its first {len(head)}); channel files must be text or "
                          f"RecordIO, {_ACCEPTED}")


def _head(stream: Any, size: int) -> tuple[bytes, Any]:  # a BufferedReader over any raw stream
    """The first ``size`` bytes (fewer only at the end of the data) and a stream that still
    starts with them. A pipe may have fewer bytes ready than asked for: then they are read, and
    handed out again before the rest."""
    head = stream.peek(size)[:size]
    if len(head) == size:
        return head, stream
    head = stream.read(size)  # blocks until ``size`` bytes or the end of the data
    return head, io.BufferedReader(_Prefixed(head, stream), BUFFER_BYTES)


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``rest``."""

    def __init__(self, head: bytes, rest: Any) -> None:  # a BufferedReader
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._rest.readinto(buffer)

    def close(self) -> None:
        self._rest.close()
        super().close()


class _Checked(io.RawIOBase):
    """A decompressing stream whose corrupt or truncated data is reported as the user's
    mistake, naming the file, wherever a reader meets it (the first read or the middle of a pass)."""

    def __init__(self, inner: io.BufferedIOBase, name: str, kind: str) -> None:
        self._inner = inner
        self.name = name
        self.kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            return self._inner.readinto(buffer)  # type: ignore[attr-defined]
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            raise ClientError(f"{self.name}: starts like a {self.kind} file but cannot be decompressed ({exc}); "
                              "upload it again, or uncompressed") from None

    def close(self) -> None:
        self._inner.close()
        super().close()
