"""Run the inference server: real gunicorn, started from this process, with sync workers.

``serve(algorithm, model_dir)`` is where ``docker run IMAGE serve`` ends up: it binds
``0.0.0.0:$SAGEMAKER_BIND_TO_PORT`` (8080) and runs ``$SAGEMAKER_MODEL_SERVER_WORKERS``
workers (one per CPU by default). ``serve_app(app_factory, settings)`` runs any app the same
way; tests use it (through ``serve``) with a stand-in predictor.

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
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS

from sagetext.contract.metrics import configure_logging
from sagetext.errors import ClientError
from sagetext.serving.settings import ServerSettings

log = logging.getLogger("sagetext.serving")

# SageMaker sends SIGKILL 30 s after SIGTERM; stop waiting for requests well before that.
GRACEFUL_TIMEOUT = 20

_GUNICORN_SETTINGS = {setting.name for setting in KNOWN_SETTINGS}

AppFactory = Callable[[], Callable[..., Any]]  # returns a WSGI application


def serve(algorithm_name: str, model_dir: Path, port: int | None = None) -> None:
    """Serve ``algorithm_name``'s model from ``model_dir`` until SIGTERM. Settings come from
    the environment; ``port`` overrides ``SAGEMAKER_BIND_TO_PORT``."""
    from sagetext.algorithms import check  # no torch import: safe in the master

    check(algorithm_name)
    settings = ServerSettings.from_env()
    if port is not None:
        settings = replace(settings, port=port)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ClientError(f"model directory {str(model_dir)!r} does not exist; SageMaker "
                          "extracts model.tar.gz there before the container starts")
    factory = functools.partial(_load_app, algorithm_name, model_dir, settings)
    serve_app(factory, settings)


def serve_app(app_factory: AppFactory, settings: ServerSettings) -> None:
    """Run gunicorn with ``settings``; each worker calls ``app_factory()`` once after it
    starts. Returns after a graceful stop; exits non-zero if a worker cannot load the app."""
    configure_logging()
    log.info("starting gunicorn on port %d: %d sync worker(s), timeout %d s, max payload %g MB",
             settings.port, settings.workers, settings.timeout, settings.max_payload_mb)
    _Gunicorn(app_factory, gunicorn_options(settings)).run()


def gunicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """gunicorn's settings for ours."""
    options: dict[str, Any] = {
        "bind": f"0.0.0.0:{settings.port}",
        "workers": settings.workers,
        "worker_class": "sync",
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
    model, build the app. An unknown algorithm or a model that fails to load stops the
    worker, and gunicorn then stops the server with a non-zero exit status."""
    # Imported here, not at the top: the algorithms import torch, and the master must not.
    from sagetext import algorithms
    from sagetext.serving.app import create_app

    if settings.workers > 1:
        import torch

        torch.set_num_threads(1)
    predictor = algorithms.get(algorithm_name).load(model_dir)
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
