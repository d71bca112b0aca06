"""Run the real ``train`` executable for Seq2Seq on a fake /opt/ml, as SageMaker would."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from sagetext import specs
from tests.conftest import FakeOptMl, RunTrain, train_command, train_env
from tests.unit.test_seq2seq import write_corpus

TINY = {"rnn_num_hidden": "32", "num_embed_source": "16", "num_embed_target": "16", "batch_size": "32",
        "learning_rate": "0.003", "checkpoint_frequency_num_batches": "20", "max_num_batches": "40",
        "bleu_sample_size": "20", "beam_size": "2", "sagemaker_region": "us-east-1"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("digits"), train=600, validation=40)


def add_channels(opt_ml: FakeOptMl, prepared: dict[str, Path], skip: str = "",
                 vocab_src: bytes | None = None) -> None:
    if skip != "train":
        opt_ml.channel("train", {"train.rec": prepared["train.rec"].read_bytes()})
    if skip != "validation":
        opt_ml.channel("validation", {"val.rec": prepared["val.rec"].read_bytes()})
    if skip != "vocab":
        opt_ml.channel("vocab", {"vocab.src.json": vocab_src or prepared["vocab.src.json"].read_bytes(),
                                 "vocab.trg.json": prepared["vocab.trg.json"].read_bytes()})


def assert_client_error(result: subprocess.CompletedProcess[str], opt_ml: FakeOptMl, *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    text = opt_ml.failure.read_text()
    assert text.startswith("ClientError: "), text
    for needle in needles:
        assert needle in text, text
    assert "Traceback" not in result.stdout + result.stderr
    assert list(opt_ml.model.iterdir()) == []


def test_good_run_writes_the_model_and_metric_lines(opt_ml: FakeOptMl, prepared: dict[str, Path],
                                                    run_train: RunTrain) -> None:
    opt_ml.hyperparameters(TINY)
    add_channels(opt_ml, prepared)
    result = run_train(opt_ml, "seq2seq")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in opt_ml.model.iterdir()) == ["config.json", "metrics.json", "model.pt",
                                                              "vocab.src.json", "vocab.trg.json"]
    assert (opt_ml.root / "output" / "success").exists() and not opt_ml.failure.exists()
    for definition in specs.metric_definitions("seq2seq"):
        values = re.findall(definition["Regex"], result.stdout)
        assert len(values) == 2, (definition, result.stdout)  # checkpoints 1 and 2
        float(values[-1])
    assert re.search(r"Checkpoint \[2\]\tValidation-perplexity=[0-9.]+", result.stdout)
    bleu = [float(v) for v in re.findall(r"#validation:bleu: ([-+0-9.eE]+)", result.stdout)]
    assert bleu and all(0.0 <= v <= 1.0 for v in bleu), bleu  # Sockeye's 0-1 scale, as AWS's Seq2Seq reports
    assert json.loads((opt_ml.model / "config.json").read_text())["hyperparameters"]["max_num_batches"] == "40"


@pytest.mark.parametrize("case,needles", [
    ("no vocab channel", ["'vocab' channel is required"]),
    ("odd rnn_num_hidden", ["rnn_num_hidden=33: expected an even number"]),
    ("vocab without specials", ["vocab.src.json: the special token '<unk>' is missing"]),
    ("ids out of range", ["train.rec, record 1: source id", "out of range for the source vocabulary of 5 tokens"]),
])
def test_user_mistakes_fail_with_a_client_error(opt_ml: FakeOptMl, prepared: dict[str, Path], case: str,
                                               needles: list[str], run_train: RunTrain) -> None:
    opt_ml.hyperparameters({**TINY, "rnn_num_hidden": "33"} if case == "odd rnn_num_hidden" else TINY)
    vocab_src = None
    if case == "vocab without specials":
        vocab_src = json.dumps({"<pad>": 0, "<s>": 1, "</s>": 2, "7": 3}).encode()
    elif case == "ids out of range":
        vocab_src = json.dumps({"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "7": 4}).encode()
    add_channels(opt_ml, prepared, skip="vocab" if case == "no vocab channel" else "", vocab_src=vocab_src)
    assert_client_error(run_train(opt_ml, "seq2seq"), opt_ml, *needles)


def stop_after_first_checkpoint(opt_ml: FakeOptMl) -> str:
    """Run ./train, send SIGTERM once the first checkpoint's validation line is out, and check that
    it exits with 143; returns what it printed."""
    process = subprocess.Popen(train_command(), env=train_env(opt_ml, "seq2seq"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if "Checkpoint [1]\tValidation" in line:
            break
    process.send_signal(signal.SIGTERM)
    output.append(process.communicate(timeout=120)[0])
    assert process.returncode == 143, "".join(output)
    return "".join(output)


def test_sigterm_saves_a_checkpoint_and_stops(opt_ml: FakeOptMl, prepared: dict[str, Path], tmp_path: Path) -> None:
    opt_ml.hyperparameters({**TINY, "max_num_batches": "-1", "checkpoint_frequency_num_batches": "5",
                            "checkpoint_threshold": "1000"})
    add_channels(opt_ml, prepared)
    opt_ml.checkpoints(tmp_path / "checkpoints")
    stop_after_first_checkpoint(opt_ml)
    assert (tmp_path / "checkpoints" / "checkpoint.pt").exists()
    assert list(opt_ml.model.iterdir()) == []


@pytest.mark.slow
def test_two_cpu_workers_train_data_parallel(opt_ml: FakeOptMl, prepared: dict[str, Path], run_train: RunTrain) -> None:
    opt_ml.hyperparameters(TINY)
    add_channels(opt_ml, prepared)
    result = run_train(opt_ml, "seq2seq", {"SAGETEXT_CPU_WORKERS": "2"}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"#validation:perplexity: ", result.stdout)) == 2  # rank 0 alone prints metrics
    assert (opt_ml.model / "model.pt").exists()
