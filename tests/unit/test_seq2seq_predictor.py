"""Seq2Seq serving: JSON, JSON Lines and RecordIO-protobuf requests through the real codecs,
the attention matrix, content negotiation and bad requests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from sagetext.algorithms import seq2seq
from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor
from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError
from sagetext.serving import codecs
from sagetext.serving.negotiation import negotiate, request_type
from tests.unit.test_seq2seq import corpus, rnn_model_dir  # noqa: F401 - shared fixtures


@pytest.fixture(scope="module")
def predictor(rnn_model_dir: Path) -> Seq2SeqPredictor:  # noqa: F811
    return seq2seq.ALGORITHM.load(rnn_model_dir)


def roundtrip(predictor: Seq2SeqPredictor, content_type: str, body: bytes) -> bytes:
    """negotiate → decode → predict → encode, as the server does."""
    response_type = negotiate(predictor, content_type, content_type)
    assert response_type == content_type
    return codecs.encode(response_type, predictor.predict(codecs.decode(content_type, body), content_type,
                                                          response_type))


def test_model_folder_holds_weights_config_and_both_vocabularies(rnn_model_dir: Path) -> None:  # noqa: F811
    assert sorted(p.name for p in rnn_model_dir.iterdir()) == ["config.json", "model.pt", "vocab.src.json",
                                                               "vocab.trg.json"]
    config = json.loads((rnn_model_dir / "config.json").read_text())
    assert config["format_version"] == 3
    assert (config["model"]["encoder_type"], config["model"]["decoder_type"]) == ("rnn", "rnn")


def test_json_request_translates_and_returns_attention_when_asked(predictor: Seq2SeqPredictor) -> None:
    body = json.dumps({"instances": [
        {"data": "1 2 3 4"},
        {"data": "5 6 7", "configuration": {"attention_matrix": "true"}},
        {"data": "9 8", "configuration": {"attention_matrix": True}},
        {"data": "   "},
    ]}).encode()
    predictions = json.loads(roundtrip(predictor, JSON, body))["predictions"]
    assert [p["target"] for p in predictions] == ["4 3 2 1", "7 6 5", "8 9", ""]
    assert "matrix" not in predictions[0]
    for prediction, source_len in ((predictions[1], 3), (predictions[2], 2)):
        matrix = np.array(prediction["matrix"])
        assert matrix.shape == (len(prediction["target"].split()), source_len)
        assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
    # reversal: the first output token attends most to the last source token
    assert int(np.argmax(predictions[1]["matrix"][0])) == 2


def test_jsonlines_request(predictor: Seq2SeqPredictor) -> None:
    body = b'{"source": "1 2 3"}\n{"source": "4 4 5 0"}\n'
    lines = roundtrip(predictor, JSONLINES, body).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"target": "3 2 1"}, {"target": "0 5 4 4"}]


def recordio_request(model_dir: Path, texts: list[str], empty_target: bool) -> bytes:
    """Records as the SageMaker example notebook builds them (it also sets an empty target)."""
    source_vocab = vocabulary.load(model_dir / "vocab.src.json")
    out = io.BytesIO()
    records = []
    for text in texts:
        record = recordio.Record()
        record.features["source"].int32_tensor.values.extend(source_vocab.ids(text))
        if empty_target:
            record.features["target"].int32_tensor.SetInParent()
        records.append(record)
    recordio.write_records(out, records)
    return out.getvalue()


@pytest.mark.parametrize("empty_target", [False, True])  # the SageMaker notebook sends an empty target
def test_recordio_request_answers_target_ids_in_features(predictor: Seq2SeqPredictor, rnn_model_dir: Path,  # noqa: F811
                                                         empty_target: bool) -> None:
    target_vocab = vocabulary.load(rnn_model_dir / "vocab.trg.json")
    body = recordio_request(rnn_model_dir, ["1 2 3", "7 7 8 9 0"], empty_target)
    answer = list(recordio.read_records(io.BytesIO(roundtrip(predictor, RECORDIO, body))))
    assert len(answer) == 2 and all(len(r.label) == 0 for r in answer)
    texts = [" ".join(target_vocab.tokens(r.features["target"].int32_tensor.values)) for r in answer]
    assert texts == ["3 2 1", "0 9 8 7 7"]


def test_response_type_follows_the_request() -> None:
    predictor = Seq2SeqPredictor.__new__(Seq2SeqPredictor)
    assert negotiate(predictor, JSON, None) == JSON
    assert negotiate(predictor, JSON, None, default_accept=JSONLINES) == JSON
    with pytest.raises(ClientError) as refused:
        negotiate(predictor, JSON, RECORDIO)
    assert refused.value.status == 406
    with pytest.raises(ClientError) as unsupported:
        request_type(predictor.answers, CSV)
    assert unsupported.value.status == 415
    assert negotiate(predictor, JSONLINES, f"{JSONLINES}, {JSON}") == JSONLINES


@pytest.mark.parametrize("content_type,data,needle", [
    (JSON, {"instance": []}, '"instances"'),
    (JSON, {"instances": [{"text": "1 2"}]}, '"instances"[0] must be an object with a string "data"'),
    (JSON, {"instances": [{"data": "1", "configuration": {"attention_matrix": "maybe"}}]}, "attention_matrix='maybe'"),
    (JSONLINES, [{"source": "1"}, {"src": "2"}], "line 2"),
    (RECORDIO, [{"features": {"target": np.array([4], np.int32)}}], "record 1: features['source'] is missing"),
    (RECORDIO, [{"features": {"source": np.array([4, 999], np.int32)}}], "source id 999 at position 1"),
    (RECORDIO, [{"features": {"source": np.array([0.5], np.float32)}}], "int32"),
])
def test_bad_requests_name_the_field(predictor: Seq2SeqPredictor, content_type: str, data: object,
                                     needle: str) -> None:
    with pytest.raises(ClientError) as error:
        predictor.predict(data, content_type, content_type)
    assert needle in error.value.message


def test_through_the_flask_app(predictor: Seq2SeqPredictor) -> None:
    """The server's own decode → negotiate → predict → encode path (in-process client)."""
    from sagetext.serving.app import create_app
    from sagetext.serving.settings import ServerSettings
    client = create_app(predictor, ServerSettings.from_env({})).test_client()
    body = json.dumps({"instances": [{"data": "3 4 5", "configuration": {"attention_matrix": "true"}}]})
    response = client.post("/invocations", data=body, headers={"Content-Type": JSON, "Accept": JSON})
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith(JSON)
    prediction = response.get_json()["predictions"][0]
    assert prediction["target"] == "5 4 3" and len(prediction["matrix"]) == 3
    refused = client.post("/invocations", data=body, headers={"Content-Type": JSON, "Accept": RECORDIO})
    assert refused.status_code == 406
    bad = client.post("/invocations", data=b'{"instances": [{"text": "1"}]}', headers={"Content-Type": JSON})
    assert bad.status_code == 400 and 'string "data" field' in bad.get_json()["error"]


# -- "configuration" at the top level and per instance (the committed tiny model: fast) ----------

TINY_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "seq2seq_tiny" / "model"


@pytest.fixture(scope="module")
def tiny() -> Seq2SeqPredictor:
    return Seq2SeqPredictor.load(TINY_MODEL)


def test_top_level_configuration_applies_to_every_instance_and_an_instance_overrides_it(
        tiny: Seq2SeqPredictor) -> None:
    body = {"configuration": {"attention_matrix": "true"},
            "instances": [{"data": "1 2 3"}, {"data": "4 5", "configuration": {"attention_matrix": False}},
                          {"data": "6 7 8 9", "configuration": {}}]}
    predictions = json.loads(roundtrip(tiny, JSON, json.dumps(body).encode()))["predictions"]
    assert [p["target"] for p in predictions] == ["3 2 1", "5 4", "9 8 7 6"]
    assert [("matrix" in p) for p in predictions] == [True, False, True]
    assert np.array(predictions[0]["matrix"]).shape == (3, 3)
    assert np.array(predictions[2]["matrix"]).shape == (4, 4)
    # the same matrix whether asked for at the top level or in the instance
    alone = {"instances": [{"data": "1 2 3", "configuration": {"attention_matrix": True}}]}
    single = json.loads(roundtrip(tiny, JSON, json.dumps(alone).encode()))["predictions"][0]
    assert single["target"] == predictions[0]["target"]
    np.testing.assert_allclose(single["matrix"], predictions[0]["matrix"], atol=1e-5)  # batched with others
    off = {"configuration": {"attention_matrix": "FALSE"}, "instances": [{"data": "1 2"}]}
    assert json.loads(roundtrip(tiny, JSON, json.dumps(off).encode())) == {"predictions": [{"target": "2 1"}]}


@pytest.mark.parametrize("body,needles", [
    ({"configuration": {"beam_size": 2}, "instances": [{"data": "1"}]},
     ['"configuration" has unknown key \'beam_size\'', "accepted: attention_matrix", "beam_size, 3"]),
    ({"instances": [{"data": "1"}, {"data": "2", "configuration": {"attention_matrix": "true", "k": 2, "a": 1}}]},
     ['"instances"[1].configuration has unknown key \'a\', \'k\'; accepted: attention_matrix']),
    ({"configuration": {"attention_matrix": "yes"}, "instances": [{"data": "1"}]},
     ["\"configuration\".attention_matrix='yes': expected true or false"]),
    ({"configuration": ["attention_matrix"], "instances": [{"data": "1"}]},
     ['"configuration" must be an object']),
])
def test_bad_configuration_is_a_400_naming_the_key(tiny: Seq2SeqPredictor, body: dict, needles: list[str]) -> None:
    from sagetext.serving.app import create_app
    from sagetext.serving.settings import ServerSettings

    client = create_app(tiny, ServerSettings.from_env({})).test_client()
    response = client.post("/invocations", data=json.dumps(body), headers={"Content-Type": JSON})
    assert response.status_code == 400, response.data
    error = response.get_json()["error"]
    for needle in needles:
        assert needle in error
