"""The images as SageMaker runs them: ``IMAGE train`` on a job under /opt/ml, ``IMAGE serve``
on the trained model, answering /ping and /invocations, and stopping on SIGTERM.

Built and run with podman (``make image-test``); see conftest.py for when they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagetext import algorithms
from tests.conftest import REPO, FakeOptMl
from tests.container.conftest import ALGORITHMS, Engine

pytestmark = [pytest.mark.slow, pytest.mark.container]

SAMPLE = REPO / "samples" / "blazingtext"


def _labelled_lines(n: int) -> str:
    """A tiny separable __label__ corpus, for when samples/blazingtext is not there."""
    words = {"pos": "good great fine lovely superb", "neg": "bad awful poor dreadful worse"}
    return "".join(f"__label__{label} {' '.join(text.split()[i % 5:] + text.split()[:i % 5])}\n"
                   for i in range(n) for label, text in words.items())


def _blazingtext_job(opt_ml: FakeOptMl, hyperparameters: dict[str, str]) -> None:
    opt_ml.hyperparameters(hyperparameters)
    for channel, n in (("train", 200), ("validation", 20)):
        sample = SAMPLE / f"{channel}.txt"
        opt_ml.channel(channel, {f"{channel}.txt": sample.read_text() if sample.exists() else _labelled_lines(n)})
    opt_ml.resources(["algo-1"], "algo-1")


def _ntm_job(opt_ml: FakeOptMl, hyperparameters: dict[str, str]) -> None:
    """Two separable "topics" of word counts over a 10-word vocabulary, as dense CSV."""
    opt_ml.hyperparameters(hyperparameters)
    rows = [",".join(str((i + j) % 3 + 1) if (j < 5) == (i % 2 == 0) else "0" for j in range(10))
            for i in range(200)]
    opt_ml.channel("train", {"train.csv": "\n".join(rows) + "\n"})
    opt_ml.channel("auxiliary", {"vocab.txt": "\n".join(f"word{j}" for j in range(10)) + "\n"})
    opt_ml.resources(["algo-1"], "algo-1")


def _seq2seq_job(opt_ml: FakeOptMl, hyperparameters: dict[str, str]) -> None:
    from tests.unit.test_seq2seq import write_corpus  # digit-reversal pairs through seq2seq-prepare

    opt_ml.hyperparameters(hyperparameters)
    prepared = write_corpus(opt_ml.root.parent / "corpus", train=300, validation=20)
    opt_ml.channel("train", {"train.rec": prepared["train.rec"].read_bytes()})
    opt_ml.channel("validation", {"val.rec": prepared["val.rec"].read_bytes()})
    opt_ml.channel("vocab", {name: prepared[name].read_bytes() for name in ("vocab.src.json", "vocab.trg.json")})
    opt_ml.resources(["algo-1"], "algo-1")


def _labels(answers: list) -> None:
    for prediction in answers:
        assert len(prediction["label"]) == len(prediction["prob"]) == 1, answers
        assert prediction["label"][0].startswith("__label__") and 0 <= prediction["prob"][0] <= 1.0001


def _topic_weights(answers: list) -> None:
    for prediction in answers:
        assert len(prediction["topic_weights"]) == 2 and abs(sum(prediction["topic_weights"]) - 1) < 1e-3


def _targets(answers: list) -> None:
    assert all(isinstance(prediction["target"], str) for prediction in answers), answers


# Per algorithm: how to lay out a small job, a hyperparameter change that must be refused,
# the model file training must write, and for serving one request per content type with the
# number of answers expected and a check of each answer.
JOBS = {
    "blazingtext": {
        "layout": _blazingtext_job,
        "good": {"mode": "supervised", "epochs": "5", "min_count": "1", "vector_dim": "16"},
        "bad": {"epochs": "ten"},
        "artifact": "model.bin",
        "requests": [
            ("application/json", json.dumps({"instances": ["a good film", "an awful film"],
                                             "configuration": {"k": 1}}).encode(), 2, _labels),
            ("application/jsonlines", b'{"source": "a good film"}\n{"source": "an awful film"}\n', 2, _labels),
        ],
    },
    "ntm": {
        "layout": _ntm_job,
        "good": {"feature_dim": "10", "num_topics": "2", "epochs": "5", "mini_batch_size": "32"},
        "bad": {"optimizer": "lbfgs"},
        "artifact": "model.pt",
        "requests": [
            ("text/csv", b"3,2,1,2,3,0,0,0,0,0\n0,0,0,0,0,1,2,3,1,2\n", 2, _topic_weights),
            ("application/json", json.dumps({"instances": [{"features": [0, 0, 0, 0, 0, 1, 2, 3, 1, 2]}]}).encode(),
             1, _topic_weights),
            ("application/jsonlines", b'{"features": [3, 2, 1, 2, 3, 0, 0, 0, 0, 0]}\n', 1, _topic_weights),
        ],
    },
    "seq2seq": {
        "layout": _seq2seq_job,
        "good": {"rnn_num_hidden": "32", "num_embed_source": "16", "num_embed_target": "16", "batch_size": "32",
                 "checkpoint_frequency_num_batches": "10", "max_num_batches": "20", "beam_size": "2"},
        "bad": {"rnn_num_hidden": "33"},
        "artifact": "model.pt",
        "requests": [
            ("application/json", json.dumps({"instances": [{"data": "1 2 3"}, {"data": "4 5"}]}).encode(), 2,
             _targets),
            ("application/jsonlines", b'{"source": "1 2 3"}\n', 1, _targets),
        ],
    },
}


def _require(algorithm: str) -> dict:
    if algorithm not in algorithms.MODULES:
        pytest.skip(f"{algorithm} is not in sagetext.algorithms.MODULES yet")
    if algorithm not in JOBS:
        pytest.fail(f"{algorithm} is an algorithm but tests/container has no JOBS entry for it")
    return JOBS[algorithm]


def _train(engine: Engine, image: str, root: Path) -> tuple[int, str]:
    result = engine.run("run", "--rm", "-v", f"{root}:/opt/ml", image, "train")
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="session")
def trained(engine: Engine, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """algorithm -> its model folder, trained in the image (once per session)."""
    models: dict[str, Path] = {}
    for algorithm in ALGORITHMS:
        if algorithm in algorithms.MODULES and algorithm in JOBS:
            opt_ml = FakeOptMl(tmp_path_factory.mktemp(algorithm) / "opt_ml")
            JOBS[algorithm]["layout"](opt_ml, JOBS[algorithm]["good"])
            # as SageMaker writes it for a job with a TensorBoardOutputConfig (default LocalPath)
            (opt_ml.root / "input" / "config" / "tensorboardoutputconfig.json").write_text(
                json.dumps({"S3OutputPath": "s3://bucket/tensorboard"}))
            code, log = _train(engine, images[algorithm], opt_ml.root)
            assert code == 0, log
            models[algorithm] = opt_ml.model
            (opt_ml.root / "train.log").write_text(log)
    return models


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_train_writes_the_model_and_success(algorithm: str, trained: dict[str, Path]) -> None:
    job = _require(algorithm)
    model = trained[algorithm]
    assert (model / job["artifact"]).stat().st_size > 0
    assert (model.parent / "output" / "success").exists()
    assert not (model.parent / "output" / "failure").exists()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_train_writes_tensorboard_events_and_metrics_json(algorithm: str, trained: dict[str, Path]) -> None:
    """The images include the tensorboard extra: a job that asks for TensorBoard output gets it."""
    _require(algorithm)
    model = trained[algorithm]
    assert list((model.parent / "output" / "tensorboard").glob("events.out.tfevents.*"))
    assert (model / "metrics.json").is_file()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bad_hyperparameter_is_a_client_error(algorithm: str, engine: Engine, images: dict[str, str],
                                              tmp_path: Path) -> None:
    job = _require(algorithm)
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    job["layout"](opt_ml, {**job["good"], **job["bad"]})
    code, log = _train(engine, images[algorithm], opt_ml.root)
    assert code != 0, log
    assert opt_ml.failure.read_text().startswith("ClientError:"), log
    assert list(opt_ml.model.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: bytes | None = None, content_type: str = "", accept: str = "",
          timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
        request.add_header("Accept", accept or content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _answers(content_type: str, body: bytes) -> list:
    """One answer per instance: JSON Lines lines, a JSON list, or a JSON object's predictions."""
    if content_type == "application/jsonlines":
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    answer = json.loads(body)
    return answer["predictions"] if isinstance(answer, dict) else answer


@contextlib.contextmanager
def _serving(engine: Engine, image: str, model_dir: Path) -> Iterator[tuple[int, str]]:
    """``IMAGE serve`` on ``model_dir`` until it answers /ping; yields (port, container name)."""
    port, name = _free_port(), f"sagetext-test-{uuid.uuid4().hex[:8]}"
    started = engine.run("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
                         "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve")
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _http(f"http://127.0.0.1:{port}/ping", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            state = engine.run("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert state == "true" and time.monotonic() < deadline, engine.run("logs", name).stderr
            time.sleep(1)
        yield port, name
    finally:
        engine.run("rm", "-f", name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_serve_answers_and_stops_on_sigterm(algorithm: str, engine: Engine, images: dict[str, str],
                                            trained: dict[str, Path]) -> None:
    job = _require(algorithm)
    with _serving(engine, images[algorithm], trained[algorithm]) as (port, name):
        for content_type, body, count, check in job["requests"]:
            accept = "application/json" if content_type == "text/csv" else content_type
            status, answer = _http(f"http://127.0.0.1:{port}/invocations", body, content_type, accept, timeout=60)
            assert status == 200, (content_type, answer)
            predictions = _answers(accept, answer)
            assert len(predictions) == count, answer
            check(predictions)
        stopping = time.monotonic()
        engine.run("stop", "-t", "25", name, check=True)
        took = time.monotonic() - stopping
        code = engine.run("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert took < 10, f"serve took {took:.1f} s to stop on SIGTERM (exit code {code})"
        assert code == "0", engine.run("logs", name).stderr


def test_word2vec_trains_with_the_native_engine_and_serves_neighbors(engine: Engine, images: dict[str, str],
                                                                      tmp_path: Path) -> None:
    """batch_skipgram in the image trains with the compiled engine (not gensim's fallback), and
    the vectors it writes put a word among words of its own topic (the sample's labels, unseen
    by word2vec), asked through the server's neighbors request."""
    _require("blazingtext")
    labelled = [line.split(" ", 1) for line in (SAMPLE / "train.txt").read_text().splitlines()]
    topic_of = {word: Counter(label for label, text in labelled if word in text.split()).most_common(1)[0][0]
                for _, text in labelled for word in text.split()}
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    opt_ml.hyperparameters({"mode": "batch_skipgram", "epochs": "50", "min_count": "2", "vector_dim": "32",
                            "window_size": "3", "sampling_threshold": "0.1"})  # a tiny corpus: keep its tokens
    opt_ml.channel("train", {"train.txt": "".join(text + "\n" for _, text in labelled)})
    opt_ml.resources(["algo-1"], "algo-1")
    code, log = _train(engine, images["blazingtext"], opt_ml.root)
    assert code == 0, log
    assert "native word2vec engine is not built" not in log and "training with" in log, log
    assert (opt_ml.model / "vectors.txt").is_file() and (opt_ml.model / "vectors.bin").is_file()
    queries = ["soup", "goalkeeper", "storm"]
    with _serving(engine, images["blazingtext"], opt_ml.model) as (port, _):
        body = json.dumps({"instances": queries, "configuration": {"neighbors": 5}}).encode()
        status, answer = _http(f"http://127.0.0.1:{port}/invocations", body, "application/json", timeout=60)
    assert status == 200, answer
    for query, prediction in zip(queries, _answers("application/json", answer), strict=True):
        assert prediction["word"] == query and len(prediction["vector"]) == 32
        same_topic = [n["word"] for n in prediction["neighbors"] if topic_of[n["word"]] == topic_of[query]]
        assert len(prediction["neighbors"]) == 5 and len(same_topic) >= 4, (query, prediction["neighbors"])
