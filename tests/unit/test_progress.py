"""Progress lines: share done, rate of this run, time left, at most one line per interval."""

from __future__ import annotations

import logging

import pytest

from sagetext.algorithms.seq2seq import config as seq2seq_config
from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters
from sagetext.algorithms.seq2seq.trainer import PROGRESS_SECONDS, TrainState, _Progress
from sagetext.contract.hyperparameters import Spec, parse
from sagetext.contract.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (12.4, "12s"), (245, "4m 05s"), (3600 * 3 + 125, "3h 02m")])
def test_duration_is_short_and_readable(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_eta_follows_this_runs_rate_not_the_work_done_before_a_restart() -> None:
    clock = Clock()
    progress = Progress(total=1000, start=400, interval=5.0, clock=clock)
    assert progress.eta_text() == "unknown"  # nothing done in this run yet
    clock.now += 10
    progress.update(500)  # 100 units in 10 s in this run
    assert progress.rate == pytest.approx(10.0)
    assert progress.fraction == pytest.approx(0.5)
    assert progress.eta() == pytest.approx(50.0)
    assert progress.eta_text() == "50s"


def test_a_line_is_due_at_most_once_per_interval() -> None:
    clock = Clock()
    progress = Progress(total=10, interval=5.0, clock=clock)
    assert not progress.due()
    clock.now += 5
    assert progress.due() and not progress.due()
    clock.now += 4.9
    assert not progress.due()


def test_an_unknown_total_gives_no_share_and_no_eta() -> None:
    progress = Progress(total=0)
    progress.update(10)
    assert progress.fraction is None and progress.eta() is None


@pytest.mark.parametrize("bound, expected", [
    ({"max_num_batches": "40"}, r"Epoch \[0\] Update \[10/40\] lr=0.001 train-perplexity=[0-9.]+ "
                                r"target tokens/s=\d+ 25.0% done, ETA 30s"),
    ({"max_num_epochs": "4"}, r"Epoch \[0/4\] Update \[10\] .* 12.5% done, ETA 1m 10s"),
    ({}, r"Epoch \[0\] Update \[10\] .*target tokens/s=\d+\n"),
])
def test_seq2seq_progress_names_the_bound_and_the_time_left(caplog: pytest.LogCaptureFixture,
                                                            bound: dict[str, str], expected: str) -> None:
    import re

    config = seq2seq_config.trainer_config(parse(bound, Spec.load("seq2seq")).typed(Seq2SeqHyperparameters))
    clock = Clock()
    tracker = _Progress(config, TrainState(learning_rate=0.001), clock=clock)
    state = TrainState(learning_rate=0.001, updates=10, batch_in_epoch=10)
    tracker.add(20.0, 5, 10)
    clock.now += PROGRESS_SECONDS
    with caplog.at_level(logging.INFO, logger="sagetext"):
        tracker.maybe_log(state, epoch_batches=20)
    assert re.search(expected, caplog.text), caplog.text
