"""Training faults lose nothing: the real ``train`` executable, killed for real.

For NTM, Seq2Seq, BlazingText supervised and BlazingText word2vec (cbow on a 1.2M-word slice of
the shared text8-like corpus) with ``checkpointconfig.json``: SIGKILL at a random moment after
the first checkpoint, then the same job again resumes (logging where) and ends with a model as
good as an uninterrupted run's; the checkpoint on disk after the kill is always a whole,
loadable one; /opt/ml/model at kill time is empty or loads; a checkpoint from incompatible
hyperparameters is named in one line and training starts afresh; SIGTERM saves a checkpoint and
exits 143 well within 30 s, and the restarted job resumes it. A word2vec job stopped by SIGTERM
mid-epoch resumes at the sentence it stopped at, with the learning rate where it was.

Two workers: ``test_distributed_faults.py``; a checkpoint folder reused by the next job:
``test_checkpoint_reuse.py``. Shared helpers: ``faults.py``.

The kill point is random; the seed is printed in every assertion message (set
``SAGETEXT_FAULT_SEED`` to replay one).
"""

from __future__ import annotations

import random
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import FakeOptMl
from tests.reliability.conftest import Reference, lay_out
from tests.reliability.faults import (
    ALGORITHMS,
    CHECKPOINTS,
    COMPATIBLE,
    INCOMPATIBLE,
    JOBS,
    RESUMED,
    SEED,
    SHORT,
    WORD2VEC_HP,
    Watched,
    as_good,
    job,
    killed_after_the_last_checkpoint,
    load_checkpoint,
    model_state,
    quality,
    resume_point,
    run_job,
)

pytestmark = pytest.mark.slow

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sigkill_then_restart_resumes_and_matches_an_uninterrupted_run(
        algorithm: str, tmp_path: Path, uninterrupted: Reference) -> None:
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

    second = run_job(opt_ml, algorithm)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    resumed = re.search(RESUMED, log)
    assert resumed, f"no resume line {why}:\n{log}"
    assert resumed.groups() == resume_point(state), (resumed.group(0), why)
    if algorithm == "word2vec":
        assert_learning_rate_continues(log, state, why)
    assert model_state(algorithm, opt_ml.model) == "complete"
    assert not opt_ml.failure.exists() and (opt_ml.root / "output" / "success").exists()
    ours = quality(algorithm, killed_log + log, opt_ml.model)
    reference = uninterrupted(algorithm, lambda folder: job(folder, algorithm), None)
    assert as_good(algorithm, ours, reference), f"{algorithm}: {ours} after the restart vs {reference} {why}"


def assert_learning_rate_continues(log: str, state: dict, why: str) -> None:
    """The resumed word2vec job starts at the rate the whole run's linear decay has at that point."""
    rate = float(re.search(r"Continuing epoch .*, learning rate ([0-9.e+-]+)", log).group(1))
    epochs, start = int(WORD2VEC_HP["epochs"]), 0.05  # BlazingText's default learning_rate
    position = state["position"]
    done = int(position["epoch"]) + int(position["step"]) / int(state["state"]["corpus_count"])
    expected = start - (start - start * 1e-4) * done / epochs
    assert rate == pytest.approx(expected, rel=1e-4), (rate, expected, done, why)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sigterm_saves_and_exits_within_the_grace_period_then_the_restart_resumes(algorithm: str,
                                                                                  tmp_path: Path) -> None:
    opt_ml = job(tmp_path, algorithm)
    code, elapsed, log, saved_before = Watched(opt_ml, algorithm).sigterm(timeout=30)
    assert code == 143 and elapsed < 30, (code, elapsed, log[-3000:])
    assert sum("Saved checkpoint" in line for line in log.splitlines()) > saved_before, log[-3000:]
    state = load_checkpoint(algorithm, tmp_path / "checkpoints")
    assert list(opt_ml.model.iterdir()) == []
    assert not opt_ml.failure.exists()
    # The restarted job (a spot restart: same hyperparameters, same data) continues the checkpoint.
    second = run_job(opt_ml, algorithm)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    resumed = re.search(RESUMED, log)
    assert resumed and resumed.groups() == resume_point(state), log
    assert "Not resuming" not in log and model_state(algorithm, opt_ml.model) == "complete"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checkpoint_from_other_hyperparameters(algorithm: str, tmp_path: Path) -> None:
    """A job killed after its last checkpoint, restarted with a value that may differ (the
    length of the run), resumes; restarted with one that changes the model, it says so in one
    line naming the value and trains afresh, replacing the checkpoint."""
    hp = {**JOBS[algorithm], **SHORT[algorithm]}
    opt_ml = job(tmp_path, algorithm, hp)
    folder = tmp_path / "checkpoints"
    assert run_job(opt_ml, algorithm).returncode == 0
    killed_after_the_last_checkpoint(opt_ml, folder)
    name, value = COMPATIBLE[algorithm]
    opt_ml.hyperparameters({**hp, name: value})
    result = run_job(opt_ml, algorithm)
    assert result.returncode == 0 and re.search(RESUMED, result.stdout + result.stderr), result.stderr
    killed_after_the_last_checkpoint(opt_ml, folder)
    name, value = INCOMPATIBLE[algorithm]
    opt_ml.hyperparameters({**hp, name: value})
    result = run_job(opt_ml, algorithm)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    ignored = [line for line in log.splitlines() if "Not resuming the checkpoint" in line]
    assert len(ignored) == 1 and f"other hyperparameters ({name}: checkpoint " in ignored[0], log
    assert f"vs job {value!r}); training afresh" in ignored[0] and "data" not in ignored[0], ignored
    assert not re.search(RESUMED, log), log
    assert model_state(algorithm, opt_ml.model) == "complete" and not opt_ml.failure.exists()
    load_checkpoint(algorithm, folder, {**hp, name: value})  # the new job's checkpoint replaced it


def test_a_truncated_checkpoint_is_refused_with_a_client_error(tmp_path: Path) -> None:
    """What a non-atomic write would leave behind: refused, naming the file, not a crash."""
    opt_ml = job(tmp_path, "ntm", {**JOBS["ntm"], "epochs": "1"})
    assert run_job(opt_ml, "ntm").returncode == 0
    for path in opt_ml.model.iterdir():
        path.unlink()
    (opt_ml.root / "output" / "success").unlink()
    checkpoint = tmp_path / "checkpoints" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    result = run_job(opt_ml, "ntm")
    assert result.returncode == 1
    text = opt_ml.failure.read_text()
    assert text.startswith("ClientError: ") and "checkpoint.pt" in text and "remove it" in text, text


@pytest.mark.data
def test_word2vec_stopped_mid_epoch_resumes_at_that_sentence(tmp_path: Path, uninterrupted: Reference) -> None:
    """SIGTERM in the middle of an epoch: gensim is starved of sentences, the part of the epoch
    trained is saved, and the restart trains the rest of that epoch, then the others."""
    rng = random.Random(f"{SEED}/word2vec-sigterm")
    delay = rng.uniform(0.2, 1.0)
    why = f"(seed {SEED}: SIGTERM {delay:.3f} s after checkpoint 1)"
    opt_ml = job(tmp_path, "word2vec")
    first = Watched(opt_ml, "word2vec")
    first.wait_for("Saved checkpoint")
    time.sleep(delay)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(30) == 143, first.output()[-3000:]
    state = load_checkpoint("word2vec", tmp_path / "checkpoints")
    epoch, sentences = state["position"]["epoch"], state["position"]["step"]
    if sentences:  # else SIGTERM came right at the end of an epoch
        stopped = re.search(r"Stopping in epoch (\d+) after sentence (\d+) of", first.output())
        assert stopped and stopped.groups() == (str(epoch + 1), str(sentences)), why

    second = run_job(opt_ml, "word2vec")
    log = second.stdout + second.stderr
    assert second.returncode == 0, log
    assert f"Resuming from checkpoint: epoch {epoch + 1}, step {sentences}\n" in log, (sentences, why, log)
    count = state["state"]["corpus_count"]
    assert f"Continuing epoch {epoch + 1} of 5 at sentence {sentences + 1} of {count}," in log, (sentences, why, log)
    assert_learning_rate_continues(log, state, why)
    ours = quality("word2vec", log, opt_ml.model)
    reference = uninterrupted("word2vec", lambda folder: job(folder, "word2vec"), None)
    assert as_good("word2vec", ours, reference), f"rho {1 - ours:.3f} after the restart vs {1 - reference:.3f} {why}"


@pytest.mark.parametrize("subwords", ["false", "true"])
def test_word2vec_checkpoint_holds_the_whole_model(subwords: str, tmp_path: Path) -> None:
    """Restarted after its last checkpoint (as when killed while writing the model), a job
    rebuilds the model from the checkpoint alone and writes byte-identical files: vocabulary
    order, counts, input and output vectors, and with subwords the n-gram vectors come back."""
    hp = {"mode": "skipgram", "epochs": "2", "vector_dim": "8", "min_count": "2", "subwords": subwords,
          "buckets": "5000"}
    opt_ml = FakeOptMl(tmp_path / "opt_ml")
    lay_out("word2vec", opt_ml, hp, tmp_path, repeat=3)
    opt_ml.checkpoints(tmp_path / "checkpoints")
    first = run_job(opt_ml, "word2vec")
    assert first.returncode == 0, first.stdout + first.stderr
    written = {path.name: path.read_bytes() for path in opt_ml.model.iterdir()}
    assert {"vectors.txt", "vectors.bin"} <= set(written)
    killed_after_the_last_checkpoint(opt_ml, tmp_path / "checkpoints")
    second = run_job(opt_ml, "word2vec")
    log = second.stdout + second.stderr
    assert second.returncode == 0 and "Resuming from checkpoint: epoch 3, step 0" in log, log
    assert "All 2 epochs were trained before the restart" in log, log
    assert "Saved checkpoint" not in log
    assert {path.name: path.read_bytes() for path in opt_ml.model.iterdir()} == written
