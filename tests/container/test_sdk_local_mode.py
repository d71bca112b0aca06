"""The BlazingText image driven by the SageMaker Python SDK's local mode
(``instance_type="local"``) against podman: ``Estimator.fit`` trains on the sample corpus
with ``file://`` channels, ``estimator.deploy(1, "local")`` serves the model, and one
``predictor.predict`` with an ``application/json`` body answers with a label of the sample.

This is what a user of the SDK sees; ``test_images.py`` runs the same image with plain
``podman run``. Nothing is built here: the test uses ``localhost/sagetext-blazingtext:<version>``
as ``make image-test`` (docker/build.sh --local) leaves it, and is skipped when it is absent.

Opt-in like the other image tests (``pytest -m container`` or SAGETEXT_IMAGE_TEST=1), and it
needs, besides podman: docker-compose (``apt-get install docker-compose``), the docker CLI and
the SDK, version 2 (``sagemaker<3``). The SDK is not a dependency of the project; install it
into a separate virtual environment and run this module from it, in the repository root::

    python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install "sagemaker<3" pytest
    SAGETEXT_IMAGE_TEST=1 /tmp/sdkvenv/bin/python -m pytest -q tests/container/test_sdk_local_mode.py

The test starts its own ``podman system service`` on a socket in a temporary folder, with a
containers.conf that sets runc and the host's file and process limits (compose cannot pass
``--runtime`` or ``--ulimit``), points DOCKER_HOST at it, and at the end removes the
containers the SDK left, the ``sagemaker-local`` network if it created it, and stops the service.
See docs/sagemaker.md section 9.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib

from tests.conftest import REPO
from tests.container.conftest import Engine

pytestmark = [pytest.mark.slow, pytest.mark.container]

SAMPLE = REPO / "samples" / "blazingtext"
SDK_INSTALL = 'python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install "sagemaker<3" pytest'
NETWORK = "sagemaker-local"  # the network the SDK's compose files put every container on
HYPERPARAMETERS = {"mode": "supervised", "epochs": 5, "min_count": 1, "vector_dim": 16, "buckets": 10000}
# Opt out of the SDK's telemetry call to AWS (it cannot reach AWS here, and only logs that).
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@dataclass(frozen=True)
class LocalMode:
    """A running podman Docker-API service, and where the SDK keeps its compose projects."""

    image: str
    socket: Path
    container_root: Path
    serving_port: int


def _image() -> str:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return f"localhost/sagetext-blazingtext:{version}"


def _require_tools(engine: Engine, image: str) -> None:
    """Skip, naming what is missing, unless podman, compose, the docker CLI, sagemaker<3 and
    the image are all here."""
    if os.path.basename(engine.cli) != "podman":
        pytest.skip(f"the SDK local-mode test drives podman's Docker API; the engine is {engine.cli}")
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not found: the SDK calls `docker` (here against podman's socket)")
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not found (apt-get install docker-compose): SDK local mode runs it")
    try:
        version = importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"the sagemaker package (<3) is not installed for {sys.executable}: {SDK_INSTALL}")
    if int(version.split(".")[0]) >= 3:
        pytest.skip(f"sagemaker {version} installed; this test drives the 2.x API (sagemaker<3)")
    if engine.run("image", "exists", image).returncode != 0:
        pytest.skip(f"image {image} not found: build it with make image-test (docker/build.sh --local)")


def _default_ulimits() -> list[str]:
    """nofile and nproc at this host's hard limits. podman asks runc for the maximum otherwise,
    which a sandbox without CAP_SYS_RESOURCE refuses ('error setting rlimit type 7 / 6').
    nproc is also capped at kernel.pid_max: the podman service runs with that nproc limit
    (seen here: 32768 under a shell with 96365), and runc cannot go above it."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    limits = [f"nproc={nproc}:{nproc}"]
    if nofile != resource.RLIM_INFINITY:
        limits.append(f"nofile={nofile}:{nofile}")
    return limits


def _containers_conf(path: Path) -> Path:
    ulimits = ", ".join(json.dumps(limit) for limit in _default_ulimits())
    runtime = '[engine]\nruntime = "runc"\n' if shutil.which("runc") else ""
    path.write_text(f"[containers]\ndefault_ulimits = [{ulimits}]\n{runtime}")
    return path


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"podman system service exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as client:
                if client.connect_ex(str(path)) == 0:
                    return
        time.sleep(0.2)
    pytest.fail(f"podman system service did not open {path} in {timeout} s:\n{log.read_text()[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _network_exists(engine: Engine) -> bool:
    return engine.run("network", "exists", NETWORK).returncode == 0


def _remove_containers(engine: Engine, container_root: Path) -> None:
    """Remove the containers of the compose projects under container_root (the SDK's compose
    `up` leaves them, exited)."""
    listing = engine.run("ps", "-a", "--format", "json")
    ids = [container["Id"] for container in json.loads(listing.stdout or "[]")
           if (container.get("Labels") or {}).get("com.docker.compose.project.working_dir", "")
           .startswith(f"{container_root}/")]
    if ids:
        engine.run("rm", "-f", *ids, timeout=120)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture
def local_mode(engine: Engine, tmp_path_factory: pytest.TempPathFactory,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalMode]:
    """A podman Docker-API service for the SDK, with DOCKER_HOST and fake AWS credentials set;
    on teardown: the SDK's containers removed, its network if new, the service stopped."""
    image = _image()
    _require_tools(engine, image)
    folder = tmp_path_factory.mktemp("podman")  # short: a unix socket path has at most 107 bytes
    sock, log = folder / "podman.sock", folder / "service.log"
    container_root = tmp_path_factory.mktemp("sdk-local")
    network_existed = _network_exists(engine)
    env = {**os.environ, "CONTAINERS_CONF": str(_containers_conf(folder / "containers.conf"))}
    with log.open("wb") as out:
        process = subprocess.Popen([engine.cli, "system", "service", "--time=0", f"unix://{sock}"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_socket(sock, process, log)
        for name, value in {"DOCKER_HOST": f"unix://{sock}", "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                            "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        yield LocalMode(image, sock, container_root, _free_port())
    finally:
        _remove_containers(engine, container_root)
        if not network_existed:
            engine.run("network", "rm", NETWORK)
        _stop(process)


def _session(mode: LocalMode) -> Any:
    from sagemaker.local import LocalSession

    session = LocalSession(sagemaker_config=SDK_CONFIG)
    session.config = {"local": {"local_code": True, "serving_port": mode.serving_port,
                                "container_root": str(mode.container_root)}}
    return session


def _channels(root: Path) -> dict[str, str]:
    """train and validation channels, one folder each with the sample file, as file:// URIs."""
    channels = {}
    for name in ("train", "validation"):
        folder = root / name
        folder.mkdir()
        shutil.copy(SAMPLE / f"{name}.txt", folder / f"{name}.txt")
        channels[name] = f"file://{folder}"
    return channels


def _sample_labels() -> set[str]:
    return {line.split()[0] for line in (SAMPLE / "train.txt").read_text().splitlines() if line.strip()}


def _archive(path: Path) -> dict[str, bytes]:
    """name -> content of the files in a .tar.gz the SDK wrote (model.tar.gz, output.tar.gz)."""
    with tarfile.open(path) as archive:
        return {member.name.removeprefix("./"): archive.extractfile(member).read()  # type: ignore[union-attr]
                for member in archive.getmembers() if member.isfile()}


def test_sdk_local_mode_trains_deploys_and_predicts(local_mode: LocalMode, tmp_path: Path) -> None:
    """fit in local mode writes model.tar.gz with model.bin; deploy(1, "local") serves it and
    one JSON request comes back with a label of the sample's label set."""
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.estimator import Estimator
    from sagemaker.serializers import JSONSerializer

    session = _session(local_mode)
    estimator = Estimator(image_uri=local_mode.image, role="arn:aws:iam::123456789012:role/sagetext",
                          instance_count=1, instance_type="local", output_path=f"file://{tmp_path / 'output'}",
                          hyperparameters=HYPERPARAMETERS, sagemaker_session=session)
    estimator.fit(_channels(tmp_path), wait=True, logs=True)

    assert estimator.model_data == f"file://{tmp_path / 'output' / 'model.tar.gz'}"
    # Local mode reports Completed even when `train` fails (fit does not raise; seen with a
    # ClientError for a bad hyperparameter), so the job's own verdict is read from
    # /opt/ml/output/{success,failure}, which the SDK packs into output.tar.gz.
    job_output = _archive(tmp_path / "output" / "output.tar.gz")
    assert "failure" not in job_output, job_output["failure"].decode()
    assert "success" in job_output
    assert estimator.latest_training_job.describe()["TrainingJobStatus"] == "Completed"
    assert len(_archive(tmp_path / "output" / "model.tar.gz").get("model.bin", b"")) > 0

    endpoint = f"sagetext-blazingtext-local-{local_mode.serving_port}"
    predictor = None
    try:
        # In local mode deploy returns once /ping answers 200; wait=True would only add the
        # SDK's first 30 s poll of describe_endpoint.
        predictor = estimator.deploy(1, "local", endpoint_name=endpoint, wait=False,
                                     serializer=JSONSerializer(), deserializer=JSONDeserializer())
        assert session.sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
        answer = predictor.predict({"instances": ["the pastry chef grilled a rich tomato sauce ."]})
    finally:
        if predictor is not None:
            predictor.delete_endpoint()
        else:  # deploy failed after the serving container was started
            session.sagemaker_client.delete_endpoint(EndpointName=endpoint)

    predictions = answer["predictions"] if isinstance(answer, dict) else answer
    assert len(predictions) == 1, answer
    assert len(predictions[0]["label"]) == 1 and predictions[0]["label"][0] in _sample_labels(), answer
    assert 0 <= predictions[0]["prob"][0] <= 1.0001, answer
