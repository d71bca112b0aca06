"""The gunicorn worker's answers to requests gunicorn refuses itself, in-process: the app's
JSON error body with gunicorn's status (the real server is driven in
tests/reliability/test_hostile_clients.py)."""

from __future__ import annotations

import json
from http import HTTPStatus
from unittest import mock

import pytest
from gunicorn.config import Config
from gunicorn.http import errors

from sagetext.serving.app import INTERNAL_ERROR
from sagetext.serving.gunicorn import JsonErrorWorker


class Client:
    def __init__(self) -> None:
        self.sent = b""

    def gettimeout(self) -> float:
        return 1.0

    def setblocking(self, flag: int) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.sent += data


def answer(exc: BaseException) -> tuple[str, dict[str, str], dict[str, str]]:
    """(status line, headers, JSON body) the worker writes for ``exc``."""
    worker = JsonErrorWorker(0, 0, [], None, 30, Config(), mock.Mock())
    client = Client()
    worker.handle_error(None, client, ("127.0.0.1", 5000), exc)
    head, _, body = client.sent.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert int(headers["Content-Length"]) == len(body)
    return status, headers, json.loads(body)


@pytest.mark.parametrize("exc, status, needle", [
    (errors.InvalidRequestLine("GARBAGE"), 400, "Invalid HTTP request line: 'GARBAGE'"),
    (errors.InvalidHeader("CONTENT-LENGTH"), 400, "Content-Length must be sent once"),
    (errors.InvalidHeaderName("Bad Name()"), 400, "'Bad Name()'"),
    (errors.LimitRequestLine(9000, 4094), 414, "at most 4094 bytes"),
    (errors.LimitRequestHeaders("limit request headers fields"), 431,
     "at most 100 header fields of at most 8190 bytes each"),
    (errors.UnsupportedTransferCoding("br, chunked"), 501, "'br, chunked'"),
])
def test_requests_gunicorn_refuses_get_json_with_gunicorns_status(exc, status, needle):
    line, headers, body = answer(exc)
    assert line == f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"
    assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
    assert needle in body["error"] and list(body) == ["error"]


def test_a_quoted_request_line_is_clipped():
    _, _, body = answer(errors.InvalidRequestLine("X" * 5000))
    assert len(body["error"]) < 300


def test_an_internal_error_is_a_generic_500_without_details():
    line, _, body = answer(RuntimeError("secret internal detail"))
    assert line == "HTTP/1.1 500 Internal Server Error"
    assert body == {"error": INTERNAL_ERROR}
