"""Data-parallel training through the real ``train`` executable: 2 CPU workers (gloo) on one
host, and 2 simulated hosts on loopback, each with its own /opt/ml and resourceconfig.json."""

from __future__ import annotations

import io
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


def start(opt_ml: FakeOptMl, algorithm: str = "blazingtext", **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(opt_ml.root), "SAGETEXT_ALGORITHM": algorithm,
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
def one_worker_log(tmp_path_factory: pytest.TempPathFactory, imdb_slice: dict[str, Path]) -> str:
    opt_ml = prepare(tmp_path_factory.mktemp("one") / "opt_ml", imdb_slice)
    return finish(start(opt_ml))


@pytest.fixture(scope="module")
def one_worker(one_worker_log: str) -> float:
    return accuracy(one_worker_log)


def test_two_cpu_workers_match_one(tmp_path: Path, imdb_slice: dict[str, Path], one_worker: float) -> None:
    opt_ml = prepare(tmp_path / "opt_ml", imdb_slice)
    output = finish(start(opt_ml, SAGETEXT_CPU_WORKERS="2"))
    assert "Launching 2 worker(s)" in output
    assert (opt_ml.model / "model.bin").exists()
    assert one_worker > 0.75
    assert accuracy(output) == pytest.approx(one_worker, abs=0.03)


def start_hosts(roots: list[FakeOptMl], algorithm: str = "blazingtext") -> list[str]:
    """Start one ``train`` per simulated host (127.0.0.1, 127.0.0.2, ...) and wait for all."""
    hosts = [f"127.0.0.{i + 1}" for i in range(len(roots))]
    port = str(free_port())
    processes = []
    for host, opt_ml in zip(hosts, roots):
        opt_ml.resources(hosts, host, interface="lo")
        processes.append(start(opt_ml, algorithm, SAGETEXT_MASTER_PORT=port, OMP_NUM_THREADS="1"))
    return [finish(p) for p in processes]


def words_read(output: str) -> int:
    """The corpus size of the job's merged dictionary (every worker's lines together)."""
    return int(re.search(r"Read (\d+) words; number of words", output).group(1))


def test_two_hosts_on_loopback_match_one(tmp_path: Path, imdb_slice: dict[str, Path], one_worker: float) -> None:
    roots = [prepare(tmp_path / host / "opt_ml", imdb_slice) for host in ("one", "two")]
    outputs = start_hosts(roots)
    assert (roots[0].model / "model.bin").exists()
    assert list(roots[1].model.iterdir()) == []  # only rank 0 writes the model
    assert accuracy(outputs[0]) == pytest.approx(one_worker, abs=0.03)
    assert "#validation_accuracy" not in outputs[1]


def test_a_sharded_train_channel_is_read_whole_across_two_hosts(tmp_path: Path, imdb_slice: dict[str, Path],
                                                                one_worker_log: str) -> None:
    """S3DistributionType=ShardedByS3Key: SageMaker gives each host its own objects (here 60 % and
    40 % of the lines), and the job must read every line once, not each host half of its own."""
    lines = imdb_slice["train"].read_text().splitlines(keepends=True)
    cut = len(lines) * 3 // 5
    roots = []
    for name, part in (("a", lines[:cut]), ("b", lines[cut:])):
        opt_ml = FakeOptMl(tmp_path / name / "opt_ml")
        opt_ml.hyperparameters(HYPERPARAMETERS)
        opt_ml.channel("train", {f"part-{name}.txt": "".join(part)}, distribution="ShardedByS3Key")
        opt_ml.channel("validation", {"test.txt": imdb_slice["test"].read_text()})
        roots.append(opt_ml)
    outputs = start_hosts(roots)
    assert words_read(outputs[0]) == words_read(outputs[1]) == words_read(one_worker_log)
    assert accuracy(outputs[0]) == pytest.approx(accuracy(one_worker_log), abs=0.03)


def test_ntm_hosts_read_every_document_of_their_sharded_objects(tmp_path: Path, shared_data: Path) -> None:
    """The SageMaker SDK's ``NTM.record_set`` uploads ``train`` as ShardedByS3Key."""
    from tests.contract.test_ntm_train import GOOD, NEWS, ldac_slice, recordio_file

    recordio = "application/x-recordio-protobuf"
    train = ldac_slice(shared_data / NEWS / "train.feat.gz", 0, 500)
    validation = recordio_file(ldac_slice(shared_data / NEWS / "train.feat.gz", 500, 100))
    roots = []
    for name, part in (("a", train[:300]), ("b", train[300:])):
        opt_ml = FakeOptMl(tmp_path / name / "opt_ml")
        opt_ml.hyperparameters({**GOOD, "epochs": "2"})
        opt_ml.channel("train", {f"part-{name}.rec": recordio_file(part)}, distribution="ShardedByS3Key",
                       content_type=recordio)
        opt_ml.channel("validation", {"validation.rec": validation}, content_type=recordio)
        roots.append(opt_ml)
    outputs = start_hosts(roots, "ntm")
    assert "Read 300 train documents" in outputs[0] and "Read 200 train documents" in outputs[1]
    assert len(re.findall(r"#validation:total_loss: ", outputs[0])) == 2
    assert (roots[0].model / "model.pt").exists()


def test_seq2seq_hosts_with_unequal_sharded_objects_train_in_step(tmp_path: Path) -> None:
    """Hosts holding 400 and 200 pairs take the same number of steps an epoch (the fewest), so
    that neither waits forever for the other; each trains on its own pairs."""
    from sagetext.data import recordio
    from tests.contract.test_seq2seq_train import TINY
    from tests.unit.test_seq2seq import write_corpus

    prepared = write_corpus(tmp_path / "corpus", train=600, validation=40)
    with prepared["train.rec"].open("rb") as stream:
        records = list(recordio.read_payloads(stream))
    roots = []
    for name, part in (("a", records[:400]), ("b", records[400:])):
        buffer = io.BytesIO()
        for payload in part:
            recordio.write_payload(buffer, payload)
        opt_ml = FakeOptMl(tmp_path / name / "opt_ml")
        opt_ml.hyperparameters({**TINY, "max_num_epochs": "3", "checkpoint_frequency_num_batches": "5"})
        opt_ml.channel("train", {f"part-{name}.rec": buffer.getvalue()}, distribution="ShardedByS3Key")
        opt_ml.channel("validation", {"val.rec": prepared["val.rec"].read_bytes()})
        opt_ml.channel("vocab", {"vocab.src.json": prepared["vocab.src.json"].read_bytes(),
                                 "vocab.trg.json": prepared["vocab.trg.json"].read_bytes()})
        roots.append(opt_ml)
    outputs = start_hosts(roots, "seq2seq")
    plans = [re.search(r"(\d+) training pairs in \d+ buckets, (\d+) batches an epoch for each of 2 workers", out)
             for out in outputs]
    assert [int(plan.group(1)) for plan in plans] == [400, 200]
    assert plans[0].group(2) == plans[1].group(2)
    assert re.search(r"Training finished after (\d+) updates, 3 epochs", outputs[0])
    assert (roots[0].model / "model.pt").exists()
