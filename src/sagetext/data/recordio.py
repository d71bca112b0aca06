"""Read and write RecordIO-protobuf, the record format of SageMaker's built-in algorithms.

A stream is a concatenation of RecordIO frames, each holding one serialized
``aialgs.data.Record``. Training channels (Seq2Seq, NTM) and the server's
``application/x-recordio-protobuf`` codec both use this module.

The framing is our own code rather than ``sagemaker_training.recordio``'s reader because that
one checks the magic with ``assert``, trusts the length field, and ignores records that the
MXNet writer split where the payload contained the magic (cflag 1/2/3). The message class is
the generated ``sagemaker_training.record_pb2.Record``, not a copy. Our writer produces the
same bytes as SageMaker's writers (always cflag 0), which every RecordIO reader accepts.

Untrusted input never allocates memory by a declared size before the bytes are there: frames
are read in bounded chunks, and sparse tensors are densified only up to ``MAX_DENSE_ELEMENTS``.
Every problem with the data raises ``ClientError`` naming the record and byte offset.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from google.protobuf.message import DecodeError
from sagemaker_training.record_pb2 import Record, Value

from sagetext.errors import ClientError

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEADER = struct.Struct("<II")  # magic, lrecord = cflag << 29 | length
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_READ_CHUNK = 1 << 20
MAX_DENSE_ELEMENTS = 1 << 26  # 256 MiB of float32; a larger sparse tensor stays sparse
MAX_DIMENSIONS = 32

# The tensor fields of a Value (its ``value`` oneof, bytes aside) and their numpy types.
TENSOR_DTYPES: dict[str, type[np.generic]] = {
    "float32_tensor": np.float32,
    "float64_tensor": np.float64,
    "int32_tensor": np.int32,
}
_INT32 = np.iinfo(np.int32)

__all__ = [
    "MAGIC", "MAX_DENSE_ELEMENTS", "Record", "SparseTensor", "Value", "decode_tensor",
    "is_sparse", "numpy_to_value", "read_payloads", "read_records", "sparse_to_value",
    "tensor_to_numpy", "tensor_to_sparse", "write_payload", "write_records",
]


# ---- framing: writing -----------------------------------------------------------------

def write_payload(stream: BinaryIO, payload: bytes) -> None:
    """Frame one payload: magic, length (cflag 0), payload, zero padding to 4 bytes."""
    length = len(payload)
    if length > _LENGTH_MASK:
        raise ValueError(f"RecordIO payload of {length} bytes; the format allows {_LENGTH_MASK}")
    stream.write(_HEADER.pack(MAGIC, length))
    stream.write(payload)
    stream.write(b"\0" * _padding(length))


def write_records(stream: BinaryIO, records: Iterable[Record]) -> int:
    """Write each Record as one RecordIO frame; returns how many were written."""
    count = 0
    for record in records:
        write_payload(stream, record.SerializeToString())
        count += 1
    return count


def _padding(length: int) -> int:
    return -length % 4


# ---- framing: reading -----------------------------------------------------------------

def read_records(stream: BinaryIO, source: str = "") -> Iterator[Record]:
    """Parse a RecordIO-protobuf stream one Record at a time (streaming; pipes work). Errors
    start with ``source`` (e.g. the file's name) when given."""
    prefix = f"{source}: " if source else ""
    for number, payload in enumerate(read_payloads(stream, source), start=1):
        try:
            record = Record.FromString(payload)
        except DecodeError as e:
            raise ClientError(f"{prefix}RecordIO record {number}: payload of {len(payload)} bytes "
                              f"is not a valid aialgs.data.Record protobuf ({e})") from None
        yield record


def read_payloads(stream: BinaryIO, source: str = "") -> Iterator[bytes]:
    """The payloads of a RecordIO stream, split records (cflag 1, 2.., 3) joined with the magic.
    Errors start with ``source`` when given."""
    prefix = f"{source}: " if source else ""
    reader = _FrameReader(stream)
    number = 0
    while True:
        start = reader.offset
        header = reader.header_or_end(f"{prefix}RecordIO record {number + 1}")
        if header is None:
            return
        number += 1
        where = f"{prefix}RecordIO record {number} (starting at byte offset {start})"
        cflag, length = header
        if cflag not in (0, 1):
            raise ClientError(f"{where}: continuation flag {cflag} where a record starts; "
                              "expected 0 (whole record) or 1 (first part)")
        parts = [reader.part(length, where)]
        while cflag in (1, 2):
            cflag, length = reader.header(where)
            if cflag not in (2, 3):
                raise ClientError(f"{where}: continuation flag {cflag} inside a split record; "
                                  "expected 2 (middle part) or 3 (last part)")
            parts.append(reader.part(length, where))
        yield _MAGIC_BYTES.join(parts)


class _FrameReader:
    """Reads frame headers and parts, tracking the byte offset for error messages."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._end = _known_size(stream)  # bytes left at the start, when cheap to know
        self.offset = 0

    def header_or_end(self, where: str) -> tuple[int, int] | None:
        """(cflag, length) of the next frame, or None at a clean end of stream."""
        data = self._read_upto(_HEADER.size)
        return self._parse_header(data, where) if data else None

    def header(self, where: str) -> tuple[int, int]:
        """(cflag, length) of the next frame, which must be there."""
        return self._parse_header(self._read_upto(_HEADER.size), where)

    def _parse_header(self, data: bytes, where: str) -> tuple[int, int]:
        if len(data) < _HEADER.size:
            raise ClientError(f"{where}: stream ends at byte offset {self.offset} inside a "
                              f"frame header ({len(data)} of {_HEADER.size} bytes)")
        magic, lrecord = _HEADER.unpack(data)
        if magic != MAGIC:
            raise ClientError(f"{where}: bad magic 0x{magic:08X} at byte offset "
                              f"{self.offset - _HEADER.size}; expected 0x{MAGIC:08X} "
                              "(is this application/x-recordio-protobuf?)")
        return lrecord >> _LENGTH_BITS, lrecord & _LENGTH_MASK

    def part(self, length: int, where: str) -> bytes:
        """The payload bytes of one frame; its padding is read and dropped."""
        framed = length + _padding(length)
        if self._end is not None and framed > self._end - self.offset:
            raise ClientError(f"{where}: truncated: the frame declares {length} payload bytes "
                              f"at byte offset {self.offset}, but only "
                              f"{self._end - self.offset} bytes remain")
        data = self._read_upto(framed)
        if len(data) < framed:
            raise ClientError(f"{where}: truncated: the frame declares {length} payload bytes "
                              f"(+{framed - length} padding) at byte offset "
                              f"{self.offset - len(data)}, but the stream ends after {len(data)}")
        return data[:length]

    def _read_upto(self, n: int) -> bytes:
        """Up to n bytes, fewer only at end of stream; never asks for more than a chunk."""
        chunks: list[bytes] = []
        got = 0
        while got < n:
            chunk = self._stream.read(min(n - got, _READ_CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        self.offset += got
        return b"".join(chunks)


def _known_size(stream: BinaryIO) -> int | None:
    """Bytes from the current position to the end, for in-memory and regular files only
    (seeking a pipe fails and seeking a compressed stream would decompress it all)."""
    try:
        if isinstance(stream, io.BytesIO):
            with stream.getbuffer() as buffer:
                return buffer.nbytes - stream.tell()
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode) and isinstance(stream, (io.BufferedReader, io.FileIO)):
            return info.st_size - stream.tell()
    except (AttributeError, OSError, ValueError):
        pass
    return None


# ---- tensors ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SparseTensor:
    """A tensor given by its stored entries: ``keys`` index the row-major flattening of
    ``shape`` (for shape [R, C], row = key // C, col = key % C). ``np.asarray`` densifies it."""

    keys: np.ndarray  # uint64, 1-D, every key < prod(shape)
    values: np.ndarray  # 1-D, same length as keys
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def to_dense(self, max_elements: int = MAX_DENSE_ELEMENTS) -> np.ndarray:
        """The dense array; a repeated key keeps its last value."""
        if self.size > max_elements:
            raise ClientError(f"sparse tensor of shape {list(self.shape)} has {self.size} "
                              f"elements; densifying allows at most {max_elements}")
        dense = np.zeros(self.size, dtype=self.values.dtype)
        dense[self.keys.astype(np.intp)] = self.values
        return dense.reshape(self.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = self.to_dense()
        return dense if dtype is None else dense.astype(dtype)


def tensor_field(value: Value, name: str = "value") -> str:
    """Which tensor a Value holds: ``float32_tensor``, ``float64_tensor`` or ``int32_tensor``."""
    field = value.WhichOneof("value")
    if field not in TENSOR_DTYPES:
        held = f"a {field} value" if field else "nothing"
        raise ClientError(f"{name} holds {held}; expected one of {', '.join(TENSOR_DTYPES)}")
    return field


def is_sparse(value: Value, name: str = "value") -> bool:
    """True for a tensor with keys, or with a shape but no values (an all-zero sparse row)."""
    tensor = getattr(value, tensor_field(value, name))
    has_shape = len(tensor.shape) > 0 and math.prod(tensor.shape) > 0
    return len(tensor.keys) > 0 or (len(tensor.values) == 0 and has_shape)


def decode_tensor(value: Value, name: str = "value") -> np.ndarray | SparseTensor:
    """A dense tensor as an ndarray (reshaped when it has a shape), a sparse one as a
    ``SparseTensor`` (checked, not densified)."""
    if is_sparse(value, name):
        return tensor_to_sparse(value, name)
    field = tensor_field(value, name)
    tensor = getattr(value, field)
    values = np.array(tensor.values, dtype=TENSOR_DTYPES[field])
    if len(tensor.shape) == 0:
        return values
    shape = _shape(tensor, name)
    if math.prod(shape) != len(values):
        raise ClientError(f"{name}: dense tensor has {len(values)} values but shape "
                          f"{list(shape)} needs {math.prod(shape)}")
    try:
        return values.reshape(shape)
    except (ValueError, OverflowError) as e:
        raise ClientError(f"{name}: cannot use shape {list(shape)} ({e})") from None


def tensor_to_numpy(value: Value, name: str = "value",
                    max_elements: int = MAX_DENSE_ELEMENTS) -> np.ndarray:
    """The tensor as a dense ndarray; a sparse one is densified (up to ``max_elements``)."""
    tensor = decode_tensor(value, name)
    if isinstance(tensor, SparseTensor):
        return tensor.to_dense(max_elements)
    return tensor


def tensor_to_sparse(value: Value, name: str = "value") -> SparseTensor:
    """The tensor as keys, values and shape; a dense one gets keys 0..n-1."""
    field = tensor_field(value, name)
    tensor = getattr(value, field)
    values = np.array(tensor.values, dtype=TENSOR_DTYPES[field])
    keys = np.array(tensor.keys, dtype=np.uint64)
    if len(keys) == 0 and len(values) > 0:  # dense
        shape = _shape(tensor, name) if len(tensor.shape) else (len(values),)
        if math.prod(shape) != len(values):
            raise ClientError(f"{name}: dense tensor has {len(values)} values but shape "
                              f"{list(shape)} needs {math.prod(shape)}")
        keys = np.arange(len(values), dtype=np.uint64)
    elif len(tensor.shape) == 0:
        raise ClientError(f"{name}: sparse tensor (it has keys) without a shape; "
                          "a sparse tensor must give its shape")
    else:
        shape = _shape(tensor, name)
    if len(keys) != len(values):
        raise ClientError(f"{name}: sparse tensor has {len(keys)} keys but {len(values)} values")
    size = math.prod(shape)
    if len(keys) and int(keys.max()) >= size:
        raise ClientError(f"{name}: key {int(keys.max())} is out of range for shape "
                          f"{list(shape)}; keys must be < {size}")
    return SparseTensor(keys=keys, values=values, shape=shape)


def _shape(tensor: Any, name: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in tensor.shape)
    if len(shape) > MAX_DIMENSIONS:
        raise ClientError(f"{name}: shape has {len(shape)} dimensions; at most {MAX_DIMENSIONS}")
    return shape


def numpy_to_value(array: Any, dtype: Any = None) -> Value:
    """A dense tensor Value. ``dtype`` picks the tensor (float32, float64 or int32); None
    follows the array as SageMaker's writers do: float32 -> float32, float64 -> float64,
    integers and booleans -> int32. A 1-D array is written without a shape; any other
    gets its shape, with the values flattened row-major."""
    array = np.asarray(array)
    field = _target_field(array.dtype if dtype is None else np.dtype(dtype))
    value = Value()
    tensor = getattr(value, field)
    tensor.SetInParent()  # an empty tensor still says which type it is
    tensor.values.extend(_cast(array, TENSOR_DTYPES[field]).ravel().tolist())
    if array.ndim > 1:
        tensor.shape.extend(array.shape)
    return value


def sparse_to_value(sparse: SparseTensor, dtype: Any = None) -> Value:
    """A sparse tensor Value (keys, values, shape); ``dtype`` as in ``numpy_to_value``."""
    field = _target_field(sparse.values.dtype if dtype is None else np.dtype(dtype))
    value = Value()
    tensor = getattr(value, field)
    tensor.SetInParent()
    tensor.values.extend(_cast(np.asarray(sparse.values), TENSOR_DTYPES[field]).tolist())
    tensor.keys.extend(np.asarray(sparse.keys, dtype=np.uint64).tolist())
    tensor.shape.extend(sparse.shape)
    return value


def _target_field(dtype: np.dtype) -> str:
    if dtype.kind in "iub":
        return "int32_tensor"
    if dtype == np.float64:
        return "float64_tensor"
    if dtype.kind == "f":
        return "float32_tensor"
    raise ValueError(f"cannot write a {dtype} array as a RecordIO tensor; "
                     "expected float32, float64 or integer values")


def _cast(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    if dtype is np.int32:
        if array.dtype.kind not in "iub":
            raise ValueError(f"cannot write {array.dtype} values into an int32 tensor")
        if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
            raise ValueError(f"values outside the int32 range [{_INT32.min}, {_INT32.max}]")
    return array.astype(dtype, copy=False)
