"""Run the real ``train`` executable as a subprocess on a fake /opt/ml, as SageMaker would."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, FakeOptMl, RunTrain, train_command, train_env

SAMPLE = REPO / "samples" / "blazingtext"
GOOD = {"mode": "supervised", "epochs": "10", "learning_rate": "0.5", "min_count": "1",
        "vector_dim": "16", "word_ngrams": "2"}


def sample_channels(opt_ml: FakeOptMl) -> None:
    opt_ml.channel("train", {"train.txt": (SAMPLE / "train.txt").read_text()})
    opt_ml.channel("validation", {"validation.txt": (SAMPLE / "validation.txt").read_text()})


def assert_client_error(result: subprocess.CompletedProcess[str], opt_ml: FakeOptMl, *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    text = opt_ml.failure.read_text()
    assert text.startswith("ClientError: ")
    for needle in needles:
        assert needle in text
    assert "Traceback" not in text and "Traceback" not in result.stdout + result.stderr
    assert list(opt_ml.model.iterdir()) == []


def test_good_run_writes_the_model_and_metric_lines(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**GOOD, "sagemaker_region": "us-east-1"})
    sample_channels(opt_ml)
    result = run_train(opt_ml, "blazingtext")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (opt_ml.model / "model.bin").stat().st_size > 0
    assert (opt_ml.root / "output" / "success").exists() and not opt_ml.failure.exists()
    line = re.search(r"^\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO \d+\] #validation_accuracy: ([0-9.]+)$",
                     result.stdout, re.M)
    assert line and float(line.group(1)) > 0.8
    assert re.search(r"#train_accuracy: [0-9.]+", result.stdout)


@pytest.mark.parametrize("hyperparameters,needles", [
    ({**GOOD, "epochs": "ten"}, ["epochs='ten'", "expected an integer >= 1"]),
    ({**GOOD, "vector_dims": "10"}, ["vector_dims: unknown hyperparameter"]),
    ({k: v for k, v in GOOD.items() if k != "mode"}, ["mode: required hyperparameter is missing"]),
])
def test_bad_hyperparameters_fail_with_a_client_error(opt_ml: FakeOptMl, hyperparameters, needles,
                                                      run_train: RunTrain) -> None:
    opt_ml.hyperparameters(hyperparameters)
    sample_channels(opt_ml)
    assert_client_error(run_train(opt_ml, "blazingtext"), opt_ml, *needles)


def test_missing_train_channel(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(GOOD)
    opt_ml.channel("validation", {"validation.txt": (SAMPLE / "validation.txt").read_text()})
    assert_client_error(run_train(opt_ml, "blazingtext"), opt_ml, "'train' channel")


def test_early_stopping_without_validation_channel(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**GOOD, "early_stopping": "true"})
    opt_ml.channel("train", {"train.txt": (SAMPLE / "train.txt").read_text()})
    assert_client_error(run_train(opt_ml, "blazingtext"), opt_ml, "validation")


@pytest.mark.parametrize("content", ["", "no label on this line\nnor on this one\n",
                                     b"\x00\xff\xfe garbage \x89PNG\r\n"])
def test_empty_or_garbled_training_file_names_the_file(opt_ml: FakeOptMl, content, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(GOOD)
    opt_ml.channel("train", {"broken.txt": content})
    assert_client_error(run_train(opt_ml, "blazingtext"), opt_ml, "broken.txt")


def test_sigterm_saves_a_checkpoint_and_stops(opt_ml: FakeOptMl, tmp_path: Path) -> None:
    opt_ml.hyperparameters({**GOOD, "epochs": "100000"})
    sample_channels(opt_ml)
    opt_ml.checkpoints(tmp_path / "checkpoints")
    process = subprocess.Popen(train_command(), env=train_env(opt_ml, "blazingtext"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:  # wait until training is under way
        output.append(line)
        if "End of epoch" in line:
            break
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    output.append(process.communicate(timeout=60)[0])
    assert process.returncode == 143, "".join(output)
    assert time.monotonic() - started < 30
    assert (tmp_path / "checkpoints" / "checkpoint.pt").exists()
    assert list(opt_ml.model.iterdir()) == []
