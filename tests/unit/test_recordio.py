"""RecordIO-protobuf: interoperability with sagemaker-training's writer and reader, split
records, and refusal of damaged streams."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sagemaker_training import recordio as sm_recordio

from sagetext.data import recordio
from sagetext.data.recordio import Record, SparseTensor, Value
from sagetext.errors import ClientError

MAGIC = struct.pack("<I", 0xCED7230A)

# dtype of the array given to SageMaker's writer -> dtype we read back
DENSE_TYPES = [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.int32)]


def sm_dense(array: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    out = io.BytesIO()
    sm_recordio._write_numpy_to_dense_tensor(out, array, labels)
    return out.getvalue()


def sm_sparse(matrix: sp.spmatrix, labels: np.ndarray | None = None) -> bytes:
    out = io.BytesIO()
    sm_recordio._write_spmatrix_to_sparse_tensor(out, matrix, labels)
    return out.getvalue()


def read_all(data: bytes) -> list[Record]:
    return list(recordio.read_records(io.BytesIO(data)))


def write_all(records: list[Record]) -> bytes:
    out = io.BytesIO()
    assert recordio.write_records(out, records) == len(records)
    return out.getvalue()


def dense_record(features: np.ndarray, label: np.ndarray | None = None) -> Record:
    record = Record()
    record.features["values"].CopyFrom(recordio.numpy_to_value(features))
    if label is not None:
        record.label["values"].CopyFrom(recordio.numpy_to_value(label))
    return record


def sample_matrix(dtype: type) -> sp.csr_matrix:
    dense = np.array([[0, 1.5, 0, 0, 2], [0, 0, 0, 0, 0], [3, 0, 0, 4.25, 0]])
    if np.issubdtype(dtype, np.integer):
        dense = np.round(dense)
    return sp.csr_matrix(dense.astype(dtype))


def dmlc_write(payload: bytes) -> bytes:
    """dmlc-core's RecordIOWriter::WriteRecord: split where the magic appears, 4-aligned."""
    out, start = [], 0
    for i in range(0, len(payload) // 4 * 4, 4):
        if payload[i:i + 4] == MAGIC:
            cflag = 1 if start == 0 else 2
            out.append(MAGIC + struct.pack("<I", cflag << 29 | (i - start)) + payload[start:i])
            start = i + 4
    cflag = 3 if start else 0
    tail = payload[start:]
    out.append(MAGIC + struct.pack("<I", cflag << 29 | len(tail)) + tail + b"\0" * (-len(tail) % 4))
    return b"".join(out)


# ---- interoperability with sagemaker-training ----------------------------------------------

@pytest.mark.parametrize("written, read", DENSE_TYPES)
def test_reads_what_sagemaker_dense_writer_writes(written, read):
    array = (np.arange(12).reshape(3, 4) * 1.5).astype(written)
    labels = np.array([1, 0, 7], dtype=written)
    records = read_all(sm_dense(array, labels))
    assert len(records) == 3
    for record, row, label in zip(records, array, labels):
        features = recordio.tensor_to_numpy(record.features["values"])
        assert features.dtype == read
        np.testing.assert_array_equal(features, row.astype(read))
        np.testing.assert_array_equal(recordio.tensor_to_numpy(record.label["values"]), [label])
        assert not recordio.is_sparse(record.features["values"])


@pytest.mark.parametrize("written, read", DENSE_TYPES)
def test_our_dense_writer_is_byte_identical_to_sagemakers(written, read):
    array = (np.arange(-6, 6).reshape(4, 3) * 0.75).astype(written)
    labels = np.array([3, 1, 4, 1], dtype=written)
    ours = write_all([dense_record(row, np.array([label])) for row, label in zip(array, labels)])
    assert ours == sm_dense(array, labels)
    payloads = list(sm_recordio._read_recordio(io.BytesIO(ours)))
    assert [Record.FromString(p) for p in payloads] == read_all(ours)


@pytest.mark.parametrize("written, read", DENSE_TYPES)
def test_reads_what_sagemaker_sparse_writer_writes(written, read):
    matrix = sample_matrix(written)
    records = read_all(sm_sparse(matrix, np.array([1, 2, 3], dtype=written)))
    for index, record in enumerate(records):
        value = record.features["values"]
        assert recordio.is_sparse(value)  # also row 1, which has no stored entries
        dense = recordio.tensor_to_numpy(value)
        assert dense.dtype == read
        np.testing.assert_array_equal(dense, matrix.toarray()[index])
        sparse = recordio.tensor_to_sparse(value)
        assert sparse.shape == (5,)
        np.testing.assert_array_equal(sparse.keys, matrix[index].indices)
        np.testing.assert_array_equal(sparse.values, matrix[index].data.astype(read))


@pytest.mark.parametrize("written, read", DENSE_TYPES)
def test_our_sparse_writer_is_byte_identical_to_sagemakers(written, read):
    matrix = sample_matrix(written)
    records = []
    for row in matrix:
        record = Record()
        tensor = SparseTensor(keys=row.indices.astype(np.uint64), values=row.data, shape=(5,))
        record.features["values"].CopyFrom(recordio.sparse_to_value(tensor))
        records.append(record)
    assert write_all(records) == sm_sparse(matrix)


def test_split_record_parts_are_joined_with_the_magic():
    payloads = [
        b"abcd" + MAGIC + b"efgh",  # one split: cflag 1, 3
        MAGIC + b"xy" + b"\0\0" + MAGIC + MAGIC + b"tail!",  # empty parts and middles (2)
        b"ends with magic" + b"\0" + MAGIC,
        b"no magic here",
    ]
    stream = b"".join(dmlc_write(p) for p in payloads)
    assert stream.count(MAGIC) > 2 * len(payloads)  # the frames really are split
    assert list(recordio.read_payloads(io.BytesIO(stream))) == payloads


def test_unaligned_magic_is_not_split_and_reads_back():
    payload = b"a" + MAGIC + b"bc"  # at offset 1: dmlc writes it whole
    assert dmlc_write(payload).count(MAGIC) == 2
    assert list(recordio.read_payloads(io.BytesIO(dmlc_write(payload)))) == [payload]


def test_reading_is_streaming():
    stream = io.BytesIO(sm_dense(np.ones((3, 4), dtype=np.float32)))
    records = recordio.read_records(stream)
    first = next(records)
    assert stream.tell() == len(stream.getvalue()) // 3  # read one frame, no more
    np.testing.assert_array_equal(recordio.tensor_to_numpy(first.features["values"]), np.ones(4))


# ---- damaged streams ----------------------------------------------------------------------

def test_bad_magic_names_the_record_and_offset():
    good = sm_dense(np.ones((2, 3), dtype=np.float32))
    frame = len(good) // 2
    data = good + b"\x00\x01\x02\x03" + good[4:frame]
    with pytest.raises(ClientError, match=rf"record 3: bad magic 0x03020100 at byte offset {2 * frame}"):
        read_all(data)


def test_every_truncation_is_a_client_error_or_fewer_records():
    data = sm_dense(np.arange(6, dtype=np.float32).reshape(3, 2))
    frame = len(data) // 3
    for cut in range(len(data)):
        if cut % frame == 0:
            assert len(read_all(data[:cut])) == cut // frame
        else:
            with pytest.raises(ClientError, match="RecordIO record"):
                read_all(data[:cut])


class PipeLike(io.RawIOBase):
    """A non-seekable stream that records the largest read it was asked for."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos, self.largest_read = data, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, n)
        chunk = self._data[self._pos:self._pos + min(n, 3)]  # short reads, like a pipe
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("make_stream", [io.BytesIO, PipeLike], ids=["seekable", "pipe"])
def test_huge_declared_length_fails_without_allocating_it(make_stream):
    data = MAGIC + struct.pack("<I", (1 << 29) - 1) + b"only a few bytes"
    stream = make_stream(data)
    with pytest.raises(ClientError, match=r"record 1 .*truncated.*536870911 payload bytes"):
        read_all_from(stream)
    if isinstance(stream, PipeLike):
        assert stream.largest_read <= 1 << 20


def read_all_from(stream) -> list[Record]:
    return list(recordio.read_records(stream))


def test_short_reads_from_a_pipe_still_parse():
    data = sm_dense(np.arange(8, dtype=np.float32).reshape(2, 4))
    assert read_all_from(PipeLike(data)) == read_all(data)


@pytest.mark.parametrize("flags, problem", [
    ([2], "continuation flag 2 where a record starts"),
    ([3], "continuation flag 3 where a record starts"),
    ([1, 0], "continuation flag 0 inside a split record"),
    ([1, 1], "continuation flag 1 inside a split record"),
    ([1], "stream ends"),
    ([5], "continuation flag 5"),
])
def test_inconsistent_split_flags_are_refused(flags, problem):
    data = b"".join(MAGIC + struct.pack("<I", flag << 29 | 4) + b"abcd" for flag in flags)
    with pytest.raises(ClientError, match=problem):
        read_all(data)


def test_payload_that_is_not_a_record_is_refused():
    good = write_all([dense_record(np.ones(2, dtype=np.float32))])
    data = good + MAGIC + struct.pack("<I", 4) + b"\xff\xff\xff\xff"
    with pytest.raises(ClientError, match="record 2: payload of 4 bytes is not a valid"):
        read_all(data)


def test_errors_name_the_source_when_given() -> None:
    good = write_all([dense_record(np.ones(2, dtype=np.float32))])
    with pytest.raises(ClientError, match=r"^part-3\.rec: RecordIO record 2: bad magic"):
        list(recordio.read_records(io.BytesIO(good + b"\0" * 8), "part-3.rec"))
    with pytest.raises(ClientError, match=r"^part-3\.rec: RecordIO record 1: payload of 4 bytes is not a valid"):
        list(recordio.read_records(io.BytesIO(MAGIC + struct.pack("<I", 4) + b"\xff" * 4), "part-3.rec"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_give_records_or_client_error(body, framed):
    if framed:  # a valid frame header, so the payload reaches the protobuf parser
        body = MAGIC + struct.pack("<I", len(body)) + body + b"\0" * (-len(body) % 4)
    try:
        records = read_all(body)
    except ClientError as e:
        assert e.status == 400 and e.message.startswith("RecordIO record "), e.message
        return
    for record in records:
        for value in [*record.features.values(), *record.label.values()]:
            try:
                recordio.decode_tensor(value)
            except ClientError as e:
                assert e.status == 400 and "tensor" in e.message, e.message


# ---- tensors ------------------------------------------------------------------------------

def float_value(values=(), keys=(), shape=()) -> Value:
    value = Value()
    value.float32_tensor.SetInParent()
    value.float32_tensor.values.extend(values)
    value.float32_tensor.keys.extend(keys)
    value.float32_tensor.shape.extend(shape)
    return value


def test_dense_tensor_with_shape_is_reshaped():
    array = recordio.tensor_to_numpy(float_value(range(6), shape=[2, 3]))
    np.testing.assert_array_equal(array, np.arange(6).reshape(2, 3))


def test_sparse_2d_keys_are_row_major():
    value = float_value([1.0, 2.0], keys=[1, 5], shape=[2, 3])
    np.testing.assert_array_equal(recordio.tensor_to_numpy(value), [[0, 1, 0], [0, 0, 2]])
    sparse = recordio.decode_tensor(value)
    assert isinstance(sparse, SparseTensor)
    np.testing.assert_array_equal(np.asarray(sparse), [[0, 1, 0], [0, 0, 2]])


def test_dense_tensor_as_sparse_gets_every_key():
    sparse = recordio.tensor_to_sparse(float_value([4.0, 0.0, 5.0]))
    assert sparse.keys.tolist() == [0, 1, 2] and sparse.shape == (3,)


@pytest.mark.parametrize("value, problem", [
    (float_value([1.0], keys=[3], shape=[3]), "key 3 is out of range for shape \\[3\\]"),
    (float_value([1.0], keys=[0]), "without a shape"),
    (float_value([1.0, 2.0], keys=[0], shape=[4]), "1 keys but 2 values"),
    (float_value([1.0, 2.0, 3.0], shape=[2, 2]), "3 values but shape \\[2, 2\\] needs 4"),
    (float_value([], keys=[], shape=[1] * 40), "40 dimensions"),
    (Value(), "holds nothing"),
])
def test_invalid_tensors_are_client_errors(value, problem):
    with pytest.raises(ClientError, match=problem):
        recordio.tensor_to_numpy(value)
    with pytest.raises(ClientError, match=problem):
        recordio.tensor_to_sparse(value)


def test_bytes_value_is_not_a_tensor():
    value = Value()
    value.bytes.value.append(b"abc")
    with pytest.raises(ClientError, match="features\\['x'\\] holds a bytes value"):
        recordio.decode_tensor(value, "features['x']")


def test_densifying_a_huge_sparse_tensor_is_refused_but_it_stays_readable():
    value = float_value([1.0], keys=[10**12], shape=[10**12 + 1])
    sparse = recordio.decode_tensor(value)
    assert isinstance(sparse, SparseTensor) and sparse.size == 10**12 + 1
    with pytest.raises(ClientError, match="densifying allows at most"):
        recordio.tensor_to_numpy(value)


def test_numpy_to_value_keeps_shape_and_type():
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    value = recordio.numpy_to_value(array)
    assert value.WhichOneof("value") == "int32_tensor"
    assert list(value.int32_tensor.shape) == [2, 3]
    np.testing.assert_array_equal(recordio.tensor_to_numpy(value), array)
    as_float = recordio.numpy_to_value(array, np.float32)
    assert as_float.WhichOneof("value") == "float32_tensor"
    empty = recordio.numpy_to_value(np.zeros(0, dtype=np.int32))
    assert empty.WhichOneof("value") == "int32_tensor"


@pytest.mark.parametrize("array, dtype", [
    (np.array([2**31]), None), (np.array([0.5]), np.int32), (np.array(["a"]), None)])
def test_numpy_to_value_refuses_what_the_tensor_cannot_hold(array, dtype):
    with pytest.raises(ValueError):
        recordio.numpy_to_value(array, dtype)
