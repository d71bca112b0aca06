"""Batch transform with what ``/execution-parameters`` advertises: the real ``serve`` executable
(gunicorn, its default workers and timeout) answers every mini-batch SageMaker's agent would send
(``transform_agent``) for each algorithm, every line in order.

BlazingText (supervised) and NTM advertise ``MULTI_RECORD`` mini-batches of 1 MB, which even the
smallest records cannot fill past the instance cap; Seq2Seq advertises ``SINGLE_RECORD``, since
1 MB of sentences is minutes of beam search on a CPU core. Models: a supervised model trained
here on the bundled sample, and the committed tiny Seq2Seq and NTM models.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sagetext import algorithms
from sagetext.data.media_types import CSV, JSONLINES
from sagetext.serving import codecs
from sagetext.serving.settings import ServerSettings
from tests.conftest import REPO
from tests.serving.conftest import Server, free_port, server_env
from tests.serving.transform_agent import MIB, transform

FIXTURES = REPO / "tests" / "fixtures"
SAMPLE = REPO / "samples" / "blazingtext"
SPEC_NAME = {"supervised": "blazingtext", "seq2seq": "seq2seq", "ntm": "ntm"}
NTM_DIM = 12  # the committed tiny NTM model's feature_dim
TIMEOUT = ServerSettings.from_env({}).timeout  # the worker timeout the server runs with
LINES = 10_000


def lay_out_model(algorithm: str, root: Path) -> None:
    """``root/model``: what SageMaker extracts from model.tar.gz before ``serve`` starts."""
    if algorithm == "supervised":
        from tests.unit.test_blazingtext_supervised import ALGORITHM, context

        ALGORITHM.train(context(root, {"train": SAMPLE / "train.txt"}))
    else:
        shutil.copytree(FIXTURES / f"{algorithm}_tiny" / "model", root / "model")


def start_server(algorithm: str, root: Path) -> Server:
    """The image's ``serve`` on a free port, with SageMaker's batch-transform environment: none of
    the transform settings set, so /execution-parameters decides them."""
    port = free_port()
    env = {k: v for k, v in server_env({}).items() if not k.startswith("SAGETEXT_")}
    env.update({"SAGEMAKER_BASE_DIR": str(root), "SAGETEXT_ALGORITHM": SPEC_NAME[algorithm],
                "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_BATCH": "true", "SAGETEXT_DEVICE": "cpu"})
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "serve")], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=root)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    server.wait_ready(timeout=180)
    return server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], tuple[Server, Path]]]:
    """``served(algorithm)``: its running server and model folder, started once per module."""
    running: dict[str, tuple[Server, Path]] = {}

    def get(algorithm: str) -> tuple[Server, Path]:
        if algorithm not in running:
            root = tmp_path_factory.mktemp(f"transform-{algorithm}")
            lay_out_model(algorithm, root)
            running[algorithm] = (start_server(algorithm, root), root / "model")
        return running[algorithm]

    yield get
    for server, _ in running.values():
        server.stop()


def input_file(algorithm: str, count: int = LINES) -> bytes:
    """A JSON Lines input file of ``count`` varied records (about 1.2-1.5 MB for the MULTI_RECORD
    algorithms, so that the job takes more than one mini-batch)."""
    rng = random.Random(11)
    records: list[dict[str, Any]] = []
    if algorithm == "supervised":
        sentences = [line.split(" ", 1)[1] for name in ("train.txt", "validation.txt")
                     for line in (SAMPLE / name).read_text("utf-8").splitlines()]
        records = [{"source": f"{rng.choice(sentences)} {rng.choice(sentences)}", "k": 1 + i % 3}
                   for i in range(count)]
    elif algorithm == "seq2seq":
        records = [{"source": " ".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 8)))}
                   for _ in range(count)]
    else:
        for i in range(count):
            counts = [float(rng.randrange(4)) for _ in range(NTM_DIM)]
            keys = [k for k, c in enumerate(counts) if c]
            records.append({"features": counts} if i % 3 == 0 else
                           {"data": {"features": {"keys": keys, "shape": [NTM_DIM],
                                                  "values": [counts[k] for k in keys]}}})
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def assert_close(ours: Any, expected: Any, where: str) -> None:
    """Equal, floats up to rounding (a line scored in another batch may differ in its last bits)."""
    if isinstance(expected, float):
        assert math.isclose(ours, expected, rel_tol=1e-4, abs_tol=1e-6), f"{where}: {ours} != {expected}"
    elif isinstance(expected, list):
        assert isinstance(ours, list) and len(ours) == len(expected), f"{where}: {ours} != {expected}"
        for i, (a, b) in enumerate(zip(ours, expected)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(ours, dict) and ours.keys() == expected.keys(), f"{where}: {ours} != {expected}"
        for key in expected:
            assert_close(ours[key], expected[key], f"{where}.{key}")
    else:
        assert ours == expected, f"{where}: {ours!r} != {expected!r}"


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(SPEC_NAME))
def test_a_transform_job_with_the_advertised_parameters_answers_every_line_in_order(
        served: Callable[[str], tuple[Server, Path]], algorithm: str) -> None:
    server, model_dir = served(algorithm)
    data = input_file(algorithm)
    done = transform(server.url, data, JSONLINES, JSONLINES, timeout=TIMEOUT + 30)
    workers = ServerSettings.from_env({}).workers
    if algorithm == "seq2seq":
        assert done.parameters == {"MaxConcurrentTransforms": workers, "BatchStrategy": "SINGLE_RECORD",
                                   "MaxPayloadInMB": 1}
        assert done.batch_sizes == [1] * LINES
    else:
        assert done.parameters == {"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD",
                                   "MaxPayloadInMB": 1}
        assert len(done.batch_sizes) >= 2 and sum(done.batch_sizes) == LINES
    assert done.slowest < TIMEOUT
    # The same answers, in the same order, as the model gives in-process to the whole file.
    predictor = algorithms.get(SPEC_NAME[algorithm]).load(model_dir)
    expected = codecs.encode(JSONLINES, predictor.predict(codecs.decode(JSONLINES, data), JSONLINES,
                                                          JSONLINES)).splitlines()
    assert len(done.lines) == len(expected) == LINES
    for number, (ours, theirs) in enumerate(zip(done.lines, expected), start=1):
        assert_close(json.loads(ours), json.loads(theirs), f"line {number}")


# The smallest record each MULTI_RECORD algorithm takes in a line-split format: 1 MB of them is the
# most instances an advertised mini-batch can hold.
SMALLEST = {"supervised": (JSONLINES, b'{"source":""}\n'), "ntm": (CSV, b"0,0,0,0,0,0,0,0,0,0,0,0\n")}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(SMALLEST))
def test_full_mini_batches_of_the_smallest_records_are_answered_within_the_timeout(
        served: Callable[[str], tuple[Server, Path]], algorithm: str) -> None:
    server, _ = served(algorithm)
    content_type, record = SMALLEST[algorithm]
    per_batch = MIB // len(record)
    assert per_batch <= ServerSettings.from_env({}, algorithm=SPEC_NAME[algorithm]).max_instances_per_request
    done = transform(server.url, record * (2 * per_batch + 100), content_type, JSONLINES, timeout=TIMEOUT + 30)
    assert done.batch_sizes == [per_batch, per_batch, 100]
    assert done.slowest < TIMEOUT
    assert len(set(done.lines)) == 1  # the same record, the same answer
