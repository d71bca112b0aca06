"""TensorBoard events from the metric logger, read back with tensorboard's own reader."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sagetext.contract import tensorboard
from sagetext.contract.metrics import MetricLogger
from sagetext.contract.paths import Paths

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    events.Reload()
    return events


def test_metric_lines_progress_values_text_and_images_become_events(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    metrics = MetricLogger(events=tensorboard.EventWriter(tmp_path / "tb"))
    with caplog.at_level(logging.INFO, logger="sagetext"):
        for epoch in (1, 2, 3):
            metrics.log("validation:total_loss", 10.0 / epoch, epoch)
        metrics.log("train_accuracy", 0.75)  # no step: the first value of this metric is step 0
        metrics.scalar("train:learning_rate", 0.05, 1000)
        metrics.text("topics", "| topic | words |\n|---|---|\n| 0 | god jesus |", 3)
        metrics.image("attention:sentence_0", tensorboard.heat_map(np.eye(3, 4)), 3)
    metrics.close()
    events = read_events(tmp_path / "tb")
    tags = events.Tags()
    assert set(tags["scalars"]) == {"validation/total_loss", "train_accuracy", "train/learning_rate"}
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("validation/total_loss")] == \
        [(1, 10.0), (2, 5.0), (3, 3.3333)]
    assert [(e.step, e.value) for e in events.Scalars("train_accuracy")] == [(0, 0.75)]
    assert [e.step for e in events.Scalars("train/learning_rate")] == [1000]
    assert "topics/text_summary" in tags["tensors"]
    image = events.Images("attention/sentence_0")[0]
    assert image.step == 3 and image.height == 3 * 64 and image.width == 4 * 64
    assert caplog.text.count("#validation:total_loss: ") == 3  # the metric lines are still printed
    assert metrics.final == {"validation:total_loss": pytest.approx(10 / 3), "train_accuracy": 0.75}


def test_a_disabled_logger_rank_records_nothing(tmp_path: Path) -> None:
    writer = tensorboard.EventWriter(tmp_path / "tb")
    metrics = MetricLogger(enabled=False, events=writer)
    metrics.log("train:total_loss", 1.0)
    metrics.scalar("train:learning_rate", 0.1, 1)
    assert not metrics.recording and metrics.final == {}
    writer.close()
    assert read_events(tmp_path / "tb").Tags()["scalars"] == []


def test_the_jobs_tensorboardoutputconfig_names_the_folder(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    assert tensorboard.directory(paths) is None  # no TensorBoardOutputConfig: no event files
    paths.config_dir.mkdir(parents=True)
    paths.tensorboard_config_file.write_text(json.dumps({"S3OutputPath": "s3://bucket/tb"}))
    assert tensorboard.directory(paths) == tmp_path / "output" / "tensorboard"  # SageMaker's default LocalPath
    paths.tensorboard_config_file.write_text(json.dumps({"LocalPath": str(tmp_path / "mine")}))
    assert tensorboard.directory(paths) == tmp_path / "mine"


def test_heat_map_is_white_for_0_and_dark_for_1() -> None:
    image = tensorboard.heat_map(np.array([[0.0, 1.0]]))
    assert image.shape == (128, 256, 3)
    assert image[0, 0].tolist() == [1.0, 1.0, 1.0] and max(image[0, -1]) < 0.5
