"""What a user looks at after ``train``: TensorBoard event files (read back with tensorboard's
own reader) for every metric each algorithm logs, metrics.json beside the model, progress lines
with an ETA, and the version in the first log line."""

from __future__ import annotations

import json
import re

import pytest

from sagetext import __version__

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

pytestmark = pytest.mark.slow


def events(job) -> EventAccumulator:  # noqa: ANN001 - tests.contract.conftest.Trained
    reader = EventAccumulator(str(job.tensorboard), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    reader.Reload()
    return reader


def steps(reader: EventAccumulator, tag: str) -> list[int]:
    return [event.step for event in reader.Scalars(tag)]


def metric_lines(log: str) -> dict[str, float]:
    """The last value of each ``#name: value`` line."""
    return {name: float(value) for name, value in re.findall(r"#([\w:]+): ([-+0-9.eE]+|nan|inf)", log)}


def test_supervised_curves_metrics_json_and_progress(supervised_job) -> None:  # noqa: ANN001
    reader = events(supervised_job)
    assert steps(reader, "validation_accuracy")[:5] == [1, 2, 3, 4, 5]  # after each epoch, then the final line
    assert steps(reader, "train_accuracy") == [5]
    assert reader.Scalars("train/learning_rate") and reader.Scalars("train/million_words_per_sec")
    lines = metric_lines(supervised_job.log)
    written = json.loads((supervised_job.model / "metrics.json").read_text())
    assert written == pytest.approx({"train_accuracy": lines["train_accuracy"],
                                     "validation_accuracy": lines["validation_accuracy"]}, abs=1e-6)
    assert re.search(r"Progress: 100\.00%  Million Words/sec: [0-9.]+  ETA: \d+s #####", supervised_job.log)
    assert f"sagetext {__version__}: train" in supervised_job.log.splitlines()[0]


def test_word2vec_curves_at_sagemakers_default_local_path(word2vec_job) -> None:  # noqa: ANN001
    assert word2vec_job.tensorboard == word2vec_job.root / "output" / "tensorboard"
    reader = events(word2vec_job)
    rates = reader.Scalars("train/learning_rate")
    assert rates and rates[-1].step > 0 and reader.Scalars("train/million_words_per_sec")
    assert re.search(r"Alpha: [0-9.]+  Progress: 100\.00%  Million Words/sec: [0-9.]+  ETA: 0s", word2vec_job.log)
    assert json.loads((word2vec_job.model / "metrics.json").read_text()) == {}  # evaluation=false: no metric


def test_ntm_curves_per_epoch_scores_and_topics(ntm_job) -> None:  # noqa: ANN001
    reader = events(ntm_job)
    for tag in ("train/total_loss", "validation/total_loss", "train/reconstruction_loss", "train/kl_divergence",
                "train/docs_per_sec"):
        assert steps(reader, tag) == [1, 2, 3, 4], tag
    for tag in ("test/total_loss", "test/perplexity", "tu", "npmi"):
        assert steps(reader, tag) == [4], tag
    assert "topics/text_summary" in reader.Tags()["tensors"]
    topics_table = reader.Tensors("topics/text_summary")[0].tensor_proto.string_val[0].decode()
    assert topics_table.startswith("| topic | tu | npmi | top words |") and topics_table.count("\n") == 4
    lines = metric_lines(ntm_job.log)
    written = json.loads((ntm_job.model / "metrics.json").read_text())
    assert set(written) == {"train:total_loss", "validation:total_loss", "test:total_loss", "test:perplexity",
                            "tu", "npmi"}
    assert written == pytest.approx({name: lines[name] for name in written}, rel=1e-5)
    assert len(re.findall(r"Epoch [1-4]/4: train total_loss [0-9.]+ .* docs/s, ETA \d+s", ntm_job.log)) == 4


def test_seq2seq_curves_at_each_checkpoint_and_attention_maps(seq2seq_job) -> None:  # noqa: ANN001
    reader = events(seq2seq_job)
    for tag in ("validation/perplexity", "validation/accuracy", "validation/bleu", "train/perplexity"):
        assert steps(reader, tag) == [20, 40], tag
    images = reader.Tags()["images"]
    assert sorted(images) == ["attention/sentence_0", "attention/sentence_1", "attention/sentence_2"]
    first = reader.Images("attention/sentence_0")
    assert [image.step for image in first] == [20, 40] and first[0].width >= 8 and first[0].height >= 8
    assert "attention/sentence_0/text_summary" in reader.Tags()["tensors"]
    written = json.loads((seq2seq_job.model / "metrics.json").read_text())
    assert set(written) == {"validation:perplexity", "validation:accuracy", "validation:bleu"}
