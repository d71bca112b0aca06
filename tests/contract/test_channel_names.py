"""Channel names are checked, as SageMaker's built-ins check them: a channel the algorithm (in
its mode) does not read is a ``ClientError`` naming it, the accepted names and the closest one,
instead of being ignored (``valid`` for ``validation`` would silently train without validation)."""

from __future__ import annotations

import pytest

from sagetext import training
from sagetext.contract.channels import closest
from sagetext.contract.paths import Paths
from sagetext.contract.settings import Settings
from sagetext.errors import ClientError
from tests.conftest import REPO, FakeOptMl, RunTrain

SAMPLE = REPO / "samples" / "blazingtext"
SUPERVISED = {"mode": "supervised", "epochs": "1", "min_count": "1"}
NTM = {"feature_dim": "3", "num_topics": "2"}


@pytest.mark.parametrize("algorithm,hyperparameters,channels,message", [
    ("blazingtext", SUPERVISED, ["train", "valid"],
     "unknown channel 'valid' (did you mean 'validation'?): BlazingText in mode supervised reads only train, "
     "validation"),
    ("blazingtext", {"mode": "skipgram"}, ["train", "validation"],
     "unknown channel 'validation': BlazingText in mode skipgram reads only train"),
    ("ntm", NTM, ["train", "aux", "Test"],
     "unknown channels 'Test' (did you mean 'test'?), 'aux' (did you mean 'auxiliary'?): NTM reads only train, "
     "validation, test, auxiliary"),
])
def test_train_refuses_unknown_channels(opt_ml: FakeOptMl, algorithm: str, hyperparameters: dict[str, str],
                                        channels: list[str], message: str, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(hyperparameters)
    for name in channels:
        opt_ml.channel(name, {"data.txt": (SAMPLE / "train.txt").read_text() if algorithm != "ntm" else "1,2,3\n"})
    result = run_train(opt_ml, algorithm)
    assert result.returncode == 1, result.stdout + result.stderr
    assert opt_ml.failure.read_text().startswith(f"ClientError: {message}; rename the channel")
    assert "Traceback" not in result.stdout + result.stderr
    assert list(opt_ml.model.iterdir()) == []


def test_seq2seq_channels_and_the_accepted_ones_pass(opt_ml: FakeOptMl, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the job is read (``load_job``), nothing trained."""
    monkeypatch.setenv("SAGETEXT_ALGORITHM", "seq2seq")
    opt_ml.hyperparameters({})
    for name in ("train", "validation", "vocabulary"):
        opt_ml.channel(name, {"x": b""})
    with pytest.raises(ClientError, match=r"^unknown channel 'vocabulary' \(did you mean 'vocab'\?\): Seq2Seq reads "
                                          r"only train, validation, vocab;"):
        training.load_job(Paths(opt_ml.root), Settings.from_env())
    monkeypatch.setenv("SAGETEXT_ALGORITHM", "ntm")
    opt_ml.hyperparameters(NTM)
    (opt_ml.root / "input" / "config" / "inputdataconfig.json").unlink()  # channels: the folders
    for name in ("vocabulary", "validation"):
        (opt_ml.root / "input" / "data" / name / "x").unlink()
        (opt_ml.root / "input" / "data" / name).rmdir()
    assert sorted(training.load_job(Paths(opt_ml.root), Settings.from_env()).channels) == ["train"]


@pytest.mark.parametrize("given,expected", [
    ("valid", "validation"), ("val", "validation"), ("Validation", "validation"), ("training", "train"),
    ("trian", "train"), ("eval", None), ("test", None), ("tr", None),
])
def test_closest_accepted_name(given: str, expected: str | None) -> None:
    assert closest(given, ["train", "validation"]) == expected


def test_the_spec_lists_the_channels_each_reader_opens() -> None:
    from sagetext import specs

    assert list(specs.channels("blazingtext", "supervised")) == ["train", "validation"]
    assert list(specs.channels("blazingtext", "batch_skipgram")) == ["train"]
    assert list(specs.channels("seq2seq")) == ["train", "validation", "vocab"]
    assert list(specs.channels("ntm")) == ["train", "validation", "test", "auxiliary"]
