"""Records of numpy arrays written once to a temporary file and read back, a few at a time.

Training reads a channel once, turns it into arrays (token ids, planned batches) and needs
them again every epoch. Kept in memory they grow with the channel; spilled here, memory stays
flat whatever the channel's size: the process holds one read-back window at a time, and the
operating system's page cache (not the process) keeps the file's pages while memory is free.

A record is a fixed schema of named 1-D arrays (each its own dtype) of any lengths. On disk a
record is its array lengths (int64), then each array's bytes, every part padded to 8 bytes so
that arrays read back are aligned and can be handed to torch without a copy. The file is an
anonymous temporary file (``$TMPDIR``): it disappears when closed or when the process dies.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

ALIGN = 8


@dataclass(frozen=True)
class Field:
    name: str
    dtype: np.dtype


def _padded(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


class Spill:
    """Append records of arrays (``append``), then read them back by index range (``read``)."""

    def __init__(self, fields: Sequence[tuple[str, type | np.dtype]]) -> None:
        self.fields = tuple(Field(name, np.dtype(dtype)) for name, dtype in fields)
        self._file = tempfile.TemporaryFile(prefix="sagetext-spill-")
        self._starts = [0]  # byte offset of each record, and the end

    def __len__(self) -> int:
        return len(self._starts) - 1

    @property
    def nbytes(self) -> int:
        return self._starts[-1]

    def append(self, **arrays: np.ndarray) -> None:
        """Write one record; every field of the schema must be given, as a 1-D array."""
        lengths = np.array([len(arrays[f.name]) for f in self.fields], dtype=np.int64)
        parts = [lengths.tobytes()]
        for field in self.fields:
            data = np.ascontiguousarray(arrays[field.name], dtype=field.dtype).tobytes()
            parts.append(data + bytes(_padded(len(data)) - len(data)))
        self._file.seek(self._starts[-1])
        for part in parts:
            self._file.write(part)
        self._starts.append(self._starts[-1] + sum(len(p) for p in parts))

    def read(self, first: int, last: int) -> list[dict[str, np.ndarray]]:
        """Records ``first`` to ``last`` (exclusive), as writable arrays over one fresh buffer."""
        begin, end = self._starts[first], self._starts[last]
        buffer = np.empty(end - begin, dtype=np.uint8)
        self._file.flush()
        self._file.seek(begin)
        if self._file.readinto(memoryview(buffer)) != len(buffer):
            raise OSError(f"spill file {self._file.name} is shorter than what was written to it")
        records, at = [], 0
        header = len(self.fields) * 8
        for _ in range(first, last):
            lengths = buffer[at:at + header].view(np.int64)
            at += header
            record = {}
            for field, length in zip(self.fields, lengths.tolist()):
                nbytes = length * field.dtype.itemsize
                record[field.name] = buffer[at:at + nbytes].view(field.dtype)
                at += _padded(nbytes)
            records.append(record)
        return records

    def records(self, per_read: int = 64) -> Iterator[dict[str, np.ndarray]]:
        """Every record in order, ``per_read`` at a time from the file."""
        for first in range(0, len(self), per_read):
            yield from self.read(first, min(first + per_read, len(self)))

    def close(self) -> None:
        self._file.close()
