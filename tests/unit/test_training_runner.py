"""The training runner's reporting: success, ClientError, AlgorithmError, SIGTERM (in-process)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from sagetext import algorithms, training
from sagetext.contract.context import TrainingContext, TrainingStopped
from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.distributed import launch
from sagetext.errors import ClientError


class FakeAlgorithm:
    name = "blazingtext"  # borrows the BlazingText spec for its hyperparameters

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.seen: TrainingContext | None = None

    def validate(self, hyperparameters, channels) -> None:
        pass

    def train(self, ctx: TrainingContext) -> None:
        self.seen = ctx
        if self.behaviour == "client":
            raise ClientError("train.txt line 3: no __label__ token")
        if self.behaviour == "bug":
            raise ZeroDivisionError("division by zero")
        if self.behaviour in ("sigterm", "sigint"):
            os.kill(os.getpid(), signal.SIGTERM if self.behaviour == "sigterm" else signal.SIGINT)
            assert ctx.stop_requested.wait(5)
            raise TrainingStopped()
        (ctx.model_dir / "model.bin").write_bytes(b"ok")

    def load(self, model_dir: Path):
        raise NotImplementedError


@pytest.fixture
def job(opt_ml, monkeypatch):
    opt_ml.hyperparameters({"mode": "supervised"})
    opt_ml.channel("train", {"train.txt": "__label__a hello\n"})
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(opt_ml.root))
    monkeypatch.setenv("SAGETEXT_ALGORITHM", "blazingtext")
    monkeypatch.setenv("SAGETEXT_DEVICE", "cpu")
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield opt_ml
    for signum, handler in previous.items():  # main() restores them; this guards against a failing test
        signal.signal(signum, handler)


def run(monkeypatch, behaviour: str) -> tuple[int, FakeAlgorithm]:
    fake = FakeAlgorithm(behaviour)
    monkeypatch.setattr(algorithms, "get", lambda name: fake)
    return training.main(), fake


def test_success_writes_success_file_and_gives_the_context(job, monkeypatch) -> None:
    code, fake = run(monkeypatch, "ok")
    assert code == 0 and (job.root / "output" / "success").exists()
    assert fake.seen.rank == 0 and fake.seen.world_size == 1 and fake.seen.device == "cpu"
    assert fake.seen.channel("train").mode == "File"
    assert not fake.seen.checkpoints.enabled


def test_a_setting_the_job_ignores_is_logged_as_such(job, monkeypatch, caplog) -> None:
    job.hyperparameters({"mode": "supervised", "window_size": "3"})
    logger = logging.getLogger("sagetext")  # its own stdout handler does not propagate to caplog's
    logger.addHandler(caplog.handler)
    try:
        code, _ = run(monkeypatch, "ok")
    finally:
        logger.removeHandler(caplog.handler)
    assert code == 0
    assert ("Hyperparameter window_size is ignored: used only in mode cbow, skipgram, batch_skipgram "
            "(this job: mode=supervised)") in caplog.text


def test_client_error_and_internal_error_are_told_apart(job, monkeypatch) -> None:
    code, _ = run(monkeypatch, "client")
    assert code == 1
    assert job.failure.read_text() == "ClientError: train.txt line 3: no __label__ token"
    job.failure.unlink()
    code, _ = run(monkeypatch, "bug")
    text = job.failure.read_text()
    assert code == 1 and text.startswith("AlgorithmError: ZeroDivisionError: division by zero")
    assert "Traceback" in text


def test_sigterm_sets_the_stop_flag_and_exits_143(job, monkeypatch) -> None:
    code, _ = run(monkeypatch, "sigterm")
    assert code == training.EXIT_STOPPED
    assert not job.failure.exists()


def test_sigint_stops_like_sigterm_with_exit_130_and_handlers_are_restored(job, monkeypatch) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    code, _ = run(monkeypatch, "sigint")  # no KeyboardInterrupt: the loop is asked to stop
    assert code == training.EXIT_INTERRUPTED == 130
    assert not job.failure.exists()
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_bad_worker_count_is_a_client_error(job, monkeypatch) -> None:
    monkeypatch.setenv("SAGETEXT_CPU_WORKERS", "two")
    code, _ = run(monkeypatch, "ok")
    assert code == 1 and "SAGETEXT_CPU_WORKERS='two'" in job.failure.read_text()


def test_the_environment_settings_reach_the_context(job, monkeypatch) -> None:
    monkeypatch.setenv("SAGETEXT_TRAIN_THREADS", "3")
    monkeypatch.setenv("SAGETEXT_WORD2VEC_ENGINE", "torch")
    code, fake = run(monkeypatch, "ok")
    assert code == 0
    assert fake.seen.settings == Settings(algorithm="blazingtext", device="cpu", train_threads=3,
                                          word2vec_engine="torch")


def test_paths_and_settings_given_by_the_caller_win_over_the_environment(job, monkeypatch) -> None:
    """What ``sagetext train`` does: no environment variable is needed, nor written."""
    for name in ("SAGEMAKER_BASE_DIR", "SAGETEXT_ALGORITHM", "SAGETEXT_DEVICE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("SAGETEXT_CPU_WORKERS", "two")  # not read: the caller's settings are used
    fake = FakeAlgorithm("ok")
    monkeypatch.setattr(algorithms, "get", lambda name: fake if name == "blazingtext" else None)
    given = Settings(algorithm="blazingtext", device="cpu", pipe_wait_seconds=3.0)
    assert training.main(Paths(job.root), given) == 0
    assert fake.seen.settings == given and fake.seen.channel("train").pipe_wait_seconds == 3.0
    assert (job.root / "model" / "model.bin").read_bytes() == b"ok"
    assert "SAGEMAKER_BASE_DIR" not in os.environ and "SAGETEXT_ALGORITHM" not in os.environ


def test_launched_workers_get_the_root_and_settings_on_their_command_line(job, monkeypatch) -> None:
    """The launcher runs ``python -m sagetext.training ROOT SETTINGS``; a worker reads nothing else."""
    for name in ("SAGEMAKER_BASE_DIR", "SAGETEXT_ALGORITHM", "SAGETEXT_DEVICE"):
        monkeypatch.delenv(name)
    commands = []
    monkeypatch.setattr(launch, "launch", lambda cluster, nproc, command, job_id, port: commands.append(
        (nproc, command, job_id, port)))
    given = Settings(algorithm="blazingtext", device="cpu", cpu_workers=2, master_port=29601, job_name="j1")
    assert training.main(Paths(job.root), given) == 0
    (nproc, command, job_id, port), = commands
    assert (nproc, job_id, port) == (2, "j1", 29601)
    assert command[1:4] == ["-m", "sagetext.training", str(job.root)]
    assert Settings.from_json(command[4]) == given

    fake = FakeAlgorithm("ok")
    monkeypatch.setattr(algorithms, "get", lambda name: fake if name == "blazingtext" else None)
    assert training.worker_main(command[3:]) == 0
    assert fake.seen.settings == given and fake.seen.device == "cpu" and fake.seen.world_size == 1
    assert training.worker_main([]) == 1
