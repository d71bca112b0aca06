"""NTM serving: every request format through the real codecs, each response type, and
requests that must be refused with a ClientError naming the instance or field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sagemaker_training import recordio as sdk

from sagetext.algorithms.ntm import ALGORITHM
from sagetext.algorithms.ntm import model as ntm_model
from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError
from sagetext.serving import codecs
from sagetext.serving.negotiation import negotiate
from tests.unit.test_ntm_data import recordio_bytes

D, K = 12, 4
DOCS = np.array([[0, 3, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0],
                 [5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]], dtype=np.float32)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ntm_model")
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(D, K, (8, 6), "relu", True))
    ntm_model.save(model, folder)
    return ALGORITHM.load(folder)


@pytest.fixture(scope="module")
def expected(predictor) -> np.ndarray:
    with torch.no_grad():
        return predictor.model.topic_weights(torch.from_numpy(DOCS)).numpy()


def sparse_instance(row: np.ndarray) -> dict:
    keys = np.flatnonzero(row)
    return {"data": {"features": {"keys": keys.tolist(), "shape": [D], "values": row[keys].tolist()}}}


def sdk_recordio(sparse: bool, dtype: type = np.float32) -> bytes:
    return recordio_bytes(DOCS, dtype, sparse)


REQUESTS = {
    "csv": (CSV, "".join(",".join(f"{v:g}" for v in row) + "\n" for row in DOCS).encode()),
    "json-features": (JSON, json.dumps({"instances": [{"features": r.tolist()} for r in DOCS]}).encode()),
    "json-data-values": (JSON, json.dumps(
        {"instances": [{"data": {"features": {"values": r.tolist()}}} for r in DOCS]}).encode()),
    "json-sparse": (JSON, json.dumps({"instances": [sparse_instance(r) for r in DOCS]}).encode()),
    "jsonlines": (JSONLINES, "\n".join(json.dumps(sparse_instance(r)) if i else
                                              json.dumps({"features": r.tolist()})
                                              for i, r in enumerate(DOCS)).encode()),
    "recordio-dense": (RECORDIO, sdk_recordio(False)),
    "recordio-sparse": (RECORDIO, sdk_recordio(True)),
    "recordio-int": (RECORDIO, sdk_recordio(True, int)),
}


def call(predictor, content_type: str, body: bytes, accept: str | None = None) -> tuple[str, bytes]:
    """negotiate → decode → predict → encode, as the server does."""
    response_type = negotiate(predictor, content_type, accept)
    result = predictor.predict(codecs.decode(content_type, body), content_type, response_type)
    return response_type, codecs.encode(response_type, result)


@pytest.mark.parametrize("name", REQUESTS)
def test_every_request_format_gives_the_same_topic_weights(predictor, expected, name: str) -> None:
    content_type, body = REQUESTS[name]
    response_type, out = call(predictor, content_type, body)
    assert response_type == JSON
    weights = np.array([p["topic_weights"] for p in json.loads(out)["predictions"]])
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert weights.shape == (2, K)


def test_jsonlines_and_recordio_responses(predictor, expected) -> None:
    content_type, body = REQUESTS["csv"]
    kind, out = call(predictor, content_type, body, JSONLINES)
    assert kind == JSONLINES
    lines = [json.loads(line) for line in out.decode().splitlines()]
    np.testing.assert_allclose([line["topic_weights"] for line in lines], expected, rtol=1e-5)
    kind, out = call(predictor, content_type, body, f"text/html, {RECORDIO}")
    assert kind == RECORDIO
    records = list(recordio.read_records(io.BytesIO(out)))
    assert len(records) == 2 and all(len(r.features) == 0 for r in records)
    np.testing.assert_allclose([list(r.label["topic_weights"].float32_tensor.values) for r in records],
                               expected, rtol=1e-5)
    with pytest.raises(ClientError) as refused:
        negotiate(predictor, CSV, "text/html")
    assert refused.value.status == 406


@pytest.mark.parametrize("content_type,body,needles", [
    (CSV, b"1,2,3\n", ["line 1", "has 3 values", "expected 12"]),
    (CSV, b"1" + b",0" * (D - 1) + b"\n" + b"1e39" + b",0" * (D - 1) + b"\n",
     ["line 2", "counts must be finite"]),
    (CSV, (b"1" + b",0" * (D - 1) + b"\n") * 2 + b"0,0,-2" + b",0" * (D - 3) + b"\n",
     ["line 3", "word 2 has negative count -2"]),
    (JSON, json.dumps({"instances": [{"features": [1] * D}, {"features": [1] * 5}]}).encode(),
     ["instance 1 features", "has 5 values"]),
    (JSON, json.dumps({"instances": [{"feature": [1] * D}]}).encode(), ["instance 0", "expected"]),
    (JSON, json.dumps({"instances": [{"data": {"features": {"keys": [0, 40], "shape": [D],
                                                                  "values": [1, 2]}}}]}).encode(),
     ["instance 0 data.features.keys", "key 40", "< 12"]),
    (JSON, json.dumps({"instances": [{"data": {"features": {"keys": [0], "shape": [D],
                                                                  "values": [1, 2]}}}]}).encode(),
     ["instance 0 data.features", "1 keys, 2 values"]),
    (JSON, json.dumps({"instances": [{"data": {"features": {"keys": [0], "shape": [99],
                                                                  "values": [1]}}}]}).encode(),
     ["instance 0", "shape [99]", "expected 12"]),
    (JSON, json.dumps({"instances": [{"features": [-1] + [0] * (D - 1)}]}).encode(),
     ["instance 0", "negative count"]),
    (JSON, json.dumps({"instances": [{"features": ["a"] * D}]}).encode(), ["instance 0", "numbers"]),
    (JSON, json.dumps([1, 2]).encode(), ["instances"]),
    (JSONLINES, (json.dumps({"features": [0] * D}) + "\n" + json.dumps({"features": [0] * 3})).encode(),
     ["line 2", "has 3 values"]),
])
def test_bad_requests_name_the_instance(predictor, content_type: str, body: bytes, needles: list[str]) -> None:
    with pytest.raises(ClientError) as info:
        call(predictor, content_type, body)
    for needle in needles:
        assert needle in info.value.message


def test_recordio_with_wrong_length_names_the_record(predictor) -> None:
    out = io.BytesIO()
    sdk._write_numpy_to_dense_tensor(out, np.ones((3, D + 1), dtype=np.float32))
    with pytest.raises(ClientError, match="record 1.*13 values.*expected 12"):
        call(predictor, RECORDIO, out.getvalue())


def test_a_version_1_file_without_shifts_loads_as_the_same_network(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(D, K, (5,), "sigmoid", True)).eval()
    ntm_model.save(model, tmp_path)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["format_version"] = 1
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.endswith(".shift")}
    torch.save(payload, tmp_path / "model.pt")
    loaded = ntm_model.load(tmp_path)
    assert all(not p.any() for name, p in loaded.named_parameters() if name.endswith(".shift"))
    counts = torch.rand(4, D) * 3
    assert torch.allclose(loaded.topic_weights(counts), model.topic_weights(counts))


def test_model_file_is_versioned_and_refuses_foreign_files(tmp_path: Path) -> None:
    torch.save({"format": "something-else"}, tmp_path / "model.pt")
    with pytest.raises(ClientError, match="not a sagetext NTM model"):
        ntm_model.load(tmp_path)
    model = ntm_model.ProdLDA(ntm_model.ModelConfig(D, K, (5,), "sigmoid", False))
    ntm_model.save(model, tmp_path)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["format_version"] = ntm_model.FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ClientError, match=f"format version {ntm_model.FORMAT_VERSION + 1}"):
        ntm_model.load(tmp_path)
    with pytest.raises(ClientError, match="no NTM model file"):
        ntm_model.load(tmp_path / "missing")
