"""The real server over real HTTP: gunicorn started by ``serve()`` around the echo algorithm."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from sagemaker_training import recordio as sm_recordio

from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from tests.serving.conftest import server_env

LIMIT = int(0.01 * 1024 * 1024)  # SAGEMAKER_MAX_PAYLOAD_IN_MB=0.01 in the fixture
MAX_INSTANCES = 50  # SAGETEXT_MAX_INSTANCES_PER_REQUEST in the fixture


def invoke(server, body: bytes | str, content_type: str | None = JSON,
           accept: str | None = None, **kwargs) -> requests.Response:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    return requests.post(f"{server.url}/invocations", data=body, headers=headers,
                         timeout=30, **kwargs)


def test_ping_is_200_with_an_empty_body(server):
    response = requests.get(f"{server.url}/ping", timeout=5)
    assert response.status_code == 200 and response.content == b""


def test_json_in_json_out_with_the_model_loaded_from_model_dir(server):
    response = invoke(server, '{"instances": [{"data": "a b"}, {"data": "c"}]}')
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON
    answer = response.json()
    assert answer["predictions"] == [{"data": "a b"}, {"data": "c"}]
    assert answer["greeting"] == "hello from the model dir"
    assert answer["torch_threads"] == 1  # two workers: one torch thread each


def test_missing_content_type_means_json(server):
    response = invoke(server, b'{"instances": [1]}', content_type=None)
    assert response.status_code == 200 and response.json()["predictions"] == [1]


@pytest.mark.parametrize("accept", [None, "*/*", "text/html, */*;q=0.1"])
def test_missing_or_wildcard_accept_gets_the_predictors_default(server, accept):
    response = invoke(server, '{"instances": []}', accept=accept)
    assert response.status_code == 200 and response.headers["Content-Type"] == JSON


def test_jsonlines_in_and_out(server):
    response = invoke(server, '{"source": "a"}\n\n{"source": "b c"}\n', JSONLINES,
                      accept="application/jsonlines")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSONLINES
    assert response.content == b'{"source":"a"}\n{"source":"b c"}\n'


def test_json_answered_as_jsonlines_when_asked(server):
    response = invoke(server, '{"instances": [{"a": 1}, {"b": 2}]}',
                      accept="text/csv;q=0.9, application/jsonlines")
    assert response.headers["Content-Type"] == JSONLINES
    assert response.content == b'{"a":1}\n{"b":2}\n'


def test_csv_in_csv_and_json_out(server):
    body = "1,2,3\n4,5,6.5\n"
    as_csv = invoke(server, body, "text/csv; label_size=0", accept=CSV)
    assert as_csv.status_code == 200 and as_csv.content == b"6.0\n15.5\n"
    as_json = invoke(server, body, CSV)
    assert [p["sum"] for p in as_json.json()["predictions"]] == [6.0, 15.5]


def test_recordio_in_and_out(server):
    body = io.BytesIO()
    sm_recordio._write_numpy_to_dense_tensor(body, np.array([[1, 2], [3, 4.5]], dtype=np.float32))
    response = invoke(server, body.getvalue(), RECORDIO, accept=RECORDIO)
    assert response.status_code == 200 and response.headers["Content-Type"] == RECORDIO
    records = list(recordio.read_records(io.BytesIO(response.content)))
    assert [list(r.label["sum"].float32_tensor.values) for r in records] == [[3.0], [7.5]]


def test_execution_parameters(server):
    response = requests.get(f"{server.url}/execution-parameters", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD",
                               "MaxPayloadInMB": 1}


def chunks(total: int):
    for _ in range(total // 1000):
        yield b" " * 1000


ERROR_CASES = {
    "malformed JSON": (400, lambda s: invoke(s, b'{"instances": [1,'), "not valid JSON"),
    "bad CSV": (400, lambda s: invoke(s, b"1,2\n3\n", CSV), "line 2 has 1 values"),
    "bad RecordIO": (400, lambda s: invoke(s, b"\x00" * 8, RECORDIO), "bad magic"),
    "predictor refuses": (400, lambda s: invoke(s, b'{"bad": 1}'), "instance 0 has no 'data'"),
    "unknown path": (404, lambda s: requests.get(f"{s.url}/models", timeout=5),
                     "no such path '/models'"),
    "GET invocations": (405, lambda s: requests.get(f"{s.url}/invocations", timeout=5),
                        "method GET is not allowed on /invocations; allowed: OPTIONS, POST"),
    "POST ping": (405, lambda s: requests.post(f"{s.url}/ping", data=b"x", timeout=5),
                  "method POST is not allowed on /ping"),
    "too large": (413, lambda s: invoke(s, b" " * (LIMIT + 1)),
                  f"larger than {LIMIT} bytes, the limit set by SAGEMAKER_MAX_PAYLOAD_IN_MB=0.01"),
    "too large, chunked": (413, lambda s: invoke(s, chunks(30_000)), "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
    "too many instances": (413, lambda s: invoke(s, "\n".join(["{}"] * (MAX_INSTANCES + 1)), JSONLINES),
                           f"the request holds {MAX_INSTANCES + 1} instances, more than the "
                           f"{MAX_INSTANCES} this server answers per request; send at most "
                           f"{MAX_INSTANCES} per request, or raise SAGETEXT_MAX_INSTANCES_PER_REQUEST "
                           "(each request must finish within SAGEMAKER_MODEL_SERVER_TIMEOUT=30 s)"),
    "unsupported type": (415, lambda s: invoke(s, b"hi", "text/plain; charset=utf-8"),
                         "'text/plain; charset=utf-8' is not accepted by this model; it accepts "
                         "application/json, application/jsonlines, text/csv"),
    "unacceptable Accept": (406, lambda s: invoke(s, b"{}", accept="text/html"),
                            "Accept 'text/html' cannot be met for Content-Type application/json; "
                            "this model answers it with application/json, application/jsonlines"),
    "predictor crashes": (500, lambda s: invoke(s, b'{"crash": 1}'), "internal error"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_answer_json_with_their_status_and_the_server_stays_up(server, case):
    status, send, message = ERROR_CASES[case]
    response = send(server)
    assert response.status_code == status
    assert response.headers["Content-Type"] == JSON
    assert message in response.json()["error"]
    assert "Traceback" not in response.text and "secret" not in response.text
    assert server.ping() == 200
    assert invoke(server, '{"instances": [1]}').status_code == 200


def test_405_names_the_allowed_methods_in_the_allow_header(server):
    response = requests.delete(f"{server.url}/ping", timeout=5)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_at_the_limit_is_accepted_and_one_byte_more_is_not(server, chunked):
    body = b'{"instances": []}'.ljust(LIMIT, b" ")
    send = (lambda data: iter([data[:100], data[100:]])) if chunked else (lambda data: data)
    at_limit, over = invoke(server, send(body)), invoke(server, send(body + b" "))
    assert at_limit.status_code == 200 and at_limit.json()["predictions"] == []
    assert over.status_code == 413 and "SAGEMAKER_MAX_PAYLOAD_IN_MB" in over.json()["error"]


def test_a_request_at_the_instance_cap_is_answered(server):
    response = invoke(server, json.dumps({"instances": list(range(MAX_INSTANCES))}))
    assert response.status_code == 200 and response.json()["predictions"] == list(range(MAX_INSTANCES))


def test_internal_errors_are_logged_with_their_traceback(server):
    invoke(server, b'{"crash": 1}')
    time.sleep(0.2)
    log = server.log()
    assert "Traceback" in log and "RuntimeError: secret internal detail" in log


def test_sigterm_lets_the_request_in_flight_finish(launch_server, model_dir):
    server = launch_server(model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    server.wait_ready()
    answers: list[requests.Response] = []
    slow = threading.Thread(target=lambda: answers.append(
        invoke(server, '{"sleep": 1.5, "instances": ["done"]}')))
    slow.start()
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    slow.join(30)
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["predictions"] == ["done"]
    assert server.process.wait(30) == 0


def test_a_model_that_fails_to_load_stops_the_server(launch_server, model_dir):
    (model_dir / "greeting.txt").unlink()
    server = launch_server(model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    assert server.process.wait(60) != 0
    assert "greeting.txt" in server.log()


@pytest.mark.parametrize("env, message", [
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "many"},
     "SAGEMAKER_MODEL_SERVER_WORKERS='many': expected an integer"),
    ({"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/html"},
     "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT='text/html': expected empty or one of"),
])
def test_bad_settings_stop_the_server_before_it_starts(model_dir, env, message):
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from sagetext.serving.gunicorn import serve; "
                               "serve('blazingtext', sys.argv[1])", str(model_dir)],
        env=server_env(env), capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert message in run.stderr
