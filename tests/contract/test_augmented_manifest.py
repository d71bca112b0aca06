"""BlazingText supervised on an augmented manifest through the real ``train`` executable.

Pipe mode as SageMaker streams a manifest with ``AttributeNames: ["source", "label"]`` and
``RecordWrapperType: RecordIO``: each attribute value of each manifest line is its own RecordIO
record (SageMaker's own writer), source then label, written into the channel's FIFO
``train_0``. File mode gets the manifest's JSON lines. Labels are as in AWS's BlazingText
documentation: ``"label": 1``, or a list for several labels. Both jobs must train the very
same model as the equivalent ``__label__`` text file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sagemaker_training import recordio as sdk_recordio

from tests.conftest import REPO, FakeOptMl

SAMPLE = REPO / "samples" / "blazingtext"
HYPERPARAMETERS = {"mode": "supervised", "epochs": "5", "learning_rate": "0.5", "min_count": "1",
                   "vector_dim": "10", "buckets": "20000", "word_ngrams": "2"}


def manifest(text_file: Path, numbers: dict[str, int]) -> list[dict]:
    """The ``__label__`` lines of ``text_file`` as manifest lines with numeric labels (``numbers``,
    extended as new labels appear); every fifth line gives its label as a one-element list,
    every seventh adds label 0."""
    lines = []
    for i, line in enumerate(text_file.read_text("utf-8").splitlines()):
        label, source = line.split(" ", 1)
        number = numbers.setdefault(label, len(numbers) + 1)
        value: int | list[int] = [number, 0] if i % 7 == 0 else [number] if i % 5 == 0 else number
        lines.append({"source": source, "label": value})
    return lines


def as_text(lines: list[dict]) -> str:
    """The same lines as fastText ``__label__`` text."""
    def labels(value: int | list[int]) -> str:
        return " ".join(f"__label__{n}" for n in (value if isinstance(value, list) else [value]))
    return "".join(f"{labels(line['label'])} {line['source']}\n" for line in lines)


def attribute_stream(lines: list[dict]) -> bytes:
    """What SageMaker writes into the FIFO: per manifest line, the source record then the label
    record, each attribute value as JSON, framed by SageMaker's own RecordIO writer."""
    out = io.BytesIO()
    for line in lines:
        for attribute in ("source", "label"):
            sdk_recordio._write_recordio(out, json.dumps(line[attribute]).encode("utf-8"))
    return out.getvalue()


def configure(opt_ml: FakeOptMl, name: str, mode: str, content_type: str, wrapper: str = "None") -> None:
    config_file = opt_ml.root / "input" / "config" / "inputdataconfig.json"
    config = json.loads(config_file.read_text())
    config[name].update({"TrainingInputMode": mode, "ContentType": content_type, "RecordWrapperType": wrapper})
    config_file.write_text(json.dumps(config))


def run_train(opt_ml: FakeOptMl) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(opt_ml.root), "SAGETEXT_ALGORITHM": "blazingtext",
           "SAGETEXT_DEVICE": "cpu", "SAGETEXT_PIPE_WAIT_SECONDS": "120"}
    return subprocess.run([sys.executable, str(REPO / "train")], env=env, capture_output=True, text=True,
                          timeout=600)


def job(root: Path, train: dict[str, str | bytes], validation: dict[str, str | bytes],
        content_type: str) -> FakeOptMl:
    opt_ml = FakeOptMl(root)
    opt_ml.hyperparameters(HYPERPARAMETERS)
    opt_ml.channel("train", train)
    opt_ml.channel("validation", validation)
    configure(opt_ml, "train", "File", content_type)
    configure(opt_ml, "validation", "File", content_type)
    return opt_ml


@pytest.mark.slow
def test_pipe_and_file_mode_manifests_train_the_model_of_the_text_file(tmp_path: Path) -> None:
    numbers: dict[str, int] = {}
    train, validation = manifest(SAMPLE / "train.txt", numbers), manifest(SAMPLE / "validation.txt", numbers)
    jsonl = "application/jsonlines"
    text_job = job(tmp_path / "text", {"train.txt": as_text(train)}, {"validation.txt": as_text(validation)},
                   "text/plain")
    file_job = job(tmp_path / "file", {"train.jsonl": "".join(json.dumps(line) + "\n" for line in train)},
                   {"validation.jsonl": "".join(json.dumps(line) + "\n" for line in validation)}, jsonl)

    pipe_job = job(tmp_path / "pipe", {}, {"validation.jsonl": "".join(json.dumps(line) + "\n"
                                                                        for line in validation)}, jsonl)
    configure(pipe_job, "train", "Pipe", jsonl, wrapper="RecordIO")
    fifo = pipe_job.root / "input" / "data" / "train_0"
    os.mkfifo(fifo)
    stream = attribute_stream(train)

    def feed() -> None:
        with open(fifo, "wb") as f:  # blocks until train opens the FIFO
            f.write(stream)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    results = {name: run_train(opt_ml) for name, opt_ml in
               (("pipe", pipe_job), ("file", file_job), ("text", text_job))}
    writer.join(timeout=10)
    for name, result in results.items():
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
        assert "skipped" not in result.stdout + result.stderr, name  # every line was read
    model = (text_job.model / "model.bin").read_bytes()
    assert (file_job.model / "model.bin").read_bytes() == model
    assert (pipe_job.model / "model.bin").read_bytes() == model
    accuracy = [line for line in results["pipe"].stdout.splitlines() if "#validation_accuracy:" in line]
    assert accuracy and float(accuracy[-1].rsplit(" ", 1)[1]) > 0.8, results["pipe"].stdout
