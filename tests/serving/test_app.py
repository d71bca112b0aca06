"""The Flask app in-process (no gunicorn): response-type negotiation and error mapping."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError
from sagetext.serving import codecs
from sagetext.serving.app import check_declarations, create_app
from sagetext.serving.negotiation import negotiate
from sagetext.serving.settings import ServerSettings
from tests.serving.echo_algorithm import EchoPredictor

SETTINGS = ServerSettings.from_env({})
PREDICTOR = EchoPredictor("hi")


@pytest.mark.parametrize("accept, default_accept, expected", [
    (None, "", JSON),  # the predictor's own default
    (None, JSONLINES, JSONLINES),  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
    (None, RECORDIO, JSON),  # a default it cannot produce falls back to its own
    (JSONLINES, "", JSONLINES),
    (f"{CSV}, {JSONLINES}", "", JSONLINES),
    (f"{CSV}, */*", JSONLINES, JSONLINES),  # "... or anything": the default
    (f"{CSV}, */*", "", JSON),
])
def test_negotiate(accept, default_accept, expected):
    assert negotiate(PREDICTOR, JSON, accept, default_accept) == expected


def test_negotiate_refuses_an_accept_it_cannot_meet():
    with pytest.raises(ClientError) as refused:  # only types it cannot produce: 406
        negotiate(PREDICTOR, JSON, CSV, JSONLINES)
    assert refused.value.status == 406


@pytest.mark.parametrize("answers, problem", [
    ({JSON: ()}, "application/json has no response type"),
    ({JSON: ("text/html",)}, "text/html has no codec"),
    ({"application/x-npy": (JSON,)}, "application/x-npy has no codec"),
])
def test_a_predictor_declaring_what_no_codec_handles_is_refused_at_start(answers, problem):
    class Misdeclared(EchoPredictor):
        pass

    Misdeclared.answers = answers
    with pytest.raises(ValueError, match=problem):
        create_app(Misdeclared("hi"), SETTINGS)


def test_every_algorithm_declares_only_types_with_codecs():
    from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor
    from sagetext.algorithms.blazingtext.word2vec.vectors import VectorsPredictor
    from sagetext.algorithms.ntm.predictor import NtmPredictor
    from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor

    for predictor in (SupervisedPredictor, VectorsPredictor, NtmPredictor, Seq2SeqPredictor):
        check_declarations(predictor.__new__(predictor))  # the declarations are class attributes


@pytest.fixture
def client():
    app = create_app(PREDICTOR, replace(SETTINGS, default_accept=JSONLINES, max_payload_mb=0.001))
    return app.test_client()


def test_default_accept_setting_applies_when_accept_is_missing(client):
    response = client.post("/invocations", data=b'{"instances": [1, 2]}',
                           headers={"Content-Type": JSON})
    assert response.status_code == 200 and response.content_type == JSONLINES
    assert response.data == b"1\n2\n"
    explicit = client.post("/invocations", data=b'{"instances": []}',
                           headers={"Content-Type": JSON, "Accept": JSON})
    assert explicit.content_type == JSON


def test_legacy_contenttype_header_is_honoured(client):
    response = client.post("/invocations", data=b"1,2\n", headers={"ContentType": CSV, "Accept": CSV})
    assert response.status_code == 200 and response.data == b"3.0\n"


def test_content_length_over_the_limit_is_refused_before_reading(client):
    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

    response = client.post("/invocations", headers={"Content-Type": JSON},
                           environ_overrides={"wsgi.input": Unreadable(), "CONTENT_LENGTH": "5000"})
    assert response.status_code == 413
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB=0.001" in response.get_json()["error"]


def test_a_result_the_codec_cannot_write_is_a_generic_500():
    class Broken(EchoPredictor):
        def predict(self, data, content_type, response_type):
            return {"x": object()}

    response = create_app(Broken("hi"), SETTINGS).test_client().post(
        "/invocations", data=b"{}", headers={"Content-Type": JSON})
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal error while handling the request; the server log has the details"}


CAP = 3
# content type -> a body with n instances, for the echo predictor
MANY = {
    JSON: lambda n: json.dumps({"instances": list(range(n))}).encode(),
    JSONLINES: lambda n: b"".join(b'{"a": 1}\n' for _ in range(n)),
    CSV: lambda n: b"".join(b"1,2\n" for _ in range(n)),
    RECORDIO: lambda n: codecs.encode(RECORDIO, [{"features": {"values": np.ones(2, np.float32)}}] * n),
}


@pytest.mark.parametrize("content_type", MANY)
def test_instances_over_the_cap_get_413_before_any_prediction(content_type):
    class Counting(EchoPredictor):
        calls = 0

        def predict(self, data, content_type, response_type):
            Counting.calls += 1
            return super().predict(data, content_type, response_type)

    client = create_app(Counting("hi"), replace(SETTINGS, max_instances_per_request=CAP)).test_client()
    at_cap = client.post("/invocations", data=MANY[content_type](CAP), headers={"Content-Type": content_type})
    assert at_cap.status_code == 200 and Counting.calls == 1
    over = client.post("/invocations", data=MANY[content_type](CAP + 1), headers={"Content-Type": content_type})
    assert over.status_code == 413 and over.content_type == JSON
    assert over.get_json()["error"].startswith(
        f"the request holds {CAP + 1} instances, more than the {CAP} this server answers per request; "
        f"send at most {CAP} per request, or raise SAGETEXT_MAX_INSTANCES_PER_REQUEST")
    assert Counting.calls == 1  # refused before predict


def test_a_json_body_without_an_instances_list_is_left_to_the_predictor():
    client = create_app(PREDICTOR, replace(SETTINGS, max_instances_per_request=1)).test_client()
    response = client.post("/invocations", data=b'{"data": [1, 2, 3]}', headers={"Content-Type": JSON})
    assert response.status_code == 200
    assert response.get_json()["greeting"] == "hi" and response.get_json()["predictions"] == []  # the echo's answer


def test_a_body_shorter_than_its_content_length_is_refused():
    response = create_app(PREDICTOR, SETTINGS).test_client().post(
        "/invocations", data=b'{"instances": []}', headers={"Content-Type": JSON},
        environ_overrides={"CONTENT_LENGTH": "100"})
    assert response.status_code == 400
    assert "the request body is incomplete" in response.get_json()["error"]


def test_a_body_the_server_cannot_read_is_a_400_naming_why():
    class BrokenFraming:
        def read(self, *args):
            raise LookupError("Invalid chunk size: b'zz'")  # as gunicorn's InvalidChunkSize

    response = create_app(PREDICTOR, SETTINGS).test_client().post(
        "/invocations", headers={"Content-Type": JSON},
        environ_overrides={"wsgi.input": BrokenFraming(), "wsgi.input_terminated": True})
    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body could not be read: Invalid chunk size: b'zz'"}


def test_a_transfer_coding_other_than_chunked_is_refused():
    response = create_app(PREDICTOR, SETTINGS).test_client().post(
        "/invocations", data=b"{}", headers={"Content-Type": JSON, "Transfer-Encoding": "gzip, chunked"})
    assert response.status_code == 501
    assert "send the body without the gzip transfer coding" in response.get_json()["error"]
