"""The HTTP face of a loaded model: ``GET /ping``, ``POST /invocations`` and
``GET /execution-parameters``.

A request goes ``negotiation`` (request and response types, from the predictor's declarations)
-> ``codecs.decode`` -> ``predictor.predict`` -> ``codecs.encode`` (``serving.invocation``,
which ``sagetext predict`` runs on files too); the predictor sees Python values, never bytes
or headers. Every error answers a JSON body
``{"error": "<what is wrong>"}`` (``error_body``) with its status: 400 malformed or incomplete
body, 404 unknown path, 405 wrong method, 406 unacceptable Accept, 413 body over
``SAGEMAKER_MAX_PAYLOAD_IN_MB`` (refused before it is read) or more instances than
``SAGETEXT_MAX_INSTANCES_PER_REQUEST`` (refused before any prediction), 415 unsupported
Content-Type, 501 a transfer coding other than chunked, and 500 with a generic message for a
failure inside the server, whose traceback goes only to the log. Requests gunicorn cannot
parse never reach the app; its worker answers them with the same body (``serving.gunicorn``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify, request
from werkzeug import Response as HTTPResponse
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from sagetext.data.media_types import JSON
from sagetext.errors import ClientError
from sagetext.serving import codecs, invocation
from sagetext.serving.settings import ServerSettings, env_var

if TYPE_CHECKING:  # importing algorithms pulls in torch, which the gunicorn master avoids
    from sagetext.algorithms.base import Predictor

log = logging.getLogger("sagetext.serving")

ROUTES = "GET /ping, POST /invocations and GET /execution-parameters"
INTERNAL_ERROR = "internal error while handling the request; the server log has the details"
# Transfer codings the WSGI server removes before the app reads the body.
DECODED_TRANSFER_CODINGS = ("chunked", "identity")


def error_body(message: str) -> bytes:
    """The body of every error answer: ``{"error": message}``, compact UTF-8 JSON."""
    return codecs.encode(JSON, {"error": message})


def clip(text: str, length: int = 200) -> str:
    """``text`` cut to ``length`` characters: what a client sent is quoted, never all of it."""
    return text if len(text) <= length else text[:length] + "..."


def create_app(predictor: Predictor, settings: ServerSettings) -> Flask:
    """A Flask app serving ``predictor``; build it only once the model is loaded, so that
    /ping answering 200 means "ready"."""
    check_declarations(predictor)
    app = Flask("sagetext.serving")
    # One byte over the limit, so that _read_body can tell a chunked body that is too long.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes + 1

    @app.get("/ping")
    def ping() -> Response:
        return Response(status=200)

    @app.post("/invocations")
    def invocations() -> Response:
        return _invoke(predictor, settings)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return jsonify({
            "MaxConcurrentTransforms": settings.max_concurrent_transforms,
            "BatchStrategy": settings.batch_strategy,
            "MaxPayloadInMB": settings.transform_payload_mb,
        })

    app.register_error_handler(HTTPException, lambda e: _http_error(e, settings))
    app.register_error_handler(ClientError, _client_error)
    app.register_error_handler(Exception, _internal_error)
    return app


def check_declarations(predictor: Predictor) -> None:
    """A type without a codec, or a request type without an answer, is the predictor's mistake:
    refuse to start rather than fail each request."""
    problems = [f"{request} has no response type" for request, answers in predictor.answers.items() if not answers]
    declared = {*predictor.answers, *(t for answers in predictor.answers.values() for t in answers)}
    problems += [f"{media} has no codec" for media in sorted(declared - set(codecs.CODECS))]
    if problems:
        raise ValueError(f"{type(predictor).__name__}.answers: {'; '.join(problems)} "
                         f"(codecs: {', '.join(codecs.SUPPORTED)})")


def _invoke(predictor: Predictor, settings: ServerSettings) -> Response:
    # Like SageMaker's legacy worker: the type may come as ContentType; missing means JSON.
    raw_type = request.headers.get("Content-Type") or request.headers.get("ContentType")
    types = invocation.negotiate(predictor, raw_type, request.headers.get("Accept"), settings.default_accept)
    body = invocation.answer(predictor, types, _read_body(settings.max_payload_bytes), settings)
    return Response(body, status=200, content_type=types.response)


def _read_body(limit: int) -> bytes:
    """The body, or 413 if it is over ``limit`` bytes. Werkzeug refuses a Content-Length over
    MAX_CONTENT_LENGTH before reading anything, but stops reading a chunked body at that
    maximum without an error; reading at most limit + 1 bytes tells the two apart. A body
    that ends early or whose chunked framing is broken is a 400."""
    _check_transfer_coding()
    try:
        body = request.get_data(cache=False)
    except HTTPException:  # 413, or ClientDisconnected: the connection ended mid-body
        raise
    except Exception as e:
        # The WSGI server's reader refuses broken chunked framing with its own exception types
        # (gunicorn.http.errors.InvalidChunkSize, ChunkMissingTerminator, ...), which this
        # module, meant for any WSGI server, does not import.
        raise ClientError(f"the request body could not be read: {clip(str(e))}") from None
    if len(body) > limit:
        raise RequestEntityTooLarge()
    announced = request.content_length
    if announced is not None and len(body) < announced:
        # The server hands over what came before the client stopped sending; never predict on it.
        raise ClientError(f"the request body ended after {len(body)} of the {announced} bytes "
                          "its Content-Length announced")
    return body


def _check_transfer_coding() -> None:
    """A body still in gzip, deflate or compress transfer coding (gunicorn removes only the
    chunked framing) is refused rather than decoded as if it were plain: 501, as gunicorn
    answers a coding it does not know."""
    header = request.headers.get("Transfer-Encoding", "")
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    others = [c for c in codings if c not in DECODED_TRANSFER_CODINGS]
    if others:
        raise ClientError(f"Transfer-Encoding {header!r}: this server decodes only chunked; "
                          f"send the body without the {', '.join(others)} transfer coding", status=501)


def _error_response(status: int, message: str, response: HTTPResponse | None = None) -> HTTPResponse:
    response = response if response is not None else Response()
    response.status_code = status
    response.set_data(error_body(message))
    response.content_type = JSON
    return response


def _http_error(error: HTTPException, settings: ServerSettings) -> HTTPResponse:
    if isinstance(error, NotFound):
        message = f"no such path {request.path!r}; this server answers {ROUTES}"
    elif isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or []))
        message = f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif isinstance(error, ClientDisconnected):
        message = ("the request body is incomplete: the client stopped sending before the last "
                   "chunk, or before the length its Content-Length announced")
    elif isinstance(error, RequestEntityTooLarge):
        message = (f"request body is larger than {settings.max_payload_bytes} bytes, the limit "
                   f"set by {env_var('max_payload_mb')}={settings.max_payload_mb:g}")
    else:
        message = f"{error.name}: {error.description}"
    status = error.code or 500
    log.warning("%s %s -> %d: %s", request.method, request.path, status, message)
    return _error_response(status, message, error.get_response())


def _client_error(error: ClientError) -> HTTPResponse:
    log.warning("%s %s -> %d: %s", request.method, request.path, error.status, error.message)
    return _error_response(error.status, error.message)


def _internal_error(error: Exception) -> HTTPResponse:
    log.exception("%s %s failed", request.method, request.path)
    return _error_response(500, INTERNAL_ERROR)
