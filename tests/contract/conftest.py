"""Jobs trained once per test session by the real executables, with TensorBoard output asked
for as SageMaker asks for it, for the tests of what users look at and use afterwards (training
curves, ``sagetext predict``, ``sagetext test``, serving without an algorithm name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, FakeOptMl, run_train_executable

SAMPLES = REPO / "samples" / "blazingtext"
SAGETEXT = [sys.executable, "-m", "sagetext"]


@dataclass(frozen=True)
class Trained:
    model: Path
    tensorboard: Path
    log: str
    root: Path


def with_tensorboard(opt_ml: FakeOptMl, local_path: Path | None = None) -> Path:
    """The job's tensorboardoutputconfig.json, as SageMaker writes it for a TensorBoardOutputConfig."""
    config: dict[str, str] = {"S3OutputPath": "s3://bucket/tensorboard"}
    if local_path is not None:
        config["LocalPath"] = str(local_path)
    (opt_ml.root / "input" / "config" / "tensorboardoutputconfig.json").write_text(json.dumps(config))
    return local_path or opt_ml.root / "output" / "tensorboard"


def trained(opt_ml: FakeOptMl, algorithm: str, tensorboard: Path) -> Trained:
    result = run_train_executable(opt_ml, algorithm, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return Trained(opt_ml.model, tensorboard, log, opt_ml.root)


@pytest.fixture(scope="session")
def supervised_job(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """``sagetext train --tensorboard`` (the CLI writes the same config file) on the sample data."""
    folder = tmp_path_factory.mktemp("supervised")
    result = subprocess.run(
        [*SAGETEXT, "train", "--algorithm", "blazingtext", "--channel", f"train={SAMPLES / 'train.txt'}",
         "--channel", f"validation={SAMPLES / 'validation.txt'}", "-p", "mode=supervised", "-p", "epochs=5",
         "-p", "word_ngrams=2", "--model-dir", str(folder / "model"), "--tensorboard", str(folder / "tb")],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return Trained(folder / "model", folder / "tb", log, folder)


@pytest.fixture(scope="session")
def word2vec_job(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """skipgram on the sample sentences, TensorBoard at SageMaker's default LocalPath."""
    opt_ml = FakeOptMl(tmp_path_factory.mktemp("word2vec") / "opt_ml")
    text = "".join(line.split(" ", 1)[1] for line in (SAMPLES / "train.txt").read_text().splitlines(True))
    opt_ml.channel("train", {"corpus.txt": text * 5})
    opt_ml.hyperparameters({"mode": "skipgram", "epochs": "2", "vector_dim": "16", "min_count": "2",
                            "evaluation": "false"})
    return trained(opt_ml, "blazingtext", with_tensorboard(opt_ml))


def topic_documents(n: int, seed: int, dim: int = 24) -> str:
    """CSV rows of word counts from 3 disjoint topics of 8 words each."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, dim), dtype=int)
    for i in range(n):
        topic = i % 3
        rows[i, topic * 8:(topic + 1) * 8] = rng.poisson(2.0, 8)
    return "".join(",".join(map(str, row)) + "\n" for row in rows)


@pytest.fixture(scope="session")
def ntm_job(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """NTM on CSV with a test channel, TensorBoard at a LocalPath of the job's choosing."""
    folder = tmp_path_factory.mktemp("ntm")
    opt_ml = FakeOptMl(folder / "opt_ml")
    opt_ml.channel("train", {"train.csv": topic_documents(240, 1)})
    opt_ml.channel("validation", {"validation.csv": topic_documents(60, 2)})
    opt_ml.channel("test", {"test.csv": topic_documents(60, 3)})
    opt_ml.hyperparameters({"feature_dim": "24", "num_topics": "3", "epochs": "4", "mini_batch_size": "32",
                            "learning_rate": "0.01", "encoder_layers": "[16]", "seed": "5"})
    return trained(opt_ml, "ntm", with_tensorboard(opt_ml, folder / "tensorboard"))


@pytest.fixture(scope="session")
def seq2seq_job(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Digit reversal with internal checkpoints every 20 updates, 40 updates."""
    from tests.unit.test_seq2seq import write_corpus

    folder = tmp_path_factory.mktemp("seq2seq")
    corpus = write_corpus(folder / "corpus", train=400, validation=30)
    opt_ml = FakeOptMl(folder / "opt_ml")
    opt_ml.channel("train", {"train.rec": corpus["train.rec"].read_bytes()})
    opt_ml.channel("validation", {"val.rec": corpus["val.rec"].read_bytes()})
    opt_ml.channel("vocab", {"vocab.src.json": corpus["vocab.src.json"].read_bytes(),
                             "vocab.trg.json": corpus["vocab.trg.json"].read_bytes()})
    opt_ml.hyperparameters({"rnn_num_hidden": "32", "num_embed_source": "16", "num_embed_target": "16",
                            "batch_size": "32", "learning_rate": "0.003", "checkpoint_frequency_num_batches": "20",
                            "max_num_batches": "40", "bleu_sample_size": "10", "beam_size": "2"})
    return trained(opt_ml, "seq2seq", with_tensorboard(opt_ml))
