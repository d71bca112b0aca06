"""``sagetext predict`` gives what ``/invocations`` gives, ``sagetext test`` gives what fastText,
sacreBLEU and training give, and the server needs no algorithm name: each through the real CLI
and the real server (``sagetext serve`` without ``--algorithm``, gunicorn on a loopback port)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests

from sagetext.data import recordio
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from tests.conftest import REPO
from tests.contract.conftest import SAGETEXT, SAMPLES
from tests.serving.conftest import Server, free_port, server_env
from tests.unit.test_seq2seq import digit_lines, reverse

pytestmark = pytest.mark.slow
FIXTURES = REPO / "tests" / "fixtures"


def cli_env() -> dict[str, str]:
    env = server_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OMP_NUM_THREADS": "1"})
    env.pop("SAGETEXT_ALGORITHM", None)  # the model folder says which algorithm
    return env


@contextmanager
def serving(model_dir: Path, log_path: Path, command: list[str] | None = None,
            env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    command = command or [*SAGETEXT, "serve", "--model-dir", str(model_dir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env={**cli_env(), "SAGEMAKER_BIND_TO_PORT": str(port), **(env or {})},
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        server.wait_ready(180)
        yield server
    finally:
        server.stop()


def invoke(server: Server, body: bytes, content_type: str, accept: str | None = None) -> bytes:
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    response = requests.post(f"{server.url}/invocations", data=body, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response.content


def predict(model_dir: Path, tmp_path: Path, body: bytes, *args: str) -> bytes:
    source, output = tmp_path / "input", tmp_path / "output"
    source.write_bytes(body)
    result = subprocess.run([*SAGETEXT, "predict", "--model-dir", str(model_dir), "--input", str(source),
                             "--output", str(output), *args], env=cli_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return output.read_bytes()


def jsonlines(*items: object) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def records(features: list[dict[str, np.ndarray]]) -> bytes:
    out = io.BytesIO()
    items = []
    for tensors in features:
        record = recordio.Record()
        for name, array in tensors.items():
            record.features[name].CopyFrom(recordio.numpy_to_value(array))
        items.append(record)
    recordio.write_records(out, items)
    return out.getvalue()


def test_supervised_predict_equals_invocations_and_serve_needs_no_algorithm(supervised_job, tmp_path: Path) -> None:  # noqa: ANN001
    model = supervised_job.model
    lines = [line.split(" ", 1)[1] for line in (SAMPLES / "validation.txt").read_text().splitlines()[:5]]
    with serving(model, tmp_path / "server.log") as server:
        body = jsonlines(*({"source": line, "k": 1 + i % 3} for i, line in enumerate(lines)))
        assert predict(model, tmp_path, body, "--batch-size", "2") == invoke(server, body, JSONLINES)
        json_body = json.dumps({"instances": lines, "configuration": {"k": 3}}).encode()
        assert predict(model, tmp_path, json_body, "--content-type", JSON) == invoke(server, json_body, JSON)
        plain = jsonlines(*({"source": line} for line in lines))
        with_k = jsonlines(*({"source": line, "k": 2} for line in lines))
        assert predict(model, tmp_path, plain, "-c", "k=2") == invoke(server, with_k, JSONLINES)
        text = "\n".join(lines).encode() + b"\n"
        assert predict(model, tmp_path, text, "--content-type", "text/plain") == invoke(server, plain, JSONLINES)
    assert "holds a blazingtext model" in server.log()


def test_word_vectors_predict_equals_invocations(word2vec_job, tmp_path: Path) -> None:  # noqa: ANN001
    body = json.dumps({"instances": ["the", "movie", "zzz-never-seen"]}).encode()
    with serving(word2vec_job.model, tmp_path / "server.log") as server:
        answer = invoke(server, body, JSON)
        assert predict(word2vec_job.model, tmp_path, body) == answer  # JSON: the only type vectors take
    assert [item["word"] for item in json.loads(answer)] == ["the", "movie", "zzz-never-seen"]


def test_seq2seq_predict_equals_invocations_in_every_format(tmp_path: Path) -> None:
    model = FIXTURES / "seq2seq_tiny" / "model"
    sources = digit_lines(7, seed=11)
    with serving(model, tmp_path / "server.log") as server:
        lines = jsonlines(*({"source": s} for s in sources))
        assert predict(model, tmp_path, lines, "--batch-size", "3") == invoke(server, lines, JSONLINES)
        body = json.dumps({"instances": [{"data": sources[0]},
                                         {"data": sources[1], "configuration": {"attention_matrix": "true"}}]})
        answer = invoke(server, body.encode(), JSON)
        assert predict(model, tmp_path, body.encode(), "--content-type", JSON) == answer
        assert "matrix" in json.loads(answer)["predictions"][1]
        vocab = json.loads((model / "vocab.src.json").read_text())
        ids = [{"source": np.array([vocab[t] for t in s.split()], dtype=np.int32)} for s in sources]
        rec = records(ids)
        assert predict(model, tmp_path, rec, "--content-type", RECORDIO, "--batch-size", "4") == \
            invoke(server, rec, RECORDIO)


def test_ntm_predict_equals_invocations(tmp_path: Path) -> None:
    model = FIXTURES / "ntm_tiny" / "model"
    rows = np.random.default_rng(3).poisson(1.5, (5, 12)).astype(np.float32)
    csv = "".join(",".join(str(int(v)) for v in row) + "\n" for row in rows).encode()
    rec = records([{"values": row} for row in rows])
    with serving(model, tmp_path / "server.log") as server:
        # batches of 2 against one of 5: the matrix products round differently with the number of
        # rows on some CPUs (a BLAS kernel per row count), so equal to float32 rounding, row by row
        batched = predict(model, tmp_path, csv, "--content-type", CSV, "--accept", JSONLINES, "--batch-size", "2")
        whole = invoke(server, csv, CSV, JSONLINES)
        assert len(batched.splitlines()) == len(whole.splitlines()) == len(rows)
        for ours, theirs in zip(batched.splitlines(), whole.splitlines()):
            np.testing.assert_allclose(json.loads(ours)["topic_weights"], json.loads(theirs)["topic_weights"],
                                       rtol=1e-6, atol=1e-7)
        assert predict(model, tmp_path, csv, "--content-type", CSV) == invoke(server, csv, CSV)  # JSON: one request
        assert predict(model, tmp_path, rec, "--content-type", RECORDIO, "--accept", RECORDIO) == \
            invoke(server, rec, RECORDIO, RECORDIO)


def test_the_image_serve_executable_detects_the_algorithm(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    root.mkdir()
    (root / "model").symlink_to(FIXTURES / "ntm_tiny" / "model", target_is_directory=True)
    with serving(root / "model", tmp_path / "server.log", [sys.executable, str(REPO / "serve")],
                 {"SAGEMAKER_BASE_DIR": str(root)}) as server:
        assert server.ping() == 200
    assert "holds a ntm model" in server.log()


def test_a_model_that_cannot_load_stops_the_server_with_one_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.bin").write_bytes(b"not a fastText model at all")
    result = subprocess.run([*SAGETEXT, "serve", "--model-dir", str(model), "--port", str(free_port())],
                            env=cli_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("sagetext serve: cannot load")]
    assert len(lines) == 1 and str(model) in lines[0] and "model.bin" in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def fasttext_test(model: Path, path: Path, k: int) -> tuple[int, float, float]:
    fasttext = pytest.importorskip("fasttext")
    return fasttext.load_model(str(model / "model.bin")).test(str(path), k)


def test_supervised_test_matches_fasttext_test(supervised_job, tmp_path: Path) -> None:  # noqa: ANN001
    """N, P@k and R@k as fastText's ``test`` gives them on the same model and file, with lines
    of two labels, labels the model never saw, lines without a label and blank lines."""
    lines = (SAMPLES / "validation.txt").read_text().splitlines()
    labels = sorted({line.split()[0] for line in lines})
    mixed = []
    for i, line in enumerate(lines):
        if i % 5 == 1:
            line = f"{labels[(i // 5) % len(labels)]} {line}"  # a second label
        elif i % 5 == 2:
            line = f"{line} __label__never_seen"
        elif i % 5 == 3:
            line = "__label__never_seen " + line.split(" ", 1)[1]  # no known label: left out
        mixed.append(line)
    path = tmp_path / "test.txt"
    path.write_text("\n".join(mixed[:40]) + "\n\n" + "\n".join(mixed[40:]) + "\n")
    for k in (1, 2, 3):
        result = subprocess.run([*SAGETEXT, "test", "--model-dir", str(supervised_job.model), "--input", str(path),
                                 "-k", str(k)], env=cli_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        n, precision, recall = fasttext_test(supervised_job.model, path, k)
        assert result.stdout == f"N\t{n}\nP@{k}\t{precision:.3g}\nR@{k}\t{recall:.3g}\n"

    from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor
    from sagetext.evaluate import precision_recall

    scores = precision_recall(SupervisedPredictor.load(supervised_job.model), path, 2)
    assert (scores.examples, scores.precision, scores.recall) == pytest.approx(
        fasttext_test(supervised_job.model, path, 2), abs=1e-12)


def test_seq2seq_test_bleu_equals_sacrebleu_on_the_predicted_translations(tmp_path: Path) -> None:
    import sacrebleu

    model = FIXTURES / "seq2seq_tiny" / "model"
    sources = digit_lines(40, seed=5)
    (tmp_path / "test.src").write_text("\n".join(sources) + "\n")
    (tmp_path / "test.trg").write_text("\n".join(reverse(s) for s in sources) + "\n")
    result = subprocess.run([*SAGETEXT, "test", "--model-dir", str(model), "--input", str(tmp_path / "test.src"),
                             "--reference", str(tmp_path / "test.trg"), "--translations", str(tmp_path / "hyp")],
                            env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    predicted = predict(model, tmp_path, (tmp_path / "test.src").read_bytes(), "--content-type", "text/plain")
    hypotheses = [json.loads(line)["target"] for line in predicted.splitlines()]
    assert (tmp_path / "hyp").read_text().splitlines() == hypotheses
    expected = sacrebleu.corpus_bleu(hypotheses, [[reverse(s) for s in sources]])
    assert result.stdout.splitlines()[0] == str(expected)
    assert result.stdout.splitlines()[1].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


def test_ntm_test_reproduces_trainings_test_channel_figures(ntm_job) -> None:  # noqa: ANN001
    test_file = ntm_job.root / "input" / "data" / "test" / "test.csv"
    result = subprocess.run([*SAGETEXT, "test", "--model-dir", str(ntm_job.model), "--input", str(test_file),
                             "--seed", "5"], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = dict(line.split("\t") for line in result.stdout.splitlines())
    logged = dict(re.findall(r"#(test:\w+): ([-+0-9.eE]+)", ntm_job.log))
    assert figures["N"] == "60"
    assert float(figures["test:perplexity"]) == pytest.approx(float(logged["test:perplexity"]), rel=1e-5)
    assert float(figures["test:total_loss"]) == pytest.approx(float(logged["test:total_loss"]), rel=1e-5)
    assert 0.0 < float(figures["tu"]) <= 1.0 and -1.0 <= float(figures["npmi"]) <= 1.0
