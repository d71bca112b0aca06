"""The real ``train`` executable on channels whose files are gzip, bzip2 or xz, told by their
content (not their names), for every algorithm; zip, zstd and random bytes are refused with a
``ClientError`` naming the file instead of being trained on as text."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, FakeOptMl, RunTrain
from tests.unit.test_seq2seq import write_corpus

SAMPLE = REPO / "samples" / "blazingtext"
SUPERVISED = {"mode": "supervised", "epochs": "10", "learning_rate": "0.5", "min_count": "1", "vector_dim": "16"}
CBOW = {"mode": "cbow", "epochs": "1", "min_count": "1", "vector_dim": "8", "evaluation": "false"}
NTM = {"feature_dim": "24", "num_topics": "2", "epochs": "2", "mini_batch_size": "32", "optimizer": "adam",
       "learning_rate": "0.01", "encoder_layers": "[8]"}
SEQ2SEQ = {"rnn_num_hidden": "16", "num_embed_source": "8", "num_embed_target": "8", "batch_size": "32",
           "checkpoint_frequency_num_batches": "5", "max_num_batches": "5", "bleu_sample_size": "0"}
WORDS = [f"word{i}" for i in range(24)]


def ntm_csv(count: int, seed: int) -> bytes:
    """Word counts of two "topics" (the first and the second half of 24 words)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        weights = np.full(24, 0.02)
        weights[(i % 2) * 12:(i % 2 + 1) * 12] = 1.0
        rows.append(",".join(map(str, rng.multinomial(20, weights / weights.sum()))))
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def seq2seq_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("digits"), train=300, validation=20)


def test_blazingtext_supervised_trains_on_xz_and_bzip2(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(SUPERVISED)
    opt_ml.channel("train", {"train.txt": lzma.compress((SAMPLE / "train.txt").read_bytes())})  # xz named .txt
    opt_ml.channel("validation", {"validation": bz2.compress((SAMPLE / "validation.txt").read_bytes())})
    result = run_train(opt_ml, "blazingtext", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    accuracy = re.search(r"#validation_accuracy: ([0-9.]+)", result.stdout)
    assert accuracy and float(accuracy.group(1)) > 0.8, result.stdout  # the text itself was read


def test_blazingtext_word2vec_trains_on_gzip(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(CBOW)
    text = (SAMPLE / "train.txt").read_bytes()
    opt_ml.channel("train", {"corpus": gzip.compress(text)})
    result = run_train(opt_ml, "blazingtext", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    words = {line.split(" ", 1)[0] for line in (opt_ml.model / "vectors.txt").read_text().splitlines()[1:]}
    assert words - {"</s>"} == set(text.decode().split())  # the words themselves, not bytes of gzip


def test_ntm_trains_on_gzip_bzip2_and_xz(opt_ml: FakeOptMl, run_train: RunTrain) -> None:
    opt_ml.hyperparameters(NTM)
    opt_ml.channel("train", {"a.csv": gzip.compress(ntm_csv(150, 0)), "b.csv": bz2.compress(ntm_csv(150, 1))})
    opt_ml.channel("validation", {"validation.csv.gz": lzma.compress(ntm_csv(40, 2))})  # xz, whatever its name
    opt_ml.channel("auxiliary", {"vocab.txt": lzma.compress(("\n".join(WORDS) + "\n").encode())})
    result = run_train(opt_ml, "ntm", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"#validation:total_loss: [0-9.]+", result.stdout)
    topics = json.loads((opt_ml.model / "topics.json").read_text())
    assert set(json.dumps(topics).split('"')) & set(WORDS), topics  # topics are shown with the vocabulary's words


def test_seq2seq_trains_on_compressed_recordio_and_vocabularies(opt_ml: FakeOptMl, seq2seq_files: dict[str, Path],
                                                                run_train: RunTrain) -> None:
    opt_ml.hyperparameters(SEQ2SEQ)
    opt_ml.channel("train", {"train.rec": gzip.compress(seq2seq_files["train.rec"].read_bytes())})
    opt_ml.channel("validation", {"val.rec": bz2.compress(seq2seq_files["val.rec"].read_bytes())})
    opt_ml.channel("vocab", {"vocab.src.json": lzma.compress(seq2seq_files["vocab.src.json"].read_bytes()),
                             "vocab.trg.json": seq2seq_files["vocab.trg.json"].read_bytes()})
    result = run_train(opt_ml, "seq2seq", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"#validation:perplexity: [0-9.]+", result.stdout)
    saved = json.loads((opt_ml.model / "vocab.src.json").read_text())
    assert saved == json.loads(seq2seq_files["vocab.src.json"].read_text())


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("algorithm,case", [("blazingtext", "zip"), ("ntm", "zstd"), ("seq2seq", "random")])
def test_other_binary_files_are_refused_naming_the_file(opt_ml: FakeOptMl, algorithm: str, case: str,
                                                        seq2seq_files: dict[str, Path], run_train: RunTrain) -> None:
    if algorithm == "blazingtext":
        opt_ml.hyperparameters(SUPERVISED)
        opt_ml.channel("train", {"train.zip": zipped("train.txt", (SAMPLE / "train.txt").read_bytes())})
        needle = "channel 'train', file train.zip: is a zip archive"
    elif algorithm == "ntm":
        opt_ml.hyperparameters(NTM)
        opt_ml.channel("train", {"train.csv.zst": b"\x28\xb5\x2f\xfd\x20\x05\x29\x00\x00" + ntm_csv(10, 0)})
        needle = "channel 'train', file train.csv.zst: is zstd-compressed"
    else:
        opt_ml.hyperparameters(SEQ2SEQ)
        opt_ml.channel("train", {"train.rec": random.Random(0).randbytes(4096)})
        opt_ml.channel("validation", {"val.rec": seq2seq_files["val.rec"].read_bytes()})
        opt_ml.channel("vocab", {"vocab.src.json": seq2seq_files["vocab.src.json"].read_bytes(),
                                 "vocab.trg.json": seq2seq_files["vocab.trg.json"].read_bytes()})
        needle = "channel 'train', file train.rec: is not UTF-8 text or RecordIO but binary data"
    result = run_train(opt_ml, algorithm, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    failure = opt_ml.failure.read_text()
    assert failure.startswith(f"ClientError: {needle}"), failure
    assert "Traceback" not in result.stdout + result.stderr
    assert list(opt_ml.model.iterdir()) == []
