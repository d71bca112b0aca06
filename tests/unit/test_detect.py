"""Which algorithm wrote a model folder, read from the files without importing torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sagetext import algorithms
from sagetext.errors import ClientError
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"


def test_the_format_names_are_the_algorithms_own() -> None:
    from sagetext.algorithms.blazingtext.fasttext_format import model_file
    from sagetext.algorithms.ntm import model as ntm_model
    from sagetext.algorithms.seq2seq import artifacts

    assert algorithms.SEQ2SEQ_FORMAT == artifacts.FORMAT
    assert algorithms.NTM_FORMAT == ntm_model.FORMAT
    assert model_file.MODEL_FILE in algorithms.BLAZINGTEXT_FILES


def test_committed_models_are_recognised() -> None:
    assert algorithms.detect(FIXTURES / "seq2seq_tiny" / "model") == "seq2seq"
    assert algorithms.detect(FIXTURES / "ntm_tiny" / "model") == "ntm"


@pytest.mark.parametrize("name", ["model.bin", "vectors.bin", "vectors.txt"])
def test_blazingtext_models_are_recognised_by_their_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\xba\x16\x4f\x2f")
    assert algorithms.detect(tmp_path) == "blazingtext"


def test_a_seq2seq_model_pt_is_not_taken_for_ntm(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "seq2seq_tiny" / "model" / "model.pt", tmp_path / "model.pt")
    with pytest.raises(ClientError, match="no model that sagetext knows"):
        algorithms.detect(tmp_path)


def test_an_unknown_folder_says_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ClientError) as error:
        algorithms.detect(tmp_path)
    assert "weights.h5" in error.value.message and "model.bin" in error.value.message
    assert "config.json" in error.value.message and "SAGETEXT_ALGORITHM" in error.value.message
    with pytest.raises(ClientError, match="does not exist"):
        algorithms.detect(tmp_path / "missing")


def test_detection_does_not_import_torch() -> None:
    """The server's master process detects the algorithm and must not import torch."""
    code = ("import sys; from sagetext import algorithms; "
            f"print(algorithms.detect({str(FIXTURES / 'ntm_tiny' / 'model')!r})); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["ntm", "False"], result.stderr
