"""What the training fault tests share: the jobs, running and watching the real ``train``
executable, judging a model's quality and reading checkpoints (``test_training_faults.py``
for one worker, ``test_distributed_faults.py`` for two)."""

from __future__ import annotations

import functools
import lzma
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA, FakeOptMl, run_train_executable, train_command, train_env
from tests.reliability.conftest import DEFAULT_HP, SECRET_ENV, SPEC_NAME, lay_out

SEED = int(os.environ.get("SAGETEXT_FAULT_SEED", random.SystemRandom().randrange(1 << 30)))
WORD2VEC_HP = {"mode": "cbow", "epochs": "5", "vector_dim": "32", "min_count": "5"}  # learning_rate 0.05
JOBS = {
    "ntm": {**DEFAULT_HP["ntm"], "epochs": "20", "num_patience_epochs": "50"},  # no early stop
    "seq2seq": {**DEFAULT_HP["seq2seq"], "max_num_batches": "160", "checkpoint_frequency_num_batches": "20"},
    "supervised": {**DEFAULT_HP["supervised"], "epochs": "20"},  # BlazingText supervised
    "word2vec": WORD2VEC_HP,  # BlazingText cbow
}
# saved by an uninterrupted run (every epoch; every 20 of 160 batches)
CHECKPOINTS = {"ntm": 20, "seq2seq": 8, "supervised": 20, "word2vec": 5}
REPEAT = {"ntm": 4, "seq2seq": 1, "supervised": 30, "word2vec": 1}  # so that an epoch is not instant
INCOMPATIBLE = {"ntm": ("num_topics", "4"), "seq2seq": ("rnn_num_hidden", "24"), "supervised": ("vector_dim", "12"),
                "word2vec": ("window_size", "3")}
COMPATIBLE = {"ntm": ("epochs", "21"), "seq2seq": ("max_num_batches", "180"), "supervised": ("epochs", "21"),
              "word2vec": ("epochs", "2")}
SHORT = {"ntm": {"epochs": "2"}, "seq2seq": {"max_num_batches": "20"}, "supervised": {"epochs": "2"},
         "word2vec": {"epochs": "1"}}
RESUMED = r"Resuming from checkpoint: epoch (\d+), step (\d+)"  # every trainer's one line
# word2vec quality: Spearman's rho on MEN-3k and WS-353. On this slice an uninterrupted run gets
# about 0.25 (±0.01); one whose resumed part started from fresh weights (3 of 5 epochs) about 0.11.
WORD2VEC_WORDS = 1_200_000
WORD2VEC_RHO_TOLERANCE = 0.06
WORDSIM = ("EN-MEN-TR-3k.txt", "EN-WS-353-ALL.txt")
GENSIM = {"SAGETEXT_WORD2VEC_ENGINE": "gensim"}  # the default engine; the PyTorch one: test_word2vec_torch.py
ALGORITHMS = [pytest.param(a, marks=pytest.mark.data) if a == "word2vec" else a for a in JOBS]  # data: ../shared/data


def resume_point(checkpoint: dict) -> tuple[str, str]:
    """What the resume line must say for a checkpoint: its 1-based epoch and its step."""
    return str(int(checkpoint["position"]["epoch"]) + 1), str(int(checkpoint["position"]["step"]))


def job(tmp_path: Path, algorithm: str, hp: Mapping[str, str] | None = None) -> FakeOptMl:
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    if algorithm == "word2vec":
        opt_ml.hyperparameters(dict(hp or JOBS[algorithm]))
        opt_ml.channel("train", {"text8-slice.txt": text8_slice()})
    else:
        lay_out(algorithm, opt_ml, hp or JOBS[algorithm], tmp_path, repeat=REPEAT[algorithm])
    opt_ml.checkpoints(tmp_path / "checkpoints")
    return opt_ml


@functools.lru_cache(maxsize=1)
def text8_slice() -> bytes:
    """The first 1.2M words of the shared text8-like corpus (one line, as text8 is)."""
    source = SHARED_DATA / "wiki_en_text8like" / "wiki2015_text8like.xz"
    if not source.is_file():
        pytest.skip(f"the word2vec fault tests need the shared text8-like corpus, not found at {source}")
    with lzma.open(source) as f:
        words = f.read(WORD2VEC_WORDS * 7).split()[:WORD2VEC_WORDS]
    return b" ".join(words)


def run_job(opt_ml: FakeOptMl, algorithm: str, env: Mapping[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_train_executable(opt_ml, SPEC_NAME[algorithm], {**SECRET_ENV, **GENSIM, **(env or {})}, timeout)


def quality(algorithm: str, log: str, model_dir: Path) -> float:
    """Lower is better: NTM's last validation loss; Seq2Seq's best validation perplexity;
    BlazingText's validation error (1 - accuracy) + 1; word2vec's 1 - rho on word similarity."""
    if algorithm == "ntm":
        return float(re.findall(r"#validation:total_loss: ([0-9.e+-]+)", log)[-1])
    if algorithm == "supervised":
        return 2 - float(re.findall(r"#validation_accuracy: ([0-9.e+-]+)", log)[-1])
    if algorithm == "word2vec":
        return 1 - word_similarity(model_dir)
    return min(float(v) for v in re.findall(r"Validation-perplexity=([0-9.e+-]+)", log))


def as_good(algorithm: str, ours: float, reference: float, slack: float | None = None) -> bool:
    """``ours`` at most ``slack`` worse than ``reference`` (lower is better): by default 10% of
    it, for word2vec WORD2VEC_RHO_TOLERANCE of rho."""
    if slack is None:
        slack = WORD2VEC_RHO_TOLERANCE if algorithm == "word2vec" else 0.10 * reference
    return ours <= reference + slack


def word_similarity(model_dir: Path) -> float:
    """Mean Spearman's rho of the model's vectors on MEN-3k and WS-353 (shared data)."""
    from sagetext.algorithms.blazingtext.word2vec import evaluation
    from sagetext.algorithms.blazingtext.word2vec.vectors import VECTORS_BIN, read_vectors

    vectors = read_vectors(model_dir / VECTORS_BIN)
    scores = [evaluation.similarity_score(SHARED_DATA / "word_similarity" / name, vectors.vector)["spearmans_rho"]
              for name in WORDSIM]
    return float(sum(scores) / len(scores))


def load_checkpoint(algorithm: str, folder: Path, hp: Mapping[str, str] | None = None) -> dict:
    """The whole checkpoint in ``folder`` (position, hyperparameters, state), checked to be the
    one of this job's ``hp`` and readable."""
    from sagetext.contract.checkpoints import FILE_NAME, read
    from sagetext.contract.hyperparameters import Spec, parse

    checkpoint = read(folder / FILE_NAME)
    job_hp = parse(dict(hp or JOBS[algorithm]), Spec.load(SPEC_NAME[algorithm]))
    assert checkpoint["hyperparameters"] == job_hp.as_strings()
    return checkpoint


def killed_after_the_last_checkpoint(opt_ml: FakeOptMl, folder: Path) -> None:
    """Undo what a finished job did after its last checkpoint (the model, ``output/success`` and
    the mark that its checkpoint is a finished job's), as if it had been killed just before."""
    from sagetext.contract.checkpoints import FINISHED_FILE

    for path in opt_ml.model.iterdir():
        path.unlink()
    (opt_ml.root / "output" / "success").unlink()
    (folder / FINISHED_FILE).unlink()


def model_state(algorithm: str, model_dir: Path) -> str:
    """'empty', 'complete' (it loads for serving), or what is wrong."""
    from sagetext import algorithms
    from sagetext.errors import ClientError

    names = sorted(p.name for p in model_dir.iterdir())
    if not names:
        return "empty"
    try:
        algorithms.get(SPEC_NAME[algorithm]).load(model_dir)
    except ClientError as exc:
        return f"does not load: {names}: {exc.message}"
    return "complete"


class Watched:
    """A ``train`` subprocess whose output is collected by a thread, line by line."""

    def __init__(self, opt_ml: FakeOptMl, algorithm: str, env: Mapping[str, str] | None = None) -> None:
        # A session of its own, as the container's PID 1: its process group is the whole job
        # but the workers, which torch's launcher starts in sessions of their own.
        full_env = train_env(opt_ml, SPEC_NAME[algorithm], {**SECRET_ENV, **GENSIM, **(env or {})})
        self.process = subprocess.Popen(train_command(), env=full_env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, needle: str, timeout: float = 120, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while sum(needle in line for line in self.lines) < count:
            assert self.process.poll() is None or sum(needle in line for line in self.lines) >= count, self.output()
            assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s:\n{self.output()}"
            time.sleep(0.01)

    def sigterm(self, timeout: float) -> tuple[int, float, str, int]:
        """Send SIGTERM once a checkpoint is saved; (exit code, seconds to exit, output, checkpoints
        saved before the signal). Skips the test when the job finished before the signal."""
        self.wait_for("Saved checkpoint")
        saved_before = sum("Saved checkpoint" in line for line in self.lines)
        self.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = self.process.wait(timeout)
        elapsed = time.monotonic() - started
        log = self.output()
        if "Training job finished" in log:
            pytest.skip("the job finished before SIGTERM arrived")
        return code, elapsed, log, saved_before

    def output(self) -> str:
        self.reader.join(timeout=0.1 if self.process.poll() is None else 10)
        return "".join(self.lines)
