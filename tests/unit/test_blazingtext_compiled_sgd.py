"""The compiled per-line SGD of one-worker CPU supervised jobs (``supervised/compiled``): the
same update as the PyTorch step, chosen when built, and the PyTorch path when not."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sagetext.algorithms.blazingtext.supervised import compiled, losses
from sagetext.algorithms.blazingtext.supervised.batches import PlannedBatches
from sagetext.algorithms.blazingtext.supervised.encoding import Encoded
from sagetext.algorithms.blazingtext.supervised.model import Model, sgd_step
from tests.conftest import REPO
from tests.unit.test_blazingtext_supervised import ALGORITHM, FAST, SAMPLE, context

needs_extension = pytest.mark.skipif(not compiled.available(), reason="the _sgd extension is not built")


def random_lines(rng: np.random.Generator, num_lines: int, rows: int, nlabels: int, max_labels: int) -> Encoded:
    """Lines of 1 to 12 inputs (repeats included) and 1 to ``max_labels`` distinct labels."""
    lengths = rng.integers(1, 13, num_lines)
    label_counts = rng.integers(1, max_labels + 1, num_lines)
    labels = np.concatenate([rng.choice(nlabels, k, replace=False) for k in label_counts]).astype(np.int32)
    return Encoded(rng.integers(0, rows, lengths.sum()).astype(np.int32), np.append(0, np.cumsum(lengths)),
                   labels, np.append(0, np.cumsum(label_counts)), lengths + 1)


def planned(lines: Encoded, rows: int, per_batch: int) -> PlannedBatches:
    batches = PlannedBatches(rows, renumber=False, lines_per_batch=per_batch)
    batches.add(lines)
    return batches.finish()


@needs_extension
@pytest.mark.parametrize("loss, max_labels", [("softmax", 1), ("ova", 3)])
def test_compiled_batch_equals_the_torch_step_line_by_line(loss: str, max_labels: int) -> None:
    rng = np.random.default_rng(1)
    rows, nlabels, dim, lr = 300, 6, 8, 0.4
    lines = random_lines(rng, 40, rows, nlabels, max_labels)
    start = Model(torch.from_numpy(rng.uniform(-0.5, 0.5, (rows, dim)).astype(np.float32)),
                  torch.from_numpy(rng.uniform(-0.5, 0.5, (nlabels, dim)).astype(np.float32)))

    reference = start.clone()  # the PyTorch step, one line per step: fastText's per-line SGD
    one_by_one = planned(lines, rows, 1)
    for batch in one_by_one.read(0, len(one_by_one), "cpu"):
        sgd_step(reference, batch, lr, losses.make(loss, np.ones(nlabels), 5, "cpu"), (0,))

    ours = compiled.ArrayModel(start.input.numpy().copy(), start.output.numpy().copy())
    whole = planned(lines, rows, 16)
    for batch in whole.read_arrays(0, len(whole)):
        compiled.train_batch(ours.input, ours.output, batch, lr, lr, loss, (0,))

    assert not np.array_equal(ours.input, start.input.numpy())
    np.testing.assert_allclose(ours.output, reference.output.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.input, reference.input.numpy(), rtol=1e-5, atol=1e-6)
    # and both predict alike
    np.testing.assert_array_equal(ours.top_labels_of(lines), reference.top_labels_of(lines, losses.Softmax()))


@needs_extension
def test_the_rate_falls_over_the_batch_lines() -> None:
    """From lr_start at the first line towards lr_end: a batch trained at (0.4, 0) moves the
    weights less than at (0.4, 0.4), and one at (0, 0) not at all."""
    rng = np.random.default_rng(2)
    lines = random_lines(rng, 30, 100, 4, 1)
    batch = planned(lines, 100, 30).read_arrays(0, 1)[0]
    start = rng.uniform(-0.5, 0.5, (100, 8)).astype(np.float32), rng.uniform(-0.5, 0.5, (4, 8)).astype(np.float32)

    def moved(lr_start: float, lr_end: float) -> float:
        weights = start[0].copy(), start[1].copy()
        compiled.train_batch(*weights, batch, lr_start, lr_end, "softmax", (0,))
        return float(np.abs(weights[1] - start[1]).sum())

    assert moved(0.0, 0.0) == 0.0
    assert 0.0 < moved(0.4, 0.0) < moved(0.4, 0.4)


@needs_extension
def test_bad_arrays_are_refused_before_training() -> None:
    rng = np.random.default_rng(3)
    batch = planned(random_lines(rng, 5, 50, 3, 1), 50, 5).read_arrays(0, 1)[0]
    too_few_rows = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="rows"):
        compiled.train_batch(too_few_rows, np.zeros((3, 4), dtype=np.float32), batch, 0.1, 0.1, "softmax", (0,))
    with pytest.raises(TypeError, match="input"):
        compiled.train_batch(np.zeros((50, 4)), np.zeros((3, 4), dtype=np.float32), batch, 0.1, 0.1, "softmax", (0,))


def test_the_compiled_path_is_chosen_only_where_it_applies(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    assert not compiled.chosen("cuda:0", 1, "softmax")
    assert not compiled.chosen("cpu", 2, "softmax")
    assert not compiled.chosen("cpu", 1, "hs")
    assert compiled.chosen("cpu", 1, "ova") == compiled.available()
    monkeypatch.setattr(compiled, "_sgd", None)
    with caplog.at_level(logging.INFO, logger="sagetext"):
        assert not compiled.chosen("cpu", 1, "softmax")
    assert "not built" in caplog.text


def test_without_the_extension_training_falls_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(compiled, "_sgd", None)
    ctx = context(tmp_path, {"train": SAMPLE / "train.txt", "validation": SAMPLE / "validation.txt"})
    with caplog.at_level(logging.INFO, logger="sagetext"):
        ALGORITHM.train(ctx)
    assert "(PyTorch SGD)" in caplog.text
    assert (ctx.model_dir / "model.bin").exists()


def test_a_one_worker_cpu_job_does_not_import_torch(tmp_path: Path) -> None:
    """The whole ``./train`` of a supervised CPU job: torch is never loaded (about a second)."""
    if not compiled.available():
        pytest.skip("the _sgd extension is not built")
    for channel, name in (("train", "train.txt"), ("validation", "validation.txt")):
        (tmp_path / "input" / "data" / channel).mkdir(parents=True)
        shutil.copy(SAMPLE / name, tmp_path / "input" / "data" / channel / name)
    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"mode": "supervised", **FAST}))
    probe = ("import atexit, runpy, sys; atexit.register(lambda: print('TORCH' if 'torch' in sys.modules "
             f"else 'NO-TORCH', file=sys.stderr)); sys.argv = ['train']; runpy.run_path({str(REPO / 'train')!r}, "
             "run_name='__main__')")
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(tmp_path), "SAGETEXT_ALGORITHM": "blazingtext",
           "SAGETEXT_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled per-line SGD" in done.stdout
    assert "NO-TORCH" in done.stderr, done.stderr[-3000:]
    assert (tmp_path / "model" / "model.bin").exists()


@needs_extension
@pytest.mark.parametrize("threads", ["1", "2"])
def test_compiled_training_learns_the_sample(tmp_path: Path, caplog: pytest.LogCaptureFixture, threads: str) -> None:
    ctx = context(tmp_path, {"train": SAMPLE / "train.txt", "validation": SAMPLE / "validation.txt"})
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, train_threads=int(threads)))
    with caplog.at_level(logging.INFO, logger="sagetext"):
        ALGORITHM.train(ctx)
    assert f"with {threads} thread(s) (compiled per-line SGD)" in caplog.text
    accuracy = float(caplog.text.split("#validation_accuracy: ")[1].split()[0])
    assert accuracy > 0.8, caplog.text[-2000:]


@needs_extension
def test_initial_weights_are_fastTexts_and_follow_the_seed() -> None:
    """Input uniform in [-1/dim, 1/dim) (mean 0, standard deviation (2/dim)/sqrt(12)), output zero."""
    first, again, other = (compiled.ArrayModel.initial(50_001, 3, 10, seed) for seed in (7, 7, 8))
    values = first.input
    assert values.min() >= -0.1 and values.max() < 0.1
    assert abs(float(values.mean())) < 1e-3 and float(values.std()) == pytest.approx(0.2 / np.sqrt(12), rel=0.01)
    assert np.array_equal(first.input, again.input) and not np.array_equal(first.input, other.input)
    assert not first.output.any()


@needs_extension
def test_a_checkpoint_of_the_torch_path_resumes_on_the_compiled_path_at_the_same_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM mid-epoch under the PyTorch step (16-line batches), restart with the compiled one
    (256-line batches): training goes on from the batch holding the first line not trained on."""
    from sagetext.algorithms.blazingtext.supervised import checkpoint
    from sagetext.algorithms.blazingtext.supervised.corpus import prepare
    from tests.unit.test_blazingtext_supervised import train_until_stopped_after

    big = (SAMPLE / "train.txt").read_bytes() * 16  # 5,120 lines: 320 batches of 16, 20 of 256
    checkpoints = tmp_path / "checkpoints"
    first = context(tmp_path / "a", {"train": big}, checkpoint_dir=checkpoints, epochs="3")
    with monkeypatch.context() as patch:
        patch.setattr(compiled, "_sgd", None)
        train_until_stopped_after(first, "End of epoch: 1", caplog)

    second = context(tmp_path / "b", {"train": big}, checkpoint_dir=checkpoints, epochs="3")
    data = prepare(second, compiled.LINES_PER_BATCH)
    model = compiled.ArrayModel.initial(data.input_rows, data.dictionary.nlabels, 10, 0, data.train.row_order)
    state = checkpoint.resume(second, data.dictionary, model, 3 * data.train.ntokens, [], compiled.LINES_PER_BATCH)
    data.close()
    assert state.epoch == 1 and 0 < state.batch < 20
    assert state.batch == 64 * 16 // compiled.LINES_PER_BATCH  # the PyTorch path stops after a 64-batch segment

    caplog.clear()
    third = context(tmp_path / "c", {"train": big}, checkpoint_dir=checkpoints, epochs="3")
    with caplog.at_level(logging.INFO, logger="sagetext"):
        ALGORITHM.train(third)
    assert "Resuming from checkpoint: epoch 2, step 64" in caplog.text
    assert "(compiled per-line SGD)" in caplog.text
    assert float(caplog.text.split("#train_accuracy: ")[1].split()[0]) > 0.9
