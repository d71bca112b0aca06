"""Content types in and out of the server: what each decodes to, encodes from, and refuses."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sagemaker_training import recordio as sm_recordio

from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.data.recordio import SparseTensor
from sagetext.errors import ClientError, UnsupportedContentType
from sagetext.serving import codecs

# ---- the codec map ------------------------------------------------------------------------

def test_supported_types_come_from_the_codec_map():
    assert codecs.SUPPORTED == tuple(codecs.CODECS) == (JSON, JSONLINES, CSV, RECORDIO)


def test_unsupported_type_is_415_listing_the_supported_ones():
    with pytest.raises(UnsupportedContentType) as raised:
        codecs.decode("application/x-npy", b"\x93NUMPY")
    assert raised.value.status == 415
    for media in codecs.SUPPORTED:
        assert media in raised.value.message
    assert "application/x-npy" in raised.value.message


def test_encoding_to_a_type_without_codec_is_a_server_error():
    with pytest.raises(ValueError, match="no encoder for response type 'text/html'"):
        codecs.encode("text/html", {})


# ---- JSON and JSON Lines --------------------------------------------------------------------

def test_json_decodes_to_the_parsed_value():
    body = '\ufeff{"instances": [{"data": "héllo"}], "n": 1.5}'.encode()
    assert codecs.decode("application/json; charset=utf-8", body) == {
        "instances": [{"data": "héllo"}], "n": 1.5}


@pytest.mark.parametrize("body, problem", [
    (b"", "application/json body is empty"),
    (b"{'a': 1}", "application/json body is not valid JSON: Expecting property name"),
    (b'{"a": "\xff"}', "application/json body is not valid UTF-8: byte 7 \\(0xff\\)"),
    (b"[" * 100_000, "nests arrays/objects too deeply"),
    (b"1" * 5000, "not valid JSON: Exceeds the limit"),
])
def test_malformed_json_is_400_naming_the_problem(body, problem):
    with pytest.raises(ClientError, match=problem) as raised:
        codecs.decode(JSON, body)
    assert raised.value.status == 400


def test_jsonlines_decodes_one_value_per_non_blank_line():
    body = b'{"source": "a b"}\r\n\n  \n[1, 2]\n"text \xe2\x80\xa8 with a line separator"\n'
    assert codecs.decode(JSONLINES, body) == [{"source": "a b"}, [1, 2], "text \u2028 with a line separator"]


def test_jsonlines_error_names_the_line():
    with pytest.raises(ClientError, match="application/jsonlines line 3 is not valid JSON"):
        codecs.decode(JSONLINES, b'{"a": 1}\n\n{"a": \n')


def test_json_encodes_numpy_values_compactly():
    obj = {"predictions": [{"topic_weights": np.array([0.5, 0.25], dtype=np.float32),
                            "label": np.int64(3), "word": "héllo", "pair": (1, 2)}]}
    body = codecs.encode(JSON, obj)
    assert body == '{"predictions":[{"topic_weights":[0.5,0.25],"label":3,"word":"héllo","pair":[1,2]}]}'.encode()


def test_json_refuses_objects_it_cannot_write():
    with pytest.raises(TypeError, match="cannot write a value of type object as JSON"):
        codecs.encode(JSON, {"x": object()})


def test_jsonlines_encodes_one_line_per_item():
    body = codecs.encode(JSONLINES, [{"target": "a b"}, {"target": "c"}])
    assert body == b'{"target":"a b"}\n{"target":"c"}\n'
    assert codecs.decode(JSONLINES, body) == [{"target": "a b"}, {"target": "c"}]
    with pytest.raises(TypeError, match="needs a list of items"):
        codecs.encode(JSONLINES, {"target": "a"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=5))
def test_jsonlines_round_trips(items):
    assert codecs.decode(JSONLINES, codecs.encode(JSONLINES, items)) == items


# ---- CSV --------------------------------------------------------------------------------------

def test_csv_decodes_to_a_2d_float32_array():
    body = b'1,2.5,-3\r\n\n 4 , 5e1 ,"6"\n1e39,nan,-inf\n'
    array = codecs.decode("text/csv; label_size=0", body)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, [[1, 2.5, -3], [4, 50, 6], [np.inf, np.nan, -np.inf]])
    assert codecs.decode(CSV, b"\n\n").shape == (0, 0)


@pytest.mark.parametrize("body, problem", [
    (b"1,2,3\n4,5\n", "text/csv line 2 has 2 values, but line 1 has 3"),
    (b"a,b\n1,2\n", "text/csv line 1, column 1: 'a' is not a number"),
    (b"1,2\n\n3,\n", "text/csv line 3, column 2: '' is not a number"),
    (b'"1\n",2\n3,x\n', "text/csv line 3, column 2: 'x' is not a number"),
    (b"1,\xff\n", "text/csv body is not valid UTF-8"),
    (b'1,"2\n', "text/csv body is not valid CSV: line 1: unexpected end of data"),
])
def test_malformed_csv_is_400_naming_line_and_column(body, problem):
    with pytest.raises(ClientError, match=problem):
        codecs.decode(CSV, body)


def test_csv_encodes_rows_and_columns():
    assert codecs.encode(CSV, np.array([[1, 2], [3, 4]])) == b"1,2\n3,4\n"
    assert codecs.encode(CSV, [0.5, 1.5]) == b"0.5\n1.5\n"
    np.testing.assert_array_equal(codecs.decode(CSV, codecs.encode(CSV, [[0.25, 1]])), [[0.25, 1]])


# ---- RecordIO-protobuf --------------------------------------------------------------------

def test_recordio_decodes_sagemaker_dense_records_to_dicts():
    out = io.BytesIO()
    sm_recordio._write_numpy_to_dense_tensor(out, np.eye(2, dtype=np.float32),
                                             np.array([1, 0], dtype=np.float32))
    decoded = codecs.decode(RECORDIO, out.getvalue())
    assert len(decoded) == 2
    first = decoded[0]
    assert set(first) == {"features", "label", "uid", "metadata", "configuration"}
    np.testing.assert_array_equal(first["features"]["values"], [1, 0])
    assert first["features"]["values"].dtype == np.float32
    np.testing.assert_array_equal(first["label"]["values"], [1])
    assert first["uid"] is None and first["metadata"] is None and first["configuration"] is None


def test_recordio_keeps_sparse_tensors_sparse():
    out = io.BytesIO()
    sm_recordio._write_spmatrix_to_sparse_tensor(
        out, sp.csr_matrix(np.array([[0, 2.0, 0, 1.0]], dtype=np.float32)))
    [record] = codecs.decode(RECORDIO, out.getvalue())
    tensor = record["features"]["values"]
    assert isinstance(tensor, SparseTensor)
    assert tensor.keys.tolist() == [1, 3] and tensor.shape == (4,)
    np.testing.assert_array_equal(np.asarray(tensor), [0, 2, 0, 1])


def test_recordio_reads_uid_metadata_and_configuration():
    record = recordio.Record(uid="doc-7", metadata='{"k": 1}',
                             configuration='{"attention_matrix": "true"}')
    record.features["source"].CopyFrom(recordio.numpy_to_value(np.array([4, 5, 6])))
    out = io.BytesIO()
    recordio.write_records(out, [record])
    [decoded] = codecs.decode(RECORDIO, out.getvalue())
    assert decoded["uid"] == "doc-7" and decoded["metadata"] == '{"k": 1}'
    assert decoded["configuration"] == {"attention_matrix": "true"}
    assert decoded["features"]["source"].dtype == np.int32


def test_recordio_bad_configuration_names_the_record():
    out = io.BytesIO()
    recordio.write_records(out, [recordio.Record(), recordio.Record(configuration="{nope")])
    with pytest.raises(ClientError, match="x-recordio-protobuf record 2 configuration is not valid JSON"):
        codecs.decode(RECORDIO, out.getvalue())


def test_recordio_bad_tensor_names_record_and_feature():
    record = recordio.Record()
    record.features["values"].float32_tensor.keys.append(9)
    record.features["values"].float32_tensor.values.append(1.0)
    out = io.BytesIO()
    recordio.write_records(out, [record])
    with pytest.raises(ClientError, match=r"record 1 features\['values'\]: sparse tensor .* without a shape"):
        codecs.decode(RECORDIO, out.getvalue())


def test_recordio_encodes_floats_as_float32_and_integers_as_int32():
    body = codecs.encode(RECORDIO, [
        {"features": {}, "label": {"topic_weights": np.array([0.25, 0.75])}},
        {"features": {"target": [7, 8, 9]}, "uid": "u2"},
        {"label": {"matrix": np.ones((2, 3)),
                   "sparse": SparseTensor(np.array([2], dtype=np.uint64), np.array([5.0]), (4,))}},
    ])
    first, second, third = recordio.read_records(io.BytesIO(body))
    assert len(first.features) == 0
    assert first.label["topic_weights"].WhichOneof("value") == "float32_tensor"
    assert list(first.label["topic_weights"].float32_tensor.values) == [0.25, 0.75]
    assert second.features["target"].WhichOneof("value") == "int32_tensor"
    assert list(second.features["target"].int32_tensor.values) == [7, 8, 9]
    assert second.uid == "u2"
    decoded = codecs.decode(RECORDIO, body)
    assert decoded[2]["label"]["matrix"].shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(decoded[2]["label"]["sparse"]), [0, 0, 5, 0])


def test_recordio_encode_refuses_unknown_keys():
    with pytest.raises(TypeError, match="not \\['labels'\\]"):
        codecs.encode(RECORDIO, [{"labels": {}}])


# ---- any bytes --------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.sampled_from(codecs.SUPPORTED), st.binary(max_size=300))
def test_arbitrary_bytes_decode_to_a_value_or_client_error(content_type, body):
    try:
        codecs.decode(content_type, body)
    except ClientError as e:
        assert e.status == 400
        assert content_type in e.message


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([JSON, JSONLINES, CSV]),
       st.text(alphabet='[]{}",:0123456789.e-\n\r truefalsn\\', max_size=200))
def test_json_like_text_decodes_to_a_value_or_client_error(content_type, text):
    try:
        codecs.decode(content_type, text.encode())
    except ClientError as e:
        assert e.status == 400
        assert content_type in e.message


def test_nothing_is_unpickled():
    import pickle

    body = pickle.dumps({"a": 1})
    for media in codecs.SUPPORTED:
        with pytest.raises(ClientError):
            codecs.decode(media, body)
    assert json.loads(codecs.encode(JSON, {"ok": True})) == {"ok": True}
