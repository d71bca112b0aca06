"""Tiny models for the reliability tests, each trained through the real code, and the real
server (gunicorn) started around them with a fake secret in its environment.

``lay_out(algo, opt_ml, hp, work)`` writes a tiny job into a fake /opt/ml, ``run_train``
(tests/conftest.py) runs the real ``train`` executable on it, with ``SPEC_NAME[algo]``
(``word2vec`` and ``supervised`` are BlazingText's modes) and ``SECRET_ENV``;
``trained_models`` (session) holds one model folder per algorithm; ``launch_model_server``
starts ``serve_model.py`` (``sagetext.serving.gunicorn.serve``) on a free loopback port.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, FakeOptMl, RunTrain
from tests.serving.conftest import Server, free_port, server_env

# reference(key, build, env): the quality of an uninterrupted run of a job (the ``uninterrupted`` fixture)
Reference = Callable[[str, Callable[[Path], FakeOptMl], "Mapping[str, str] | None"], float]

HERE = Path(__file__).parent
SAMPLE = REPO / "samples" / "blazingtext"
# A value that must never leave the process: not in a response, a log line sent to a client,
# nor a failure file.
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRETKEY42"
SECRET_ENV = {"AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE4242",
              "SAGETEXT_TEST_TOKEN": FAKE_SECRET}

NTM_DIM = 12
NTM_HP = {"feature_dim": str(NTM_DIM), "num_topics": "3", "epochs": "3", "mini_batch_size": "16",
          "encoder_layers": "[8]", "learning_rate": "0.01"}
SEQ2SEQ_HP = {"rnn_num_hidden": "16", "num_embed_source": "8", "num_embed_target": "8", "batch_size": "16",
              "checkpoint_frequency_num_batches": "10", "max_num_batches": "20", "bleu_sample_size": "10",
              "beam_size": "2"}
SUPERVISED_HP = {"mode": "supervised", "epochs": "5", "learning_rate": "0.5", "vector_dim": "10",
                 "min_count": "1", "buckets": "20000"}
WORD2VEC_HP = {"mode": "skipgram", "epochs": "1", "vector_dim": "8", "min_count": "1"}


def ntm_rows(count: int, seed: int = 0) -> str:
    """Word counts from two clear "topics" (first half / second half of the vocabulary)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        topic = i % 2
        weights = np.full(NTM_DIM, 0.02)
        half = NTM_DIM // 2
        weights[topic * half:(topic + 1) * half] = 1.0
        counts = rng.multinomial(20, weights / weights.sum())
        rows.append(",".join(str(int(c)) for c in counts))
    return "\n".join(rows) + "\n"


def seq2seq_corpus(folder: Path, train: int = 300, validation: int = 30) -> dict[str, Path]:
    from tests.unit.test_seq2seq import write_corpus

    return write_corpus(folder, train=train, validation=validation)


def lay_out(algorithm: str, opt_ml: FakeOptMl, hp: Mapping[str, str], work: Path, repeat: int = 1) -> None:
    """Channels and hyperparameters for a tiny job of ``algorithm`` (``word2vec`` = BlazingText
    skipgram, ``supervised`` = BlazingText supervised)."""
    opt_ml.hyperparameters(dict(hp))
    if algorithm == "ntm":
        opt_ml.channel("train", {"train.csv": ntm_rows(400) * repeat})
        opt_ml.channel("validation", {"validation.csv": ntm_rows(60, seed=1)})
        config_file = opt_ml.root / "input" / "config" / "inputdataconfig.json"
        config = json.loads(config_file.read_text())
        for name in config:
            config[name]["ContentType"] = "text/csv"
        config_file.write_text(json.dumps(config))
    elif algorithm == "seq2seq":
        corpus = seq2seq_corpus(work / "corpus")
        opt_ml.channel("train", {"train.rec": corpus["train.rec"].read_bytes() * repeat})
        opt_ml.channel("validation", {"val.rec": corpus["val.rec"].read_bytes()})
        opt_ml.channel("vocab", {"vocab.src.json": corpus["vocab.src.json"].read_bytes(),
                                 "vocab.trg.json": corpus["vocab.trg.json"].read_bytes()})
    elif algorithm == "supervised":
        opt_ml.channel("train", {"train.txt": (SAMPLE / "train.txt").read_bytes() * repeat})
        opt_ml.channel("validation", {"validation.txt": (SAMPLE / "validation.txt").read_bytes()})
    elif algorithm == "word2vec":
        text = " ".join(line.split(" ", 1)[1] for line in (SAMPLE / "train.txt").read_text().splitlines())
        opt_ml.channel("train", {"corpus.txt": (text + "\n") * repeat})
    else:
        raise ValueError(algorithm)


SPEC_NAME = {"ntm": "ntm", "seq2seq": "seq2seq", "supervised": "blazingtext", "word2vec": "blazingtext"}
DEFAULT_HP = {"ntm": NTM_HP, "seq2seq": SEQ2SEQ_HP, "supervised": SUPERVISED_HP, "word2vec": WORD2VEC_HP}


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, run_train: RunTrain) -> dict[str, Path | str]:
    """algorithm -> model folder, each trained by the real ``train`` executable. (A value may
    be a string saying why a model is unavailable; the tests then skip with it.)"""
    out: dict[str, Path | str] = {}
    for algorithm in ("ntm", "seq2seq", "supervised", "word2vec"):
        root = tmp_path_factory.mktemp(f"train-{algorithm}")
        opt_ml = FakeOptMl(root / "opt_ml")
        lay_out(algorithm, opt_ml, DEFAULT_HP[algorithm], root)
        result = run_train(opt_ml, SPEC_NAME[algorithm], SECRET_ENV, timeout=240)
        assert result.returncode == 0, f"{algorithm} training failed:\n{result.stdout}\n{result.stderr}"
        out[algorithm] = opt_ml.model
    return out


def launch(algorithm: str, model_dir: Path, log_path: Path, env: Mapping[str, str]) -> Server:
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "serve_model.py"), algorithm, str(model_dir)],
        env=server_env({"SAGEMAKER_BIND_TO_PORT": str(port), "OMP_NUM_THREADS": "1", **SECRET_ENV, **env}),
        stdout=log, stderr=subprocess.STDOUT, cwd=HERE)
    log.close()
    return Server(f"http://127.0.0.1:{port}", process, log_path)


@pytest.fixture(scope="module")
def launch_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    started: list[Server] = []
    folder = tmp_path_factory.mktemp("servers")

    def start(algorithm: str, model_dir: Path, env: Mapping[str, str]) -> Server:
        server = launch(algorithm, model_dir, folder / f"{algorithm}-{len(started)}.log", env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """``reference(key, build, env)``: the quality of an uninterrupted run of the job ``build``
    lays out in a folder (``key`` names it; the algorithm is its part before '/'), run once."""
    from tests.reliability.faults import quality, run_job  # faults.py imports this module

    qualities: dict[str, float] = {}

    def reference(key: str, build: Callable[[Path], FakeOptMl], env: Mapping[str, str] | None = None) -> float:
        if key not in qualities:
            algorithm = key.split("/")[0]
            opt_ml = build(tmp_path_factory.mktemp(f"whole-{key.replace('/', '-')}"))
            result = run_job(opt_ml, algorithm, env)
            log = result.stdout + result.stderr
            assert result.returncode == 0, log
            qualities[key] = quality(algorithm, log, opt_ml.model)
        return qualities[key]

    return reference
