"""Records of numpy arrays written once to a temporary file and read back, a few at a time.

Training reads a channel once, turns it into arrays (token ids, planned batches) and needs
them again every epoch. Kept in memory they grow with the channel; spilled here, memory stays
flat whatever the channel's size: the process holds one read-back window at a time, and the
operating system's page cache (not the process) keeps the file's pages while memory is free.

A record is a fixed schema of named 1-D arrays (each its own dtype) of any lengths. On disk a
record is its array lengths (int64), then each array's bytes, every part padded to 8 bytes so
that arrays read back are aligned and can be handed to torch without a copy. The file is an
anonymous temporary file (``$TMPDIR``): it disappears when closed or when the process dies.

Reads copy from the file (``preadv``) rather than map it (``numpy.memmap``): a map of the whole
file reads as fast, but every page read stays in the process's resident memory while the map
lives, so memory would grow with the channel again; a map per read is slower (building a
``memmap`` costs more than the read of one small record).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

ALIGN = 8
WRITE_BYTES = 1 << 20  # records are handed to the file in writes of about this size


@dataclass(frozen=True)
class Field:
    name: str
    dtype: np.dtype


def _padded(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


class Spill:
    """Append records of arrays (``append``), then read them back by index range (``read``) or
    by any indices (``take``: one small read per record, for shuffled mini-batches)."""

    def __init__(self, fields: Sequence[tuple[str, type | np.dtype]]) -> None:
        self.fields = tuple(Field(name, np.dtype(dtype)) for name, dtype in fields)
        self._file = tempfile.TemporaryFile(prefix="sagetext-spill-")
        self._starts = np.zeros(1024, dtype=np.int64)  # byte offset of each record, and the end
        self._count = 0
        self._pending = bytearray()  # written records not yet handed to the file
        self._flushed = 0  # bytes in the file

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return int(self._starts[self._count])

    def append(self, **arrays: np.ndarray) -> None:
        """Write one record; every field of the schema must be given, as a 1-D array."""
        pending = self._pending
        size = len(pending)
        pending += np.array([len(arrays[f.name]) for f in self.fields], dtype=np.int64).tobytes()
        for field in self.fields:
            data = np.ascontiguousarray(arrays[field.name], dtype=field.dtype).tobytes()
            pending += data
            pending += bytes(_padded(len(data)) - len(data))
        if self._count + 1 >= len(self._starts):
            self._starts = np.resize(self._starts, 2 * len(self._starts))
        self._count += 1
        self._starts[self._count] = self._starts[self._count - 1] + len(pending) - size
        if len(pending) >= WRITE_BYTES:
            self._flush()

    def read(self, first: int, last: int) -> list[dict[str, np.ndarray]]:
        """Records ``first`` to ``last`` (exclusive), as writable arrays over one fresh buffer."""
        begin, end = int(self._starts[first]), int(self._starts[last])
        buffer = self._bytes(begin, end)
        return [self._parse(buffer, int(self._starts[i]) - begin) for i in range(first, last)]

    def take(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, np.ndarray]]:
        """Records at ``indices`` (any order, repeats allowed), in that order."""
        return [self._parse(self._bytes(int(self._starts[i]), int(self._starts[i + 1])), 0)
                for i in np.asarray(indices, dtype=np.int64).tolist()]

    def records(self, per_read: int = 64) -> Iterator[dict[str, np.ndarray]]:
        """Every record in order, ``per_read`` at a time from the file."""
        for first in range(0, len(self), per_read):
            yield from self.read(first, min(first + per_read, len(self)))

    def close(self) -> None:
        self._file.close()

    def _flush(self) -> None:
        if self._pending:
            os.pwrite(self._file.fileno(), self._pending, self._flushed)
            self._flushed += len(self._pending)
            self._pending = bytearray()

    def _bytes(self, begin: int, end: int) -> np.ndarray:
        self._flush()
        buffer = np.empty(end - begin, dtype=np.uint8)
        view, done = memoryview(buffer), 0  # type: ignore[arg-type]  # numpy's stubs lack the buffer protocol
        while done < len(buffer):  # one read returns at most about 2 GB
            got = os.preadv(self._file.fileno(), [view[done:]], begin + done)
            if got <= 0:
                raise OSError(f"spill file {self._file.name} is shorter than what was written to it")
            done += got
        return buffer

    def _parse(self, buffer: np.ndarray, at: int) -> dict[str, np.ndarray]:
        header = len(self.fields) * 8
        lengths = buffer[at:at + header].view(np.int64).tolist()
        at += header
        record = {}
        for field, length in zip(self.fields, lengths):
            nbytes = length * field.dtype.itemsize
            record[field.name] = buffer[at:at + nbytes].view(field.dtype)
            at += _padded(nbytes)
        return record
