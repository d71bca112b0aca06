"""Data-parallel training through the real ``train`` executable: 2 CPU workers (gloo) on one
host, and 2 simulated hosts on loopback, each with its own /opt/ml and resourceconfig.json."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, FakeOptMl

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"mode": "supervised", "epochs": "5", "learning_rate": "0.5", "min_count": "1",
                   "vector_dim": "10", "word_ngrams": "2", "buckets": "200000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(root: Path, imdb: dict[str, Path]) -> FakeOptMl:
    opt_ml = FakeOptMl(root)
    opt_ml.hyperparameters(HYPERPARAMETERS)
    opt_ml.channel("train", {"train.txt": imdb["train"].read_text()})
    opt_ml.channel("validation", {"test.txt": imdb["test"].read_text()})
    return opt_ml


def start(opt_ml: FakeOptMl, **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(opt_ml.root), "SAGETEXT_ALGORITHM": "blazingtext",
                "SAGETEXT_DEVICE": "cpu", **env}
    return subprocess.Popen([sys.executable, str(REPO / "train")], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    return output


def accuracy(output: str) -> float:
    found = re.findall(r"#validation_accuracy: ([0-9.]+)", output)
    assert len(found) == 1, output  # rank 0 alone prints metrics
    return float(found[0])


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory, imdb_slice: dict[str, Path]) -> float:
    opt_ml = prepare(tmp_path_factory.mktemp("one") / "opt_ml", imdb_slice)
    return accuracy(finish(start(opt_ml)))


def test_two_cpu_workers_match_one(tmp_path: Path, imdb_slice: dict[str, Path], one_worker: float) -> None:
    opt_ml = prepare(tmp_path / "opt_ml", imdb_slice)
    output = finish(start(opt_ml, SAGETEXT_CPU_WORKERS="2"))
    assert "Launching 2 worker(s)" in output
    assert (opt_ml.model / "model.bin").exists()
    assert one_worker > 0.75
    assert accuracy(output) == pytest.approx(one_worker, abs=0.03)


def test_two_hosts_on_loopback_match_one(tmp_path: Path, imdb_slice: dict[str, Path], one_worker: float) -> None:
    hosts = ["127.0.0.1", "127.0.0.2"]
    port = str(free_port())
    processes, roots = [], []
    for host in hosts:
        opt_ml = prepare(tmp_path / host / "opt_ml", imdb_slice)
        opt_ml.resources(hosts, host, interface="lo")
        roots.append(opt_ml)
        processes.append(start(opt_ml, SAGETEXT_MASTER_PORT=port))
    outputs = [finish(p) for p in processes]
    assert (roots[0].model / "model.bin").exists()
    assert list(roots[1].model.iterdir()) == []  # only rank 0 writes the model
    assert accuracy(outputs[0]) == pytest.approx(one_worker, abs=0.03)
    assert "#validation_accuracy" not in outputs[1]
