"""Ctrl-C (SIGINT) stops training like SIGTERM: the loop saves a checkpoint when checkpoints are
configured, nothing prints a traceback, and the exit code is 130 (128 + SIGINT), for the image's
``train``, for ``sagetext train`` (Ctrl-C reaches the terminal's whole process group) and for a
job of two workers (the launcher passes the signal on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, FakeOptMl, train_command, train_env

SAMPLE = REPO / "samples" / "blazingtext"
ENDLESS = {"mode": "supervised", "epochs": "100000", "learning_rate": "0.5", "min_count": "1", "vector_dim": "16"}


def interrupt_after_first_epoch(command: list[str], env: dict[str, str], group: bool = False) -> tuple[int, str, float]:
    """Start ``command``, send SIGINT once an epoch has ended (to its process group when
    ``group``, as a terminal's Ctrl-C does); (exit code, output, seconds to exit)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if "End of epoch" in line:
            break
    if group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    started = time.monotonic()
    output.append(process.communicate(timeout=120)[0])
    return process.returncode, "".join(output), time.monotonic() - started


def assert_stopped_and_saved(code: int, output: str, seconds: float, checkpoints: Path, model: Path) -> None:
    assert code == 130, output
    assert seconds < 60, output
    assert "Training stopped by SIGINT" in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert (checkpoints / "checkpoint.pt").exists()
    assert not model.exists() or list(model.iterdir()) == []


def test_sigint_to_train_saves_a_checkpoint_and_exits_130(opt_ml: FakeOptMl, tmp_path: Path) -> None:
    opt_ml.hyperparameters(ENDLESS)
    opt_ml.channel("train", {"train.txt": (SAMPLE / "train.txt").read_text()})
    opt_ml.checkpoints(tmp_path / "checkpoints")
    code, output, seconds = interrupt_after_first_epoch(train_command(), train_env(opt_ml, "blazingtext"))
    assert_stopped_and_saved(code, output, seconds, tmp_path / "checkpoints", opt_ml.model)
    assert not opt_ml.failure.exists()


def test_ctrl_c_in_sagetext_train(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sagetext", "train", "--algorithm", "blazingtext",
               "--channel", f"train={SAMPLE / 'train.txt'}", "--model-dir", str(tmp_path / "model"),
               "--checkpoint-dir", str(tmp_path / "checkpoints"), *[f"-p{k}={v}" for k, v in ENDLESS.items()]]
    env = {**os.environ, "SAGETEXT_DEVICE": "cpu"}
    code, output, seconds = interrupt_after_first_epoch(command, env, group=True)
    assert_stopped_and_saved(code, output, seconds, tmp_path / "checkpoints", tmp_path / "model")


@pytest.mark.slow
def test_sigint_to_the_launcher_of_two_workers(opt_ml: FakeOptMl, tmp_path: Path) -> None:
    opt_ml.hyperparameters(ENDLESS)
    opt_ml.channel("train", {"train.txt": (SAMPLE / "train.txt").read_text() * 4})
    opt_ml.checkpoints(tmp_path / "checkpoints")
    code, output, seconds = interrupt_after_first_epoch(train_command(),
                                                        train_env(opt_ml, "blazingtext", {"SAGETEXT_CPU_WORKERS": "2"}))
    assert code == 130, output
    assert "the workers saved their checkpoint" in output and "Traceback" not in output, output
    assert (tmp_path / "checkpoints" / "checkpoint.pt").exists()
    assert list(opt_ml.model.iterdir()) == [] and not opt_ml.failure.exists()
