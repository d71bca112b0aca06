"""Training faults lose nothing (issue 9 §4): the real ``train`` executable, killed for real.

For NTM, Seq2Seq and BlazingText supervised with ``checkpointconfig.json``: SIGKILL at a random moment after the first
checkpoint, then the same job again resumes (logging where) and ends with a model as good as
an uninterrupted run's; the checkpoint on disk after the kill is always a whole, loadable one;
/opt/ml/model at kill time is empty or loads; a checkpoint from incompatible hyperparameters is
a ``ClientError:`` naming them; SIGTERM saves a checkpoint and exits 143 well within 30 s.

The kill point is random; the seed is printed in every assertion message (set
``SAGETEXT_FAULT_SEED`` to replay one).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import FakeOptMl
from tests.reliability.conftest import DEFAULT_HP, SPEC_NAME, lay_out, run_train, train_command, train_env

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("SAGETEXT_FAULT_SEED", random.SystemRandom().randrange(1 << 30)))
JOBS = {
    "ntm": {**DEFAULT_HP["ntm"], "epochs": "20", "num_patience_epochs": "50"},  # no early stop
    "seq2seq": {**DEFAULT_HP["seq2seq"], "max_num_batches": "160", "checkpoint_frequency_num_batches": "20"},
    "supervised": {**DEFAULT_HP["supervised"], "epochs": "20"},  # BlazingText supervised
}
CHECKPOINTS = {"ntm": 20, "seq2seq": 8, "supervised": 20}  # saved by an uninterrupted run (every epoch; every 20 of 160 batches)
REPEAT = {"ntm": 4, "seq2seq": 1, "supervised": 30}  # so that an epoch is not instant
INCOMPATIBLE = {"ntm": ("num_topics", "4"), "seq2seq": ("rnn_num_hidden", "24"), "supervised": ("vector_dim", "12")}
COMPATIBLE = {"ntm": ("epochs", "21"), "seq2seq": ("max_num_batches", "180"), "supervised": ("epochs", "21")}
SHORT = {"ntm": {"epochs": "2"}, "seq2seq": {"max_num_batches": "20"}, "supervised": {"epochs": "2"}}
RESUMED = {"ntm": r"Resumed from checkpoint \S+ at epoch (\d+)",
           "seq2seq": r"Resumed from checkpoint \d+ \(epoch \d+, update (\d+)\)",
           "supervised": r"Resuming from checkpoint at epoch (\d+) \(batch \d+\)"}


def resume_point(algorithm: str, state: dict) -> int:
    """What the resume line must say for ``state``: the 1-based epoch, or Seq2Seq's update."""
    return int(state["train_state"]["updates"]) if algorithm == "seq2seq" else int(state["epoch"]) + 1


def job(tmp_path: Path, algorithm: str, hp: dict[str, str] | None = None) -> FakeOptMl:
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    lay_out(algorithm, opt_ml, hp or JOBS[algorithm], tmp_path, repeat=REPEAT[algorithm])
    opt_ml.checkpoints(tmp_path / "checkpoints")
    return opt_ml


def quality(algorithm: str, log: str) -> float:
    """Lower is better: NTM's last validation loss; Seq2Seq's best validation perplexity;
    BlazingText's validation error (1 - accuracy) + 1."""
    if algorithm == "ntm":
        return float(re.findall(r"#validation:total_loss: ([0-9.e+-]+)", log)[-1])
    if algorithm == "supervised":
        return 2 - float(re.findall(r"#validation_accuracy: ([0-9.e+-]+)", log)[-1])
    return min(float(v) for v in re.findall(r"Validation-perplexity=([0-9.e+-]+)", log))


def load_checkpoint(algorithm: str, folder: Path) -> dict:
    from sagetext.contract.checkpoints import Checkpoints
    from sagetext.contract.hyperparameters import Spec, parse

    state = Checkpoints(folder, parse(dict(JOBS[algorithm]), Spec.load(SPEC_NAME[algorithm]))).load()
    assert state is not None
    return state


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


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    logs = {}
    for algorithm in JOBS:
        opt_ml = job(tmp_path_factory.mktemp(f"whole-{algorithm}"), algorithm)
        result = run_train(opt_ml, algorithm)
        assert result.returncode == 0, result.stdout + result.stderr
        logs[algorithm] = result.stdout + result.stderr
    return logs


class Watched:
    """A ``train`` subprocess whose output is collected by a thread, line by line."""

    def __init__(self, opt_ml: FakeOptMl, algorithm: str) -> None:
        self.process = subprocess.Popen(train_command(), env=train_env(opt_ml, SPEC_NAME[algorithm]), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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

    def output(self) -> str:
        self.reader.join(timeout=0.1 if self.process.poll() is None else 10)
        return "".join(self.lines)


@pytest.mark.parametrize("algorithm", list(JOBS))
def test_sigkill_then_restart_resumes_and_matches_an_uninterrupted_run(
        algorithm: str, tmp_path: Path, uninterrupted: dict[str, str]) -> None:
    rng = random.Random(f"{SEED}/{algorithm}")
    after = rng.randint(1, CHECKPOINTS[algorithm] - 2)  # kill once this many checkpoints are saved...
    delay = rng.uniform(0, 0.05)  # ...and a random moment later (a checkpoint may be being written)
    why = f"(seed {SEED}: killed {delay:.3f} s after checkpoint {after})"
    opt_ml = job(tmp_path, algorithm)
    first = Watched(opt_ml, algorithm)
    first.wait_for("Saved checkpoint", count=after)
    time.sleep(delay)
    model_at_kill = sorted(p.name for p in opt_ml.model.iterdir())  # listed just before the kill
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    killed_log = first.output()
    if "Training job finished" in killed_log:
        pytest.skip(f"the job finished before the kill {why}")
    # The checkpoint on disk is a whole one; leftovers of an interrupted write are not it.
    folder = tmp_path / "checkpoints"
    state = load_checkpoint(algorithm, folder)
    assert [p.name for p in folder.iterdir() if p.name == "checkpoint.pt"] == ["checkpoint.pt"]
    assert model_state(algorithm, opt_ml.model) in ("empty", "complete"), (model_at_kill, why)

    second = run_train(opt_ml, algorithm)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    resumed = re.search(RESUMED[algorithm], log)
    assert resumed, f"no resume line {why}:\n{log}"
    assert int(resumed.group(1)) == resume_point(algorithm, state), (resumed.group(0), why)
    assert model_state(algorithm, opt_ml.model) == "complete"
    assert not opt_ml.failure.exists() and (opt_ml.root / "output" / "success").exists()
    ours, reference = quality(algorithm, killed_log + log), quality(algorithm, uninterrupted[algorithm])
    assert ours <= reference * 1.10, f"{algorithm}: {ours} after the restart vs {reference} uninterrupted {why}"


@pytest.mark.parametrize("algorithm", list(JOBS))
def test_sigterm_saves_and_exits_within_the_grace_period(algorithm: str, tmp_path: Path) -> None:
    opt_ml = job(tmp_path, algorithm)
    run = Watched(opt_ml, algorithm)
    run.wait_for("Saved checkpoint")
    saved_before = sum("Saved checkpoint" in line for line in run.lines)
    run.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = run.process.wait(30)
    elapsed = time.monotonic() - started
    log = run.output()
    if "Training job finished" in log:
        pytest.skip("the job finished before SIGTERM arrived")
    assert code == 143 and elapsed < 30, (code, elapsed, log[-3000:])
    assert sum("Saved checkpoint" in line for line in log.splitlines()) > saved_before, log[-3000:]
    load_checkpoint(algorithm, tmp_path / "checkpoints")
    assert list(opt_ml.model.iterdir()) == []
    assert not opt_ml.failure.exists()


@pytest.mark.parametrize("algorithm", list(JOBS))
def test_checkpoint_from_other_hyperparameters(algorithm: str, tmp_path: Path) -> None:
    hp = {**JOBS[algorithm], **SHORT[algorithm]}
    opt_ml = job(tmp_path, algorithm, hp)
    assert run_train(opt_ml, algorithm).returncode == 0
    for path in opt_ml.model.iterdir():
        path.unlink()
    (opt_ml.root / "output" / "success").unlink()
    # A value that may differ (the length of the run) is accepted, and the job resumes.
    name, value = COMPATIBLE[algorithm]
    opt_ml.hyperparameters({**hp, name: value})
    result = run_train(opt_ml, algorithm)
    assert result.returncode == 0 and re.search(RESUMED[algorithm], result.stdout + result.stderr), result.stderr
    for path in opt_ml.model.iterdir():
        path.unlink()
    # One that changes the model is refused, naming it and both values.
    name, value = INCOMPATIBLE[algorithm]
    opt_ml.hyperparameters({**hp, name: value})
    result = run_train(opt_ml, algorithm)
    assert result.returncode == 1, result.stdout + result.stderr
    text = opt_ml.failure.read_text()
    assert text.startswith("ClientError: ") and name in text and repr(value) in text, text
    assert list(opt_ml.model.iterdir()) == []


def test_a_truncated_checkpoint_is_refused_with_a_client_error(tmp_path: Path) -> None:
    """What a non-atomic write would leave behind: refused, naming the file, not a crash."""
    opt_ml = job(tmp_path, "ntm", {**JOBS["ntm"], "epochs": "1"})
    assert run_train(opt_ml, "ntm").returncode == 0
    for path in opt_ml.model.iterdir():
        path.unlink()
    (opt_ml.root / "output" / "success").unlink()
    checkpoint = tmp_path / "checkpoints" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    result = run_train(opt_ml, "ntm")
    assert result.returncode == 1
    text = opt_ml.failure.read_text()
    assert text.startswith("ClientError: ") and "checkpoint.pt" in text and "remove it" in text, text
