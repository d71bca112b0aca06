"""Hyperparameter ranges at least as wide as AWS documents them (valid values and the tuning
ranges of the Developer Guide's hyperparameter and tuning pages), and Seq2Seq's BLEU on the
0-1 scale of AWS's Sockeye-based Seq2Seq."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from sagetext import algorithms
from sagetext.algorithms.seq2seq import validation as seq2seq_validation
from sagetext.contract.hyperparameters import Spec, parse
from tests.unit.conftest import Recording
from tests.unit.test_seq2seq import (
    TINY_RNN,
    channels_for,
    corpus,  # noqa: F401 - shared fixture
    hyperparameters,
    make_trainer,
)

# name: the ends of AWS's documented valid range and of its suggested tuning range
AWS = {
    "blazingtext": {"mode": ["supervised", "batch_skipgram"], "batch_size": ["1", "8", "32"],
                    "buckets": ["1", "10000000"],
                    "epochs": ["1", "15"], "learning_rate": ["0.005", "0.01", "1e-9"], "min_count": ["0", "100"],
                    "min_char": ["1"], "max_char": ["1"], "negative_samples": ["1", "25"],
                    "sampling_threshold": ["0.0001", "0.001", "1e-9"], "vector_dim": ["1", "32", "300"],
                    "window_size": ["1", "10"], "word_ngrams": ["1", "3"], "patience": ["1"], "min_epochs": ["1"]},
    "seq2seq": {"batch_size": ["1", "16", "2048"], "beam_size": ["1"], "bleu_sample_size": ["-1", "0"],
                "bucket_width": ["1"], "checkpoint_frequency_num_batches": ["1"], "checkpoint_threshold": ["1"],
                "clip_gradient": ["-1", "1", "5"], "cnn_hidden_dropout": ["0", "0.5", "1"],
                "embed_dropout_source": ["0", "0.5", "1"], "embed_dropout_target": ["0", "0.5", "1"],
                "fixed_rate_lr_half_life": ["1", "10", "30"], "learning_rate": ["5e-05", "0.2"],
                "max_num_batches": ["-1", "1"], "max_num_epochs": ["1"], "max_seq_len_source": ["1"],
                "max_seq_len_target": ["1"], "min_num_epochs": ["0", "1"], "momentum": ["0.5", "0.9"],
                "num_embed_source": ["1", "256", "512"], "num_embed_target": ["1", "256", "512"],
                "num_layers_decoder": ["1", "10"], "num_layers_encoder": ["1", "10"],
                "plateau_reduce_lr_factor": ["0.1", "0.5"], "plateau_reduce_lr_threshold": ["1", "5"],
                "rnn_decoder_hidden_dropout": ["0", "0.5", "1"], "rnn_first_residual_layer": ["1"],
                "rnn_num_hidden": ["2", "128", "2048"], "rnn_attention_num_hidden": ["1"],
                "weight_decay": ["0", "0.1"], "weight_init_scale": ["-1.0", "1.0", "2.0", "3.0"]},
    "ntm": {"feature_dim": ["1", "1000000"], "num_topics": ["2", "1000"], "clip_gradient": ["0.001", "Infinity"],
            "epochs": ["1"], "learning_rate": ["1e-06", "0.0001", "0.1", "1.0"],
            "mini_batch_size": ["1", "16", "2048", "10000"], "num_patience_epochs": ["1"],
            "rescale_gradient": ["0.001", "0.1", "1.0"], "sub_sample": ["0.0", "1.0"],
            "tolerance": ["1e-06", "0.1"], "weight_decay": ["0.0", "1.0"],
            "encoder_layers": ["auto", "1", ",".join(["5"] * 12)]},
}
REQUIRED = {"blazingtext": {"mode": "supervised"}, "seq2seq": {}, "ntm": {"feature_dim": "5", "num_topics": "2"}}


@pytest.mark.parametrize("algorithm", sorted(AWS))
def test_every_value_aws_documents_is_accepted(algorithm: str) -> None:
    spec = Spec.load(algorithm)
    for name, values in AWS[algorithm].items():
        for value in values:
            hp = parse({**REQUIRED[algorithm], name: value}, spec)  # raises ClientError if refused
            if algorithm == "ntm":
                algorithms.get("ntm").validate(hp, {"train": None})  # type: ignore[dict-item]


def test_bleu_is_reported_on_sockeyes_0_to_1_scale() -> None:
    sentences = ["a man rides a bike .", "two dogs play in the snow ."]
    assert seq2seq_validation.corpus_bleu(sentences, sentences, "none") == pytest.approx(1.0)
    half = seq2seq_validation.corpus_bleu(["a man rides a horse .", "two dogs play in the snow ."], sentences, "none")
    assert 0.5 < half < 1.0


def test_seq2seq_trains_with_max_seq_len_target_1(tmp_path: Path, corpus: dict[str, Path]) -> None:  # noqa: F811
    """The shortest target AWS allows: only </s> is learned; BLEU is still reported, on 0-1."""
    hp = hyperparameters({**TINY_RNN, "max_seq_len_target": "1", "max_num_batches": "4",
                          "checkpoint_frequency_num_batches": "2", "bleu_sample_size": "10"})
    run = make_trainer(hp, channels_for(tmp_path, corpus), stop=threading.Event())
    run.metrics = recording = Recording()
    run.fit()
    bleu = [value for name, value in recording.lines if name == "validation:bleu"]
    assert len(bleu) == 2 and all(0.0 <= value <= 1.0 for value in bleu), recording.lines
    assert all(np.isfinite(value) for _, value in recording.lines)
