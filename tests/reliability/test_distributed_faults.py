"""Training faults with two CPU workers: BlazingText supervised on an IMDB slice
and NTM, through the real ``train`` executable and torch's launcher.

The whole job SIGKILLed as a container is (the launcher's process group and the workers, which
torch's launcher starts in sessions of their own) resumes from rank 0's checkpoint and matches
an uninterrupted two-worker run; SIGTERM to the launcher stops both workers together, saves a
checkpoint, exits 143 and leaves no process behind. Helpers: ``faults.py``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FakeOptMl
from tests.reliability.conftest import DEFAULT_HP, Reference, lay_out, ntm_rows
from tests.reliability.faults import (
    RESUMED,
    SEED,
    Watched,
    as_good,
    load_checkpoint,
    model_state,
    quality,
    resume_point,
    run_job,
)

pytestmark = pytest.mark.slow

TWO_WORKERS = {"SAGETEXT_CPU_WORKERS": "2"}
TWO_WORKER_HP = {
    "supervised": {"mode": "supervised", "epochs": "10", "learning_rate": "0.5", "min_count": "1", "vector_dim": "10",
                   "word_ngrams": "2", "buckets": "200000"},
    "ntm": {**DEFAULT_HP["ntm"], "epochs": "10", "num_patience_epochs": "50", "mini_batch_size": "64"},
}
TWO_WORKER_ACCURACY_SLACK = 0.02  # IMDB validation accuracy (about 0.8): the restart may lose at most this
MODEL_WRITTEN = {"supervised": "model.bin (", "ntm": "Wrote "}  # rank 0's line on writing the model




def two_worker_job(tmp_path: Path, algorithm: str, imdb: dict[str, Path] | None) -> FakeOptMl:
    """BlazingText supervised on the IMDB slice, or NTM on its two-topic rows; checkpoints on.

    NTM's rows are shuffled: in ``ntm_rows`` the topics alternate, and record i goes to worker
    i % 2, so each worker would see one topic only (and its BatchNorm statistics with it)."""
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    if algorithm == "supervised":
        assert imdb is not None
        opt_ml.hyperparameters(TWO_WORKER_HP[algorithm])
        opt_ml.channel("train", {"train.txt": imdb["train"].read_bytes()})
        opt_ml.channel("validation", {"test.txt": imdb["test"].read_bytes()})
    else:
        lay_out(algorithm, opt_ml, TWO_WORKER_HP[algorithm], tmp_path)
        rows = ntm_rows(1600).splitlines()
        random.Random(0).shuffle(rows)
        (opt_ml.root / "input" / "data" / "train" / "train.csv").write_text("\n".join(rows) + "\n")
    opt_ml.checkpoints(tmp_path / "checkpoints")
    return opt_ml


@pytest.fixture(params=[pytest.param("supervised", marks=pytest.mark.data), "ntm"])
def two_worker_algorithm(request: pytest.FixtureRequest) -> tuple[str, dict[str, Path] | None]:
    """The algorithm and, for BlazingText supervised, the IMDB slice (skipped without shared data)."""
    algorithm: str = request.param
    return algorithm, request.getfixturevalue("imdb_slice") if algorithm == "supervised" else None


def kill_job(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """SIGKILL the launcher's process group and every process under it (the workers have
    sessions of their own), as the end of a container does; returns what was killed."""
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    os.killpg(process.pid, signal.SIGKILL)
    for proc in tree:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait(30)
    return tree


def still_running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.NoSuchProcess:
            pass
    return alive


def writer_threads(log: str, needle: str) -> set[str]:
    """The thread ids (one per process here) of the log lines that contain ``needle``."""
    return {m.group(1) for m in re.finditer(r"\[[^\]]* INFO (\d+)\] (.*)", log) if needle in m.group(2)}


def assert_rank_zero_wrote(log: str, algorithm: str, checkpoints: int) -> None:
    """One checkpoint per epoch and the model once, all from rank 0 (the process that prints the metrics)."""
    rank0 = writer_threads(log, "#validation")
    assert len(rank0) == 1, log[-3000:]
    assert sum("Saved checkpoint" in line for line in log.splitlines()) == checkpoints, log[-3000:]
    assert writer_threads(log, "Saved checkpoint") == rank0, log[-3000:]
    assert writer_threads(log, MODEL_WRITTEN[algorithm]) == rank0, log[-3000:]


def test_two_workers_sigkilled_then_restarted_resume_and_match_an_uninterrupted_run(
        two_worker_algorithm: tuple[str, dict[str, Path] | None], tmp_path: Path, uninterrupted: Reference) -> None:
    algorithm, imdb = two_worker_algorithm
    epochs = int(TWO_WORKER_HP[algorithm]["epochs"])
    rng = random.Random(f"{SEED}/two-workers/{algorithm}")
    after, delay = rng.randint(1, epochs - 3), rng.uniform(0, 0.05)
    why = f"(seed {SEED}: killed {delay:.3f} s after checkpoint {after})"
    opt_ml = two_worker_job(tmp_path, algorithm, imdb)
    first = Watched(opt_ml, algorithm, TWO_WORKERS)
    first.wait_for("Saved checkpoint", count=after)
    time.sleep(delay)
    killed = kill_job(first.process)
    killed_log = first.output()
    assert "Launching 2 worker(s)" in killed_log and len(killed) >= 3, (killed, killed_log[-3000:])
    assert psutil.wait_procs(killed, timeout=10)[1] == [], still_running(killed)
    if "Training job finished" in killed_log:
        pytest.skip(f"the job finished before the kill {why}")
    state = load_checkpoint(algorithm, tmp_path / "checkpoints", TWO_WORKER_HP[algorithm])

    second = run_job(opt_ml, algorithm, TWO_WORKERS)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    resumed = re.findall(RESUMED, log)
    assert resumed == [resume_point(state)], (resumed, state["position"], why, log[-3000:])  # rank 0's line
    assert_rank_zero_wrote(log, algorithm, checkpoints=epochs - int(state["position"]["epoch"]))
    assert model_state(algorithm, opt_ml.model) == "complete"
    assert not opt_ml.failure.exists() and (opt_ml.root / "output" / "success").exists()
    ours = quality(algorithm, log, opt_ml.model)
    reference = uninterrupted(f"{algorithm}/2-workers", lambda folder: two_worker_job(folder, algorithm, imdb),
                              TWO_WORKERS)
    slack = TWO_WORKER_ACCURACY_SLACK if algorithm == "supervised" else None
    assert as_good(algorithm, ours, reference, slack), f"{algorithm}: {ours} after the restart vs {reference} {why}"


def test_sigterm_to_the_launcher_stops_both_workers_and_saves(
        two_worker_algorithm: tuple[str, dict[str, Path] | None], tmp_path: Path) -> None:
    algorithm, imdb = two_worker_algorithm
    opt_ml = two_worker_job(tmp_path, algorithm, imdb)
    run = Watched(opt_ml, algorithm, TWO_WORKERS)
    run.wait_for("Saved checkpoint")
    workers = psutil.Process(run.process.pid).children(recursive=True)
    code, elapsed, log, saved_before = run.sigterm(timeout=60)
    assert len(workers) >= 2 and elapsed < 30, (workers, elapsed, log[-3000:])
    assert still_running(workers) == [], log[-3000:]  # no orphan left behind
    assert "forcefully exiting" not in log, log[-3000:]  # the workers stopped on their own, not by SIGKILL
    assert list(opt_ml.model.iterdir()) == []
    failure = opt_ml.failure.read_text() if opt_ml.failure.exists() else ""
    assert sum("Saved checkpoint" in line for line in log.splitlines()) > saved_before, log[-3000:]
    load_checkpoint(algorithm, tmp_path / "checkpoints", TWO_WORKER_HP[algorithm])
    assert code == 143 and not failure, (code, failure, log[-3000:])
