"""The Flask app in-process (no gunicorn): response-type negotiation and error mapping."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sagetext.serving import codecs
from sagetext.serving.app import create_app, negotiate
from sagetext.serving.codecs import ANY, CSV, JSON, JSONLINES, RECORDIO
from sagetext.serving.settings import ServerSettings
from tests.serving.echo_algorithm import EchoPredictor

SETTINGS = ServerSettings.from_env({})
PREDICTOR = EchoPredictor("hi")


@pytest.mark.parametrize("accept, default_accept, expected", [
    ([], "", JSON),  # the predictor's own default
    ([], JSONLINES, JSONLINES),  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
    ([], RECORDIO, JSON),  # a default it cannot produce falls back to its own
    ([JSONLINES], "", JSONLINES),
    ([CSV, JSONLINES], "", JSONLINES),
    ([CSV], JSONLINES, None),  # only types it cannot produce: 406
    ([CSV, ANY], JSONLINES, JSONLINES),  # "... or anything": the default
    ([CSV, ANY], "", JSON),
])
def test_negotiate(accept, default_accept, expected):
    assert negotiate(PREDICTOR, JSON, accept, default_accept) == expected


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
