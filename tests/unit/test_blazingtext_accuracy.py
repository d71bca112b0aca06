"""BlazingText supervised against fastText trained in the test on the same real slices, where
accuracy used to slip: short lines (AG News titles and descriptions, 4 classes) and short lines
with many classes (IMDB reviews cut to their first 20 tokens, labelled with their 8 star
ratings). Same settings for both tools (dim 10, lr 0.5, word bigrams, 5 epochs, min_count 1);
fastText with 2 threads, 3 runs, as its own spread. And the compiled SGD against fastText's
own training, from the same initial weights."""

from __future__ import annotations

import csv
import io
import lzma
import random
import statistics
import sys
from pathlib import Path
from typing import Any

import fasttext
import numpy as np
import pytest

from sagetext.algorithms import get
from sagetext.algorithms.blazingtext.supervised import checkpoint, compiled
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.paths import Paths
from tests.conftest import REPO, SHARED_DATA

AG_NEWS = SHARED_DATA / "text_classification" / "ag_news" / "test.csv.xz"
SETTINGS = {"dim": 10, "lr": 0.5, "wordNgrams": 2, "epoch": 5, "minCount": 1, "bucket": 2_000_000}
HYPERPARAMETERS = {"mode": "supervised", "vector_dim": "10", "learning_rate": "0.5", "word_ngrams": "2",
                   "epochs": "5", "min_count": "1", "buckets": "2000000"}
TOLERANCE = 0.01  # below fastText's median: its own spread here is about 0.5 points


def train_ours(tmp_path: Path, train: Path) -> Path:
    """Train in-process (the compiled SGD when built); the path of the model.bin."""
    folder = tmp_path / "input" / "data" / "train"
    folder.mkdir(parents=True)
    (folder / train.name).symlink_to(train)
    hp = parse(HYPERPARAMETERS, Spec.load("blazingtext"))
    ctx = TrainingContext(hp, {"train": Channel("train", paths=Paths(tmp_path))}, tmp_path / "model",
                          tmp_path / "output", Checkpoints(None, hp))
    get("blazingtext").train(ctx)
    return ctx.model_dir / "model.bin"


def ours(tmp_path: Path, train: Path, test: Path) -> float:
    return fasttext.load_model(str(train_ours(tmp_path, train))).test(str(test))[1]


def fasttexts(train: Path, test: Path, runs: int = 3) -> list[float]:
    return [fasttext.train_supervised(str(train), thread=2, verbose=0, seed=seed, **SETTINGS).test(str(test))[1]
            for seed in range(runs)]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def ag_news(folder: Path) -> tuple[Path, Path]:
    """AG News (its official test split) shuffled and cut 80/20: train and test files."""
    if not AG_NEWS.exists():
        pytest.skip(f"AG News not found at {AG_NEWS} (the shared data sets sit beside the checkout)")
    sys.path.insert(0, str(REPO / "bench"))
    from imdb_data import normalise

    with lzma.open(AG_NEWS, "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    lines = [f"__label__{label} {normalise(' '.join(fields).replace(chr(92), ' '))}\n" for label, *fields in rows]
    random.Random(0).shuffle(lines)
    return _write(folder / "ag.train", lines[:6080]), _write(folder / "ag.test", lines[6080:])


@pytest.mark.slow
@pytest.mark.data
def test_short_lines_ag_news(tmp_path: Path) -> None:
    train, test = ag_news(tmp_path)
    reference = fasttexts(train, test)
    accuracy = ours(tmp_path / "ours", train, test)
    assert accuracy >= statistics.median(reference) - TOLERANCE, (accuracy, reference)
    assert accuracy > 0.8  # 4 balanced classes (measured: about 0.867, fastText 0.869)


@pytest.mark.slow
@pytest.mark.data
def test_short_lines_many_classes_imdb_ratings(tmp_path: Path) -> None:
    if not (SHARED_DATA / "imdb").is_dir():
        pytest.skip(f"IMDB not found under {SHARED_DATA} (the shared data sets sit beside the checkout)")
    sys.path.insert(0, str(REPO / "bench"))
    from imdb_data import prepare

    def short(path: Path, count: int) -> list[str]:
        with path.open(encoding="utf-8") as f:
            return [" ".join(line.split()[:21]) + "\n" for line, _ in zip(f, range(count))]

    full_train, full_test = prepare("rating")
    train = _write(tmp_path / "rating.train", short(full_train, 12_000))
    test = _write(tmp_path / "rating.test", short(full_test, 6_000))
    reference = fasttexts(train, test)
    accuracy = ours(tmp_path / "ours", train, test)
    assert accuracy >= statistics.median(reference) - TOLERANCE, (accuracy, reference)
    assert accuracy > 0.22  # 8 classes, the largest about 20 %


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not compiled.available(), reason="the _sgd extension is not built")
def test_from_fasttexts_initial_weights_the_compiled_sgd_ends_where_fasttext_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-line SGD is fastText's own (line order, rate decay, softmax gradient, 1/inputs
    scaling): given fastText's initial weights, ours ends where fastText with one thread (the
    same lines in the same order, no Hogwild) ends, up to its rate being held for 100 tokens at
    a time where ours falls line by line. Measured on this slice: every prediction the same,
    output weights within 4e-5 of their largest; training at a 1 % higher rate instead moves
    them by 5e-3."""
    train, test = ag_news(tmp_path)
    seed = 3
    start = fasttext.train_supervised(str(train), thread=1, verbose=0, seed=seed, **{**SETTINGS, "lr": 0.0, "epoch": 1})
    words, initial = start.get_words(), start.get_input_matrix()  # a rate of 0 leaves the initial weights
    resume = checkpoint.resume

    def from_fasttexts_start(ctx: TrainingContext, dictionary: Any, model: Any, *args: Any) -> Any:
        state = resume(ctx, dictionary, model, *args)
        row = {word.encode(): i for i, word in enumerate(words)}
        assert dictionary.nwords == len(words)
        ordered = np.concatenate([initial[[row[word] for word in dictionary.words]], initial[len(words):]])
        model.load_fasttext_(ordered, np.zeros((dictionary.nlabels, initial.shape[1]), dtype=np.float32))
        return state

    monkeypatch.setattr(checkpoint, "resume", from_fasttexts_start)
    trained = fasttext.load_model(str(train_ours(tmp_path / "ours", train)))
    reference = fasttext.train_supervised(str(train), thread=1, verbose=0, seed=seed, **SETTINGS)

    lines = [line.split(" ", 1)[1].rstrip("\n") for line in test.read_text(encoding="utf-8").splitlines(True)]
    same = np.mean([a == b for a, b in zip(trained.predict(lines)[0], reference.predict(lines)[0])])
    assert same >= 0.998, same
    label_row = {label: i for i, label in enumerate(trained.get_labels())}
    ours_output = trained.get_output_matrix()[[label_row[label] for label in reference.get_labels()]]
    difference = np.abs(ours_output - reference.get_output_matrix()).max()
    assert difference <= 1e-3 * np.abs(reference.get_output_matrix()).max(), difference
