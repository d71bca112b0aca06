"""Start the real server (gunicorn in a subprocess, on a free loopback port) for HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).parent
START_TIMEOUT = 60.0


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def ping(self) -> int:
        return requests.get(f"{self.url}/ping", timeout=5).status_code

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll /ping until it answers 200; fail with the server's log if it exits or stalls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.ping() == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # a worker still loading: busy machine
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (gunicorn's graceful stop); SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env.update(overrides)
    return env


def launch(model_dir: Path, log_path: Path, env: Mapping[str, str]) -> Server:
    """Start echo_server.py; returns at once (see ``wait_ready``)."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), str(model_dir)],
        env=server_env({"SAGEMAKER_BIND_TO_PORT": str(port), **env}),
        stdout=log, stderr=subprocess.STDOUT, cwd=HERE)
    log.close()
    return Server(f"http://127.0.0.1:{port}", process, log_path)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    (path / "greeting.txt").write_text("hello from the model dir\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers, a 0.01 MB (10485-byte) payload limit, at most 50 instances per request."""
    root = tmp_path_factory.mktemp("server")
    model = root / "model"
    model.mkdir()
    (model / "greeting.txt").write_text("hello from the model dir\n", "utf-8")
    started = launch(model, root / "server.log", {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
        "SAGETEXT_MAX_INSTANCES_PER_REQUEST": "50",
    })
    started.wait_ready()
    yield started
    started.stop()


@pytest.fixture
def launch_server(tmp_path: Path) -> Iterator[Callable[[Path, Mapping[str, str]], Server]]:
    """Start echo_server.py with extra environment (not waiting for it); stopped at teardown."""
    started: list[Server] = []

    def start(model: Path, env: Mapping[str, str]) -> Server:
        started.append(launch(model, tmp_path / f"server{len(started)}.log", env))
        return started[-1]

    yield start
    for one in started:
        one.stop()
