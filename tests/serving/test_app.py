"""The Flask app in-process (no gunicorn): response-type negotiation and error mapping."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
