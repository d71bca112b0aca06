"""Small things a user of ``sagetext`` notices: the version, a repeated ``-p``, messages that
name the user's own files once, and a warning on a classifier's data with a single label."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sagetext import __version__
from tests.contract.conftest import SAGETEXT


def sagetext(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAGETEXT, *args], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=timeout)


def test_version() -> None:
    result = sagetext("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"sagetext {__version__}"


def test_a_repeated_hyperparameter_is_an_error_not_last_wins(tmp_path: Path) -> None:
    data = tmp_path / "train.txt"
    data.write_text("__label__a hello\n__label__b world\n")
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train={data}", "-p", "mode=supervised",
                      "-p", "epochs=3", "-p", "epochs=4", "--model-dir", str(tmp_path / "model"))
    assert result.returncode != 0
    assert "--hyperparameter epochs is given twice ('3' and '4')" in result.stderr


@pytest.mark.slow
def test_a_failure_names_the_users_folder_and_is_printed_once(tmp_path: Path) -> None:
    empty = tmp_path / "my-empty-folder"
    empty.mkdir()
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train={empty}", "-p", "mode=supervised",
                      "--model-dir", str(tmp_path / "model"))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert output.count("ClientError:") == 1, output
    assert f"no files in {empty}" in output and "sagetext-job-" not in output, output
    assert f"sagetext {__version__}: train" in output.splitlines()[0]


@pytest.mark.slow
def test_a_classifier_trained_on_a_single_label_warns(tmp_path: Path) -> None:
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__only words of line {i}\n" for i in range(50)))
    result = sagetext("train", "--algorithm", "blazingtext", "--channel", f"train={data}", "-p", "mode=supervised",
                      "-p", "epochs=1", "--model-dir", str(tmp_path / "model"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" in result.stdout and "single label, __label__only" in result.stdout
