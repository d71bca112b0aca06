"""A reused checkpoint folder never hands back another job's model: the real
``train`` executable, with one checkpoint folder for consecutive jobs, as users give one
``checkpoint_s3_uri`` to many jobs.

A job that finishes marks its checkpoint so; the next job in the folder trains afresh on its own
data, whether that differs or not, and says why in one line. A job stopped by SIGTERM is still
resumed (``test_training_faults.py``). All five trainers: NTM, Seq2Seq, BlazingText supervised
and word2vec with each engine (gensim, and the PyTorch engine on CPU).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import FakeOptMl
from tests.reliability.conftest import DEFAULT_HP, SAMPLE, lay_out, ntm_rows, seq2seq_corpus
from tests.reliability.faults import RESUMED, model_state, run_job

pytestmark = pytest.mark.slow

TORCH_ENGINE = {"SAGETEXT_WORD2VEC_ENGINE": "torch"}
TRAINERS = {"ntm": ("ntm", None), "seq2seq": ("seq2seq", None), "supervised": ("supervised", None),
            "word2vec-gensim": ("word2vec", None), "word2vec-torch": ("word2vec", TORCH_ENGINE)}
# The second job's data in test (a): BlazingText's sample with every label moved on to the next.
ROTATED = {"__label__cooking": "__label__sports", "__label__sports": "__label__weather",
           "__label__weather": "__label__cooking"}
IGNORED = "Not resuming the checkpoint in "


def reusing(work: Path, algorithm: str, folder: Path, other_data: bool = False) -> FakeOptMl:
    """A tiny job of ``algorithm`` laid out under ``work`` whose checkpoints go to ``folder``;
    with ``other_data``, on other training data (for BlazingText supervised: rotated labels)."""
    opt_ml = FakeOptMl(work / "opt_ml")
    lay_out(algorithm, opt_ml, DEFAULT_HP[algorithm], work)
    data = opt_ml.root / "input" / "data"
    if other_data and algorithm == "supervised":
        for name, source in (("train/train.txt", "train.txt"), ("validation/validation.txt", "validation.txt")):
            (data / name).write_text(rotate_labels((SAMPLE / source).read_text("utf-8")), "utf-8")
    elif other_data and algorithm == "word2vec":  # the sample's validation sentences instead of its training ones
        lines = (SAMPLE / "validation.txt").read_text("utf-8").splitlines()
        (data / "train" / "corpus.txt").write_text("".join(line.split(" ", 1)[1] + "\n" for line in lines))
    elif other_data and algorithm == "ntm":
        (data / "train" / "train.csv").write_text(ntm_rows(300, seed=5))
    elif other_data and algorithm == "seq2seq":
        (data / "train" / "train.rec").write_bytes(seq2seq_corpus(work / "other", train=200)["train.rec"].read_bytes())
    opt_ml.checkpoints(folder)
    return opt_ml


def rotate_labels(text: str) -> str:
    return "".join(f"{ROTATED[label]} {rest}" for label, rest in (line.split(" ", 1) for line in text.splitlines(True)))


def ignored_lines(log: str) -> list[str]:
    return [line[line.index(IGNORED):] for line in log.splitlines() if IGNORED in line]


def model_files(model_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in model_dir.iterdir()}


def accuracy(model_dir: Path, text: str) -> float:
    """How often the supervised model's top label is the line's label, over ``text``'s lines."""
    from sagetext.algorithms.blazingtext.supervised.predictor import SupervisedPredictor

    labels, sentences = zip(*(line.split(" ", 1) for line in text.splitlines()))
    answers = SupervisedPredictor.load(model_dir).classify(list(sentences), [1] * len(sentences))
    return sum(answer["label"] == [label] for answer, label in zip(answers, labels)) / len(labels)


@pytest.mark.parametrize("algorithm", ["ntm", "seq2seq", "supervised", "word2vec"])
def test_a_finished_jobs_checkpoint_is_not_resumed_by_a_job_on_other_data(algorithm: str, tmp_path: Path) -> None:
    """(a) The second job, same hyperparameters, other data: it trains on its own data."""
    folder = tmp_path / "checkpoints"
    first = reusing(tmp_path / "first", algorithm, folder)
    done = run_job(first, algorithm)
    assert done.returncode == 0, done.stdout + done.stderr
    second = reusing(tmp_path / "second", algorithm, folder, other_data=True)
    result = run_job(second, algorithm)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    different = "channel files and vocabulary" if algorithm == "supervised" else "channel files"
    expected = (f"its job finished; it was made from other data (different {different}); training afresh (this "
                "job's checkpoints replace it)")
    assert [line.split(": ", 1)[1] for line in ignored_lines(log)] == [expected], log
    assert not re.search(RESUMED, log), log
    assert model_state(algorithm, second.model) == "complete"
    assert model_files(second.model) != model_files(first.model)
    if algorithm == "supervised":  # the second model learnt the rotated labels, the first the original ones
        text = (SAMPLE / "train.txt").read_text("utf-8")
        assert accuracy(first.model, text) > 0.9
        assert accuracy(second.model, rotate_labels(text)) > 0.9
    if algorithm == "word2vec":  # the second model's words are the second corpus' words
        from sagetext.algorithms.blazingtext.word2vec.vectors import VECTORS_BIN, read_vectors

        corpus = (second.root / "input" / "data" / "train" / "corpus.txt").read_text("utf-8")
        assert set(read_vectors(second.model / VECTORS_BIN).words) == set(corpus.split())


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_finished_jobs_checkpoint_is_not_resumed_by_the_same_job_again(trainer: str, tmp_path: Path) -> None:
    """(b) The same job again, on the same data, after the first finished: it trains afresh,
    saving as many checkpoints as the first, and says that the checkpoint's job finished."""
    algorithm, env = TRAINERS[trainer]
    folder = tmp_path / "checkpoints"
    first = run_job(reusing(tmp_path / "first", algorithm, folder), algorithm, env)
    first_log = first.stdout + first.stderr
    assert first.returncode == 0 and "Marked the checkpoint in" in first_log, first_log
    second_job = reusing(tmp_path / "second", algorithm, folder)
    second = run_job(second_job, algorithm, env)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    expected = f"{IGNORED}{folder}: its job finished; training afresh (this job's checkpoints replace it)"
    assert ignored_lines(log) == [expected], log
    assert not re.search(RESUMED, log), log
    assert log.count("Saved checkpoint") == first_log.count("Saved checkpoint") > 0, log
    assert model_state(algorithm, second_job.model) == "complete"
