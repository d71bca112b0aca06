"""Run the inference server: real gunicorn, started from this process, with sync workers.

``serve(algorithm, model_dir)`` is where ``docker run IMAGE serve`` ends up: it binds
``0.0.0.0:$SAGEMAKER_BIND_TO_PORT`` (8080) and runs ``$SAGEMAKER_MODEL_SERVER_WORKERS``
workers (one per CPU by default). Without an algorithm name it serves whatever model the
folder holds (``algorithms.detect``). A model that cannot be loaded stops the server with one
line naming the folder and the reason, and exit status 4 (gunicorn's "App failed to load").
``serve_app(app_factory, settings)`` runs any app the same way; tests use it (through
``serve``) with a stand-in predictor.

The workers are gunicorn's sync workers, except that the requests gunicorn refuses before the
app sees them (an unparsable request line or header, a bad Content-Length or Transfer-Encoding,
a line or headers over gunicorn's limits) are answered with the app's JSON error body instead
of gunicorn's HTML page, keeping gunicorn's status (400, 414, 417, 431, 501); see
``JsonErrorWorker``.

The model is loaded in each worker after the fork, never in the master: forking a process
that has started torch's thread pools (or CUDA) is unsafe. With several workers each one runs
torch on a single thread, so the workers do not fight over cores. SIGTERM is gunicorn's
graceful stop: requests in flight finish (up to ``GRACEFUL_TIMEOUT`` s), then it exits 0.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.errors import AppImportError
from gunicorn.http import errors as http_errors
from gunicorn.workers.sync import SyncWorker

from sagetext import __version__
from sagetext.contract.metrics import configure_logging
from sagetext.data.media_types import JSON
from sagetext.errors import ClientError
from sagetext.serving.app import INTERNAL_ERROR, clip, error_body
from sagetext.serving.settings import ServerSettings

log = logging.getLogger("sagetext.serving")

# SageMaker sends SIGKILL 30 s after SIGTERM; stop waiting for requests well before that.
GRACEFUL_TIMEOUT = 20

_GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}

AppFactory = Callable[[], Callable[..., Any]]  # returns a WSGI application


def serve(algorithm_name: str | None, model_dir: Path, port: int | None = None) -> None:
    """Serve ``algorithm_name``'s model (or, when it is empty, the model the folder holds) from
    ``model_dir`` until SIGTERM. Settings come from the environment; ``port`` overrides
    ``SAGEMAKER_BIND_TO_PORT``."""
    from sagetext.algorithms import check, detect  # no torch import: safe in the master

    configure_logging()
    log.info("sagetext %s: serve %s", __version__, model_dir)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ClientError(f"model directory {str(model_dir)!r} does not exist; SageMaker "
                          "extracts model.tar.gz there before the container starts")
    if algorithm_name:
        check(algorithm_name)
    else:
        algorithm_name = detect(model_dir)
        log.info("%s holds a %s model", model_dir, algorithm_name)
    settings = ServerSettings.from_env(algorithm=algorithm_name)
    if port is not None:
        settings = replace(settings, port=port)
    factory = functools.partial(_load_app, algorithm_name, model_dir, settings)
    serve_app(factory, settings)


def serve_app(app_factory: AppFactory, settings: ServerSettings) -> None:
    """Run gunicorn with ``settings``; each worker calls ``app_factory()`` once after it
    starts. Returns after a graceful stop; exits non-zero if a worker cannot load the app."""
    configure_logging()
    log.info("starting gunicorn on port %d: %d sync worker(s), timeout %d s, max payload %g MB, "
             "at most %d instances per request", settings.port, settings.workers,
             settings.timeout, settings.max_payload_mb, settings.max_instances_per_request)
    _Gunicorn(app_factory, gunicorn_options(settings)).run()


def gunicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """gunicorn's settings for ours."""
    options: dict[str, Any] = {
        "bind": f"0.0.0.0:{settings.port}",
        "workers": settings.workers,
        "worker_class": JsonErrorWorker,
        "timeout": settings.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "preload_app": False,  # load in each worker, after the fork
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "sagetext-serve",
    }
    if os.path.isdir("/dev/shm"):  # heartbeat files on a container's overlay fs can stall
        options["worker_tmp_dir"] = "/dev/shm"
    if "control_socket_disable" in _GUNICORN_SETTINGS:  # newer gunicorn: no socket in $HOME
        options["control_socket_disable"] = True
    return options


def _load_app(algorithm_name: str, model_dir: Path, settings: ServerSettings) -> Any:
    """Runs in each worker: pin torch to one thread when workers share the cores, load the
    model, build the app. A model that fails to load stops the worker with AppImportError,
    whose message gunicorn prints as it is (the traceback only at debug level) before it stops
    the server with exit status 4."""
    # Imported here, not at the top: the algorithms import torch, and the master must not.
    from sagetext import algorithms
    from sagetext.serving.app import create_app

    if settings.workers > 1:
        import torch

        torch.set_num_threads(1)
    try:
        predictor = algorithms.get(algorithm_name).load(model_dir)
    except Exception as exc:  # noqa: BLE001 - any reason is reported the same way, in one line
        reason = exc.message if isinstance(exc, ClientError) else f"{type(exc).__name__}: {exc}"
        log.debug("loading the model failed", exc_info=True)
        raise AppImportError(f"sagetext serve: cannot load the {algorithm_name} model in {model_dir}: "
                             f"{' '.join(reason.split())}") from None
    log.info("worker %d: loaded the %s model from %s", os.getpid(), algorithm_name, model_dir)
    return create_app(predictor, settings)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn driven from Python: options from a dict, the app from a factory."""

    def __init__(self, app_factory: AppFactory, options: dict[str, Any]) -> None:
        self._app_factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._app_factory()


class JsonErrorWorker(SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, answering the requests gunicorn refuses itself with the app's
    JSON error body, ``{"error": "..."}``, instead of an HTML page.

    gunicorn still decides everything else: ``handle_error`` lets it write its answer into a
    ``_StatusLine`` instead of the socket, so that its status (400, 414 for a request line over
    ``limit_request_line``, 431 for headers over ``limit_request_fields`` or
    ``limit_request_field_size``, 417, 501 for an unknown transfer coding), its warning and
    its access-log line stay as they are, whichever gunicorn version runs. A 500 (a failure of
    ours that escaped the app) gets the app's generic message; gunicorn logs the traceback.
    """

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        answer = _StatusLine()
        super().handle_error(req, answer, addr, exc)
        status = answer.status()
        internal = status == HTTPStatus.INTERNAL_SERVER_ERROR
        body = error_body(INTERNAL_ERROR if internal else request_error_message(exc, self.cfg))
        head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nConnection: close\r\n"
                f"Content-Type: {JSON}\r\nContent-Length: {len(body)}\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # the client is gone; as gunicorn does, nothing more to do
            self.log.debug("Failed to send error message.")


# What a malformed framing header must look like, by the name gunicorn reports.
_HEADER_RULES = {
    "CONTENT-LENGTH": "Content-Length must be sent once, as a non-negative integer, and not "
                      "together with Transfer-Encoding",
    "TRANSFER-ENCODING": "Transfer-Encoding must end with chunked, name it once, and come on an "
                         "HTTP/1.1 request",
}


def request_error_message(exc: BaseException, cfg: Any) -> str:
    """What is wrong with a request gunicorn could not parse, for the client: gunicorn's own
    description (clipped: it quotes what the client sent) and the rule that was broken."""
    detail = clip(str(exc))
    if isinstance(exc, http_errors.LimitRequestLine):
        return (f"the request line is too long ({detail}); this server takes request lines of "
                f"at most {cfg.limit_request_line} bytes (method, path, query and version)")
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return (f"the request headers are too large ({detail}); this server takes at most "
                f"{cfg.limit_request_fields} header fields of at most "
                f"{cfg.limit_request_field_size} bytes each")
    if isinstance(exc, http_errors.InvalidHeader):
        rule = _HEADER_RULES.get(str(exc.hdr).upper(),
                                 "a header line is 'Name: value', without control characters")
        return f"malformed HTTP request: {detail}; {rule}"
    return f"malformed HTTP request: {detail}"


class _StatusLine:
    """Stands in for the client socket while gunicorn writes its error page, keeping only
    the status line it chose."""

    def __init__(self) -> None:
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0  # util.write_nonblock then writes at once

    def sendall(self, data: bytes) -> None:
        self.written += data

    def status(self) -> HTTPStatus:
        """The status gunicorn chose, e.g. 414; 500 if it wrote nothing usable."""
        line = self.written.split(b"\r\n", 1)[0].decode("latin-1")  # "HTTP/1.1 414 URI Too Long"
        try:
            return HTTPStatus(int(line.split(" ")[1]))
        except (IndexError, ValueError):
            return HTTPStatus.INTERNAL_SERVER_ERROR
