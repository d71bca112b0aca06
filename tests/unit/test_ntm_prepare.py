"""``sagetext ntm-prepare``: text documents -> vocab.txt and sparse RecordIO that NTM's channel
reader gives back as the same word counts, in the SageMaker SDK's exact Record bytes."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sagetext import cli
from sagetext.algorithms.ntm import prepare
from sagetext.contract.progress import Progress
from sagetext.data import bow


def prepared(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out"
    assert prepare.main([*args, "--output-dir", str(out)]) == 0
    return out


def read_back(path: Path, vocab: list[str]) -> list[dict[str, int]]:
    """Each Record of a .rec file as {word: count}, through NTM's own channel reader."""
    with open(path, "rb") as f:
        docs = list(bow.read_stream(io.BufferedReader(f), path.name, len(vocab), bow.RECORDIO))
    return [{vocab[int(i)]: int(c) for i, c in zip(d.ids, d.counts)} for d in docs]


def vocab_of(out: Path) -> list[str]:
    return (out / bow.VOCAB_FILE).read_text("utf-8").splitlines()


def test_lines_and_folders_round_trip_to_the_counts(tmp_path: Path) -> None:
    lines = tmp_path / "docs.txt"
    lines.write_text("Cats chase mice.<br />Cats sleep!\n\nDogs chase cats; dogs bark.\n", encoding="utf-8")
    folder = tmp_path / "more"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "2.txt").write_text("Mice sleep\nand mice squeak", encoding="utf-8")
    (folder / "1.txt").write_text("A dog's bark isn't a cat's purr.", encoding="utf-8")
    out = prepared(tmp_path, "--train", str(lines), str(folder), "--min-df", "1", "--max-df", "1")
    vocab = vocab_of(out)
    # Stop words ("and", "a"), tags, punctuation and contraction pieces ("isn", single letters) gone;
    # ordered by document frequency, then occurrences, then alphabetically.
    assert vocab == ["cats", "mice", "bark", "chase", "sleep", "dogs", "cat", "dog", "purr", "squeak"]
    assert read_back(out / prepare.TRAIN_FILE, vocab) == [
        {"cats": 2, "chase": 1, "mice": 1, "sleep": 1},
        {"dogs": 2, "chase": 1, "cats": 1, "bark": 1},
        {"bark": 1, "dog": 1, "cat": 1, "purr": 1},  # more/1.txt: a folder's files in name order
        {"mice": 2, "sleep": 1, "squeak": 1},  # more/b/2.txt: the whole file is one document
    ]
    assert not (out / prepare.VALIDATION_FILE).exists() and not (out / prepare.TEST_FILE).exists()


def test_records_are_the_bytes_the_sagemaker_sdk_writes(tmp_path: Path) -> None:
    from sagemaker_training import recordio as sdk

    text = tmp_path / "docs.txt"
    text.write_text("apple banana apple\nbanana cherry cherry cherry\napple\n", encoding="utf-8")
    out = prepared(tmp_path, "--train", str(text), "--min-df", "1", "--max-df", "1")
    vocab = vocab_of(out)
    rows = [Counter(line.split()) for line in text.read_text().splitlines()]
    matrix = sp.csr_matrix(np.array([[row[w] for w in vocab] for row in rows], dtype=np.float32))
    expected = io.BytesIO()
    sdk._write_spmatrix_to_sparse_tensor(expected, matrix)
    assert (out / prepare.TRAIN_FILE).read_bytes() == expected.getvalue()


def test_vocabulary_prunes_rare_and_frequent_words_and_keeps_the_most_common(tmp_path: Path) -> None:
    docs = ["common shared alpha", "common shared alpha beta", "common shared beta", "common gamma",
            "common rare", "shared alpha"]
    text = tmp_path / "docs.txt"
    text.write_text("\n".join(docs) + "\n", encoding="utf-8")
    # common: 5 of 6 documents (> 0.8); rare, gamma: 1 (< min-df 2); then by document frequency
    out = prepared(tmp_path, "--train", str(text), "--min-df", "2", "--max-df", "0.8", "--vocab-size", "2")
    assert vocab_of(out) == ["shared", "alpha"]
    got = read_back(out / prepare.TRAIN_FILE, vocab_of(out))
    assert got == [{"shared": 1, "alpha": 1}] * 2 + [{"shared": 1}, {"shared": 1, "alpha": 1}]


def test_documents_without_a_vocabulary_word_are_skipped_and_counted(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    text = tmp_path / "docs.txt"
    text.write_text("alpha beta\nthe and of\nbeta alpha\nzeta\n", encoding="utf-8")
    with caplog.at_level("INFO"):
        out = prepared(tmp_path, "--train", str(text), "--min-df", "2", "--max-df", "1")
    assert len(read_back(out / prepare.TRAIN_FILE, vocab_of(out))) == 2
    assert "train.rec: 2 documents, 4 tokens (2 documents skipped: no vocabulary word)" in caplog.text


def test_validation_fraction_holds_out_a_seeded_share_and_vocabulary_comes_from_train(tmp_path: Path) -> None:
    text = tmp_path / "docs.txt"
    text.write_text("".join(f"word{i % 7} filler{i % 3}\n".replace("0", "o").replace("1", "l")
                            .replace("2", "z").replace("3", "e").replace("4", "a").replace("5", "s")
                            .replace("6", "g") for i in range(200)), encoding="utf-8")
    args = ["--train", str(text), "--min-df", "1", "--max-df", "1", "--validation-fraction", "0.25"]
    out = prepared(tmp_path, *args)
    vocab = vocab_of(out)
    train, validation = read_back(out / prepare.TRAIN_FILE, vocab), read_back(out / prepare.VALIDATION_FILE, vocab)
    assert len(train) + len(validation) == 200 and 30 <= len(validation) <= 70
    again = tmp_path / "again"
    assert prepare.main([*args, "--output-dir", str(again)]) == 0
    assert (again / prepare.VALIDATION_FILE).read_bytes() == (out / prepare.VALIDATION_FILE).read_bytes()


def test_separate_validation_and_test_text_use_the_training_vocabulary(tmp_path: Path) -> None:
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("red green\ngreen blue\n", encoding="utf-8")
    test.write_text("blue purple blue\npurple\n", encoding="utf-8")
    out = prepared(tmp_path, "--train", str(train), "--validation", str(test), "--test", str(test),
                   "--min-df", "1", "--max-df", "1")
    assert read_back(out / prepare.TEST_FILE, vocab_of(out)) == [{"blue": 2}]  # "purple" is not in train
    assert (out / prepare.VALIDATION_FILE).read_bytes() == (out / prepare.TEST_FILE).read_bytes()


@pytest.mark.parametrize(("args", "needle"), [
    (["--validation-fraction", "1.5"], "--validation-fraction 1.5: expected a number in [0, 1)"),
    (["--max-df", "0"], "--max-df 0.0: expected a fraction in (0, 1]"),
    (["--min-df", "0"], "--min-df 0: expected an integer >= 1"),
    (["--stop-words", "nowhere.txt"], "--stop-words nowhere.txt: expected 'english', 'none' or a file"),
    (["--min-df", "50"], "no word is in at least --min-df=50"),
])
def test_mistakes_are_one_line_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 args: list[str], needle: str) -> None:
    text = tmp_path / "docs.txt"
    text.write_text("alpha beta\n", encoding="utf-8")
    code = cli.main(["ntm-prepare", "--train", str(text), "--output-dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("sagetext ntm-prepare: ") and needle in err and "Traceback" not in err


def test_missing_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ntm-prepare", "--train", str(tmp_path / "absent"), "--output-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'absent'}: no such file or folder" in capsys.readouterr().err


def imdb_reviews(shared: Path, count: int, folder: Path) -> list[Path]:
    """The first ``count`` raw reviews of the IMDB archive, one file each, under ``folder``."""
    files = []
    with tarfile.open(shared / "imdb" / "aclImdb_v1_text_only.tar.xz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[2] in ("pos", "neg"):
                path = folder / parts[1] / parts[2] / parts[3]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.extractfile(member).read())
                files.append(path)
                if len(files) == count:
                    break
    return files


def test_real_reviews_round_trip_through_the_cli(shared_data: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    files = imdb_reviews(shared_data, 300, tmp_path / "imdb")
    out = tmp_path / "out"
    with caplog.at_level("INFO"):
        code = cli.main(["ntm-prepare", "--train", str(tmp_path / "imdb"), "--vocab-size", "500",
                         "--output-dir", str(out)])
    assert code == 0
    vocab = vocab_of(out)
    assert len(vocab) == 500 and "br" not in vocab and "the" not in vocab
    got = read_back(out / prepare.TRAIN_FILE, vocab)
    tokenize = prepare.Tokenizer(prepare.stop_words("english"))
    expected = []
    for path in sorted(files):
        counts = Counter(w for w in tokenize(path.read_text("utf-8")) if w in set(vocab))
        if counts:
            expected.append(dict(counts))
    assert got == expected
    tokens = sum(sum(doc.values()) for doc in got)
    assert f"train.rec: {len(got)} documents, {tokens} tokens" in caplog.text
    assert "vocab.txt: 500 words" in caplog.text and "Train with feature_dim=500" in caplog.text


def test_reading_logs_progress_with_the_share_read_and_an_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    lines = tmp_path / "docs.txt"
    lines.write_text("apple banana\n\ncherry apple\n", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("one whole document\nover two lines", encoding="utf-8")
    monkeypatch.setattr(prepare, "Progress", lambda total: Progress(total, interval=0.0))
    with caplog.at_level("INFO", logger=prepare.log.name):
        texts = list(prepare.read_documents([lines, folder]))
    assert texts == ["apple banana\n", "cherry apple\n", "one whole document\nover two lines"]
    progress = [r.getMessage() for r in caplog.records if "documents/s" in r.getMessage()]
    assert progress[0].startswith("1 documents") and "% read, ETA" in progress[0]
    assert progress[-1].startswith("3 documents") and "100.0% read" in progress[-1]
