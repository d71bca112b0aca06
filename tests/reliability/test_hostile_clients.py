"""Each algorithm's real server (gunicorn, one sync worker) against hostile clients.

Empty, truncated, deeply nested, invalid UTF-8, random and randomly mutated bodies in every
content type the model accepts; unknown and malformed Content-Type and Accept; wrong methods
and paths; requests gunicorn cannot parse (bad request line, header, Content-Length or chunked
framing; a line or headers over its limits), sent over a raw socket; bodies over
``SAGEMAKER_MAX_PAYLOAD_IN_MB`` (413 before the body is sent); more instances than
``SAGETEXT_MAX_INSTANCES_PER_REQUEST`` (413 before any prediction); 100k instances. Every
answer is a 4xx JSON error naming the problem (a mutated body may also still be valid: 200;
a transfer coding the server does not implement is a 501), never a 500, a traceback, a secret
or a dropped connection. Afterwards /ping is 200, a known-good request gets byte-identical
output, and the worker was never replaced.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.serving import codecs
from sagetext.serving.settings import ServerSettings
from tests.reliability.conftest import FAKE_SECRET, NTM_DIM, SECRET_ENV
from tests.serving.conftest import Server

pytestmark = pytest.mark.slow

ALGORITHMS = ("ntm", "seq2seq", "supervised", "word2vec")
SERVE_NAME = {"ntm": "ntm", "seq2seq": "seq2seq", "supervised": "blazingtext", "word2vec": "blazingtext"}
PAYLOAD_MB = 6  # SageMaker's default
PAYLOAD_BYTES = PAYLOAD_MB * 1024 * 1024
MUTATIONS = 25  # randomly mutated bodies per content type
RANDOM_BODIES = 8
TIMEOUT = 60


def recordio_body(records: list[dict[str, Any]]) -> bytes:
    return codecs.encode(RECORDIO, records)


def good_bodies(algorithm: str, count: int = 2) -> dict[str, bytes]:
    """Known-good request bodies with ``count`` instances, per content type the model accepts."""
    rng = random.Random(count)
    if algorithm == "ntm":
        rows = [[rng.randrange(4) for _ in range(NTM_DIM)] for _ in range(count)]
        return {
            JSON: json.dumps({"instances": [{"features": row} for row in rows]}).encode(),
            JSONLINES: "".join(json.dumps({"data": {"features": {"values": row}}}) + "\n" for row in rows).encode(),
            CSV: "".join(",".join(map(str, row)) + "\n" for row in rows).encode(),
            RECORDIO: recordio_body([{"features": {"values": np.asarray(row, np.float32)}} for row in rows]),
        }
    if algorithm == "seq2seq":
        sentences = [" ".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 6))) for _ in range(count)]
        return {
            JSON: json.dumps({"instances": [{"data": s} for s in sentences]}).encode(),
            JSONLINES: "".join(json.dumps({"source": s}) + "\n" for s in sentences).encode(),
            RECORDIO: recordio_body([{"features": {"source": np.asarray([4 + int(t) for t in s.split()], np.int32)}}
                                     for s in sentences]),
        }
    words = ["the", "goalkeeper", "pastry", "chef", "crowd", "soup", "unseenword"]
    if algorithm == "supervised":
        sentences = [" ".join(rng.choice(words) for _ in range(5)) for _ in range(count)]
        return {
            JSON: json.dumps({"instances": sentences, "configuration": {"k": 2}}).encode(),
            JSONLINES: "".join(json.dumps({"source": s, "k": 2}) + "\n" for s in sentences).encode(),
        }
    return {JSON: json.dumps({"instances": [rng.choice(words) for _ in range(count)]}).encode()}


def mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert random bytes
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:  # delete a run
            del data[at:at + rng.randint(1, 8)]
        elif op == 3:  # duplicate a slice
            data[at:at] = data[rng.randrange(len(data) + 1):][:rng.randint(1, 32)]
        else:  # an interesting value
            data[at:at] = rng.choice([b"-1", b"1e999", b"NaN", b"\xff", b"\x00", b"[", b"{", b'"', b"9" * 40,
                                      b"\xef\xbf\xbf", b"\xed\xa0\x80", b"\x80\x00\x00\x00"])
    return bytes(data)


def hostile_bodies(algorithm: str, content_type: str) -> list[tuple[str, bytes]]:
    rng = random.Random(f"{algorithm}/{content_type}")
    good = good_bodies(algorithm, 3)[content_type]
    cases = [("empty", b""), ("whitespace", b" \n\t\n"), ("invalid UTF-8", b"\xff\xfe\xfa" + good),
             ("UTF-8 surrogate", b'{"instances": ["\xed\xa0\x80"]}\n'),
             ("deep nesting", b"[" * 100_000), ("deep objects", b'{"a":' * 50_000),
             ("closed deep nesting", b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
             ("NUL bytes", b"\x00" * 1000), ("RecordIO magic only", b"\x0a\x57\x1c\xce")]
    cases += [(f"truncated at {cut}", good[:cut]) for cut in sorted({1, len(good) // 3, len(good) // 2, len(good) - 1})]
    cases += [(f"random {i}", rng.randbytes(rng.choice([1, 7, 64, 1000]))) for i in range(RANDOM_BODIES)]
    cases += [(f"mutation {i}", mutate(good, rng)) for i in range(MUTATIONS)]
    return cases


# ---- the servers ---------------------------------------------------------------------------


class Served:
    def __init__(self, server: Server, algorithm: str) -> None:
        self.server = server
        self.algorithm = algorithm
        self.content_types = tuple(good_bodies(algorithm))
        self.baseline = {ct: self.post(body, ct).content for ct, body in good_bodies(algorithm).items()}

    def post(self, body: bytes, content_type: str | None, accept: str | None = None,
             path: str = "/invocations", method: str = "POST") -> requests.Response:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return requests.request(method, self.server.url + path, data=body, headers=headers, timeout=TIMEOUT)

    def boots(self) -> int:
        return self.server.log().count("Booting worker")


@pytest.fixture(scope="module")
def served(trained_models: dict[str, Path | str], launch_model_server: Callable) -> dict[str, Served | str]:
    out: dict[str, Served | str] = {}
    for algorithm in ALGORITHMS:
        model = trained_models[algorithm]
        if isinstance(model, str):
            out[algorithm] = model
            continue
        server = launch_model_server(SERVE_NAME[algorithm], model, {
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(PAYLOAD_MB),
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(TIMEOUT),
            "SAGETEXT_MAX_INSTANCES_PER_REQUEST": ""})  # blank: the algorithm's default
        out[algorithm] = Served(server, algorithm)
        for content_type, body in out[algorithm].baseline.items():
            assert body, (algorithm, content_type)
    return out


def get_served(served: dict[str, Served | str], algorithm: str) -> Served:
    value = served[algorithm]
    if isinstance(value, str):
        pytest.skip(value)
    return value


def assert_client_error(response: requests.Response, case: str, *, allow_ok: bool = False,
                        status: int | None = None) -> None:
    """A 4xx JSON ``{"error": "..."}`` without a traceback or a secret (or, if allowed, a 200)."""
    where = f"{case}: {response.status_code} {response.text[:300]!r}"
    assert FAKE_SECRET not in response.text and SECRET_ENV["AWS_ACCESS_KEY_ID"] not in response.text, where
    if allow_ok and response.status_code == 200:
        return
    assert 400 <= response.status_code < 500, where
    if status is not None:
        assert response.status_code == status, where
    assert response.headers.get("Content-Type", "").startswith("application/json"), where
    error = response.json().get("error")
    assert isinstance(error, str) and len(error) > 10, where
    assert "Traceback" not in response.text and 'File "' not in response.text, where


# ---- bodies ----------------------------------------------------------------------------------

CASES = [(algorithm, content_type) for algorithm in ALGORITHMS
         for content_type in good_bodies(algorithm)]


@pytest.mark.parametrize("algorithm,content_type", CASES, ids=[f"{a}-{c.split('/')[-1]}" for a, c in CASES])
def test_hostile_bodies_get_a_client_error(served: dict, algorithm: str, content_type: str) -> None:
    server = get_served(served, algorithm)
    for case, body in hostile_bodies(algorithm, content_type):
        response = server.post(body, content_type)
        # A stream of records (JSON Lines, CSV, RecordIO) may legitimately hold none: an
        # empty answer. A mutated body may still be valid.
        blank = not body.decode("utf-8", "replace").strip()
        empty_stream = content_type != JSON and (blank or case.startswith("truncated"))
        assert_client_error(response, f"{content_type} {case}", allow_ok=case.startswith("mutation") or empty_stream)
        if empty_stream and response.status_code == 200:
            if blank:
                assert len(response.content) < 40, response.content[:200]
    for case, body in hostile_bodies(algorithm, content_type)[:6]:  # the message names what is wrong
        response = server.post(body, content_type)
        if response.status_code != 200:
            error = response.json()["error"].lower()
            assert any(word in error for word in ("json", "csv", "recordio", "utf-8", "empty", "instances",
                                                  "record", "line", "expected", "body")), (case, error)


def test_specific_messages(served: dict) -> None:
    """A few hostile bodies whose message is known: it names the problem."""
    server = get_served(served, "ntm")
    checks = [(b"", JSON, "empty"), (b"\xff{}", JSON, "not valid UTF-8"), (b"[" * 100_000, JSON, "too deeply"),
              (b"1,2\n1,2,3\n", CSV, "every row needs the same number"), (b"\x00\x01\x02\x03\x04\x05\x06\x07", RECORDIO,
                                                                       "bad magic"),
              (b'{"instances": [{"features": [1, 2]}]}', JSON, f"expected {NTM_DIM}")]
    for body, content_type, needle in checks:
        response = server.post(body, content_type)
        assert_client_error(response, needle, status=400)
        assert needle in response.json()["error"], response.text


LONE_SURROGATE = {  # valid JSON (an escaped lone surrogate) that no UTF-8 encoder can write back
    "ntm": (JSON, b'{"instances": [{"features": "\\ud800"}]}'),
    "seq2seq": (JSON, b'{"instances": [{"data": "1 \\ud800 2"}]}'),
    "supervised": (JSON, b'{"instances": ["the \\udfff chef"]}'),
    "word2vec": (JSON, b'{"instances": ["\\ud800"]}'),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_escaped_lone_surrogates(served: dict, algorithm: str) -> None:
    server = get_served(served, algorithm)
    content_type, body = LONE_SURROGATE[algorithm]
    response = server.post(body, content_type)
    assert_client_error(response, "escaped lone surrogate", allow_ok=True)
    if response.status_code == 200:
        response.content.decode("utf-8")  # what it answers is valid UTF-8


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_content_type_without_a_media_type(served: dict, algorithm: str) -> None:
    """``Content-Type: ;;;`` names no type: like a missing header it means JSON (the legacy
    SageMaker rule), so a JSON body is answered and anything else is a 400."""
    server = get_served(served, algorithm)
    good = good_bodies(algorithm)[JSON]
    for header in (";;;", "; charset=utf-8", ""):
        response = server.post(good, header)
        assert response.status_code == 200 and response.content == server.baseline[JSON], header
        assert_client_error(server.post(b"\x00\x01", header), f"Content-Type {header!r}", status=400)


# ---- headers, methods, paths -----------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bad_headers_methods_and_paths(served: dict, algorithm: str) -> None:
    server = get_served(served, algorithm)
    content_type, body = next(iter(good_bodies(algorithm).items()))
    for bad_type in ("application/x-unknown", "image/png", "text/html; charset=utf-8", "/", "a/b/c",
                     "application/jsonx", "x" * 4000, "application/x-npy", "application/python-pickle"):
        assert_client_error(server.post(body, bad_type), f"Content-Type {bad_type[:40]!r}", status=415)
    unsupported = [t for t in codecs.SUPPORTED if t not in server.content_types]
    for bad_type in unsupported:  # a type the server knows but this model does not take
        response = server.post(body, bad_type)
        assert_client_error(response, f"Content-Type {bad_type}", status=415)
        assert "accepts" in response.json()["error"]
    # Bytes HTTP forbids in a header are refused by gunicorn's parser before the app runs:
    # a 400 with the same JSON body, and the server carries on.
    for bad_type in ("application/json\x7f", "application/json\x00"):
        response = server.post(body, bad_type)
        assert_client_error(response, f"Content-Type {bad_type!r}", status=400)
        assert "CONTENT-TYPE" in response.json()["error"]
    for accept in ("application/x-unknown", "image/png, text/html", "application/x-unknown;q=1, */*;q=0"):
        response = server.post(body, content_type, accept=accept)
        if algorithm in ("supervised", "word2vec"):  # BlazingText answers in the request's type, whatever Accept says
            assert response.status_code == 200 and response.content == server.baseline[content_type], accept
        else:
            assert_client_error(response, f"Accept {accept!r}", status=406)
    for accept in ("*/*;q=abc", ",,,", ";q=1", "*/*;q=nan", f"{content_type};q=2", "*/*; q=0.1, " * 200):
        response = server.post(body, content_type, accept=accept)  # malformed but satisfiable: answered
        assert response.status_code in (200, 406), (accept, response.text[:200])
        if response.status_code == 406:
            assert_client_error(response, f"Accept {accept[:40]!r}")
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert_client_error(server.post(b"", None, method=method), f"{method} /invocations", status=405)
    for method in ("POST", "PUT", "DELETE"):
        assert_client_error(server.post(b"{}", JSON, path="/ping", method=method), f"{method} /ping", status=405)
    for path in ("/", "/invocation", "/invocations/x", "/../../etc/passwd", "/%00", "/models/x/invoke",
                 "/" + "a" * 3000, "/ping/", "/%ff%fe"):
        assert_client_error(server.post(b"", None, path=path, method="GET"), f"GET {path[:40]}", status=404)


# ---- size ------------------------------------------------------------------------------------

def raw_request(url: str, head: bytes, body: bytes = b"", timeout: float = 10,
                half_close: bool = False) -> bytes:
    """Send ``head`` + ``body`` on a fresh socket; return what the server answers (until it
    closes or stops talking), without sending anything more. ``half_close``: then end the
    sending side, as a client that stops in mid-request does."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                header, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
    return b"".join(chunks)


def parse_raw(answer: bytes) -> tuple[int, dict[str, Any]]:
    header, _, body = answer.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(body)


def raw_headers(answer: bytes) -> dict[str, str]:
    header = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    return {name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header.split("\r\n")[1:])}


POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
# (case, what is sent, whether the client then stops sending, status, what the message names)
MALFORMED_HTTP = [
    ("invalid request line", b"GARBAGE\r\n\r\n", False, 400, "request line: 'GARBAGE'"),
    ("invalid method", b"G(T /ping HTTP/1.1\r\nHost: x\r\n\r\n", False, 400, "method: 'G(T'"),
    ("invalid HTTP version", b"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n", False, 400, "HTTP Version"),
    ("bare LF line ends", b"GET /ping HTTP/1.1\nHost: x\n\n", False, 400, "bare LF"),
    ("header without a colon", POST + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}", False, 400,
     "'NoColonHere'; a header line is 'Name: value'"),
    ("illegal header name", POST + b"Bad Name(): v\r\nContent-Length: 2\r\n\r\n{}", False, 400,
     "header name: 'Bad Name()'"),
    ("obsolete header folding", POST + b"X-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", False, 400,
     "folding"),
    ("request line over limit_request_line", b"GET /ping?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     False, 414, "request lines of at most 4094 bytes"),
    ("header over limit_request_field_size", b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000
     + b"\r\n\r\n", False, 431, "of at most 8190 bytes each"),
    ("headers over limit_request_fields", b"GET /ping HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", False, 431, "at most 100 header fields"),
    ("Content-Length: abc", POST + b"Content-Length: abc\r\n\r\n{}", False, 400, "CONTENT-LENGTH"),
    ("negative Content-Length", POST + b"Content-Length: -1\r\n\r\n{}", False, 400, "CONTENT-LENGTH"),
    ("two Content-Lengths", POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", False, 400,
     "Content-Length must be sent once"),
    ("Content-Length and chunked", POST + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\n0\r\n\r\n", False, 400, "not together with Transfer-Encoding"),
    ("body shorter than its Content-Length", POST + b"Content-Length: 100\r\n\r\n{}", True, 400,
     "ended after 2 of the 100 bytes"),
    ("invalid chunk size", CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n", False, 400, "Invalid chunk size: b'zz'"),
    ("chunk without its CRLF", CHUNKED + b"2\r\n{}XX0\r\n\r\n", False, 400, "chunk terminator"),
    ("invalid chunk extension", CHUNKED + b"2;a=\x01\r\n{}\r\n0\r\n\r\n", False, 400, "chunk extension"),
    ("chunked body cut short", CHUNKED + b"2\r\n{}\r\n", True, 400, "the request body is incomplete"),
    ("Transfer-Encoding not ending in chunked", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n{}",
     False, 400, "Transfer-Encoding must end with chunked"),
    ("chunked on HTTP/1.0", POST.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Transfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\n0\r\n\r\n", False, 400, "TRANSFER-ENCODING"),
    ("Expect other than 100-continue", POST + b"Expect: teapot\r\nContent-Length: 2\r\n\r\n{}", False, 417,
     "expectation: 'teapot'"),
    # Not broken, but not implemented: 501 as HTTP says, with the same JSON body.
    ("unknown transfer coding", POST + b"Transfer-Encoding: br, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False,
     501, "'br, chunked'"),
    ("gzip transfer coding", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False,
     501, "without the gzip transfer coding"),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_malformed_http_gets_a_json_client_error(served: dict, algorithm: str) -> None:
    """Requests gunicorn refuses before the app runs, and bodies whose framing breaks while the
    app reads them: the status gunicorn chose, with the app's JSON error body."""
    server = get_served(served, algorithm)
    for case, request, half_close, status, needle in MALFORMED_HTTP:
        answer = raw_request(server.server.url, request, half_close=half_close)
        where = f"{case}: {answer[:300]!r}"
        assert answer.startswith(b"HTTP/1.1 %d " % status), where
        assert raw_headers(answer).get("content-type") == JSON, where
        body = answer.partition(b"\r\n\r\n")[2]
        assert int(raw_headers(answer)["content-length"]) == len(body), where
        error = json.loads(body)["error"]
        assert list(json.loads(body)) == ["error"] and needle in error, where
        assert "Traceback" not in error and 'File "' not in error and FAKE_SECRET not in error, where
    assert server.server.ping() == 200
    for content_type, body in good_bodies(algorithm).items():
        response = server.post(body, content_type)
        assert response.status_code == 200 and response.content == server.baseline[content_type], content_type


@pytest.mark.parametrize("algorithm", ["ntm", "seq2seq", "supervised", "word2vec"])
def test_body_over_the_limit_is_refused_before_it_is_read(served: dict, algorithm: str) -> None:
    server = get_served(served, algorithm)
    # 1. Content-Length over the limit: answered 413 while the client has sent 1 KB of 1 GB.
    head = (f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {1 << 30}\r\n\r\n").encode()
    status, payload = parse_raw(raw_request(server.server.url, head, b"[" * 1024))
    assert status == 413 and "larger than" in payload["error"], payload
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB" in payload["error"]
    # 2. A chunked body that grows past the limit: 413 once the limit is passed.
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * (256 * 1024)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(PAYLOAD_BYTES // len(chunk) + 2))
    status, payload = parse_raw(raw_request(server.server.url, head, body + b"0\r\n\r\n"))
    assert status == 413 and "larger than" in payload["error"], payload
    # 3. Exactly at the limit (padding after a good body): accepted.
    content_type, good = next(iter(good_bodies(algorithm).items()))
    if content_type == JSON:
        response = server.post(good + b" " * (PAYLOAD_BYTES - len(good)), JSON)
        assert response.status_code == 200, response.text[:300]
        response = server.post(good + b" " * (PAYLOAD_BYTES - len(good) + 1), JSON)
        assert_client_error(response, "one byte over", status=413)


def many_instances(algorithm: str, count: int) -> tuple[str, bytes]:
    """(content type, body) of a valid request with ``count`` small instances."""
    rng = random.Random(7)
    if algorithm == "ntm":
        return CSV, b"".join(b"1,0,2,0,1,0,0,3,0,0,1,0\n" for _ in range(count))
    if algorithm == "seq2seq":
        return JSON, json.dumps({"instances": [{"data": str(rng.randrange(10))} for _ in range(count)]}).encode()
    if algorithm == "supervised":
        return JSON, json.dumps({"instances": ["the chef" for _ in range(count)]}).encode()
    return JSON, json.dumps({"instances": ["the"] * count}).encode()


def predictions(response: requests.Response) -> list[Any]:
    answer = response.json()
    return answer["predictions"] if isinstance(answer, dict) else answer


def instance_cap(algorithm: str) -> int:
    """The cap the served model has: its algorithm's default (the fixture leaves it unset)."""
    return ServerSettings.from_env({}, algorithm=SERVE_NAME[algorithm]).max_instances_per_request


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_100k_instances(served: dict, algorithm: str) -> None:
    """100,000 instances in one request: answered in full (200, one prediction each) or
    refused with a 413 naming the cap (Seq2Seq's is far lower), within the server's timeout;
    never a killed worker."""
    server = get_served(served, algorithm)
    content_type, body = many_instances(algorithm, 100_000)
    assert len(body) <= PAYLOAD_BYTES, len(body)
    started = time.monotonic()
    response = server.post(body, content_type)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, elapsed
    if instance_cap(algorithm) >= 100_000:
        assert response.status_code == 200, response.text[:300]
        assert len(predictions(response)) == 100_000
    else:
        assert_client_error(response, "100k instances", status=413)
        assert "100000 instances" in response.json()["error"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_instance_cap(served: dict, algorithm: str) -> None:
    """One instance over the cap: 413 naming the count, the cap and the setting, answered
    before any prediction work; exactly at the cap: every instance answered."""
    server = get_served(served, algorithm)
    cap = instance_cap(algorithm)
    content_type, body = many_instances(algorithm, cap + 1)
    started = time.monotonic()
    response = server.post(body, content_type)
    assert_client_error(response, "one instance over the cap", status=413)
    error = response.json()["error"]
    assert error.startswith(f"the request holds {cap + 1} instances, more than the {cap} this server "
                            f"answers per request; send at most {cap} per request, or raise "
                            "SAGETEXT_MAX_INSTANCES_PER_REQUEST"), error
    assert time.monotonic() - started < 10
    if cap < 100_000:  # a cap of 100,000 or more: test_100k_instances gets a full answer
        content_type, body = many_instances(algorithm, cap)
        response = server.post(body, content_type)
        assert response.status_code == 200, response.text[:300]
        assert len(predictions(response)) == cap


def worker_rss(server: Served) -> int:
    import psutil

    return max(child.memory_info().rss for child in psutil.Process(server.server.process.pid).children())


@pytest.mark.parametrize("algorithm,field", [("seq2seq", "source"), ("ntm", "values")])
def test_sparse_tensor_declaring_a_huge_shape(served: dict, algorithm: str, field: str) -> None:
    """A few bytes declaring a sparse tensor of 2^26 elements: answered at once, without the
    worker allocating the dense tensor (it did: +2 GB and 24 s for four such records)."""
    from sagetext.data.recordio import SparseTensor

    server = get_served(served, algorithm)
    huge = SparseTensor(np.array([0], np.uint64), np.array([5], np.int32 if field == "source" else np.float32),
                        (1 << 26,))
    body = recordio_body([{"features": {field: huge}}] * 8)
    assert len(body) < 1000
    before = worker_rss(server)
    started = time.monotonic()
    response = server.post(body, RECORDIO)
    assert time.monotonic() - started < 5
    assert_client_error(response, "huge sparse shape", allow_ok=True)
    assert worker_rss(server) - before < 100 << 20


# ---- afterwards ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_server_is_unharmed(served: dict, algorithm: str) -> None:
    """Runs last in this module: the same answers, byte for byte, and the first worker still serving."""
    server = get_served(served, algorithm)
    assert server.server.ping() == 200
    for content_type, body in good_bodies(algorithm).items():
        response = server.post(body, content_type)
        assert response.status_code == 200
        assert response.content == server.baseline[content_type], content_type
    log = server.server.log()
    assert server.boots() == 1, log[-3000:]  # no worker was killed (timeout, crash) and replaced
    assert "Traceback" not in log, log[-5000:]
    assert FAKE_SECRET not in log
