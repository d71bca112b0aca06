"""Fixtures for the image tests: a working podman (or docker), and the images, built once
per session with docker/build.sh --local (the same build as ``make image-test``).

These tests are opt-in, because a cold build takes minutes: they run under
``make image-test``, ``pytest -m container`` or with SAGETEXT_IMAGE_TEST=1, and are skipped
with a reason otherwise, or when no container engine can run a container here.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from tests.conftest import REPO

ALGORITHMS = ("blazingtext", "seq2seq", "ntm")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds and runs the images (podman); opt-in")


@dataclass(frozen=True)
class Engine:
    cli: str
    run_args: tuple[str, ...]  # put after `run` in every container run

    def run(self, *args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
        command = [self.cli, *args]
        if args and args[0] == "run":
            command = [self.cli, "run", *self.run_args, *args[1:]]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)


def _run_args(cli: str) -> tuple[str, ...]:
    """SAGETEXT_CONTAINER_RUN_ARGS, or for podman: runc when present, and the file and
    process limits this host has (podman otherwise asks for the maximum, which a sandbox
    without CAP_SYS_RESOURCE refuses: 'error setting rlimit ... operation not permitted')."""
    if "SAGETEXT_CONTAINER_RUN_ARGS" in os.environ:
        return tuple(os.environ["SAGETEXT_CONTAINER_RUN_ARGS"].split())
    if os.path.basename(cli) != "podman":
        return ()
    args = ["--runtime", "runc"] if shutil.which("runc") else []
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    if nofile != resource.RLIM_INFINITY:
        args += ["--ulimit", f"nofile={nofile}:{nofile}"]
    return (*args, "--ulimit", f"nproc={nproc}:{nproc}")


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Engine:
    wanted = "container" in (request.config.getoption("markexpr") or "") or os.environ.get("SAGETEXT_IMAGE_TEST")
    if not wanted:
        pytest.skip("image tests are opt-in: make image-test, pytest -m container or SAGETEXT_IMAGE_TEST=1")
    cli = shutil.which(os.environ.get("CONTAINER", "podman"))
    if cli is None:
        pytest.skip(f"{os.environ.get('CONTAINER', 'podman')} not found (apt-get install podman)")
    info = subprocess.run([cli, "info"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.skip(f"{cli} cannot run containers here: {info.stderr.strip()[-300:]}")
    return Engine(cli, _run_args(cli))


@pytest.fixture(scope="session")
def images(engine: Engine) -> dict[str, str]:
    """algorithm -> image name, from one run of docker/build.sh --local."""
    env = {**os.environ, "CONTAINER": engine.cli}
    build = subprocess.run([str(REPO / "docker" / "build.sh"), "--local"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=3600)
    if build.returncode != 0:
        pytest.fail(f"docker/build.sh --local failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
    built = {line.split(":")[0].rsplit("sagetext-", 1)[-1]: line
             for line in build.stdout.splitlines() if line.count(":") == 1 and "sagetext-" in line}
    probe = engine.run("run", "--rm", built["blazingtext"], "true", timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"{engine.cli} built the images but cannot run a container: {probe.stderr.strip()[-300:]}")
    return built
