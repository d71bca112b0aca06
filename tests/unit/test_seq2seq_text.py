"""Extension: plain parallel text channels, with whitespace tokens or learned subwords."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sagetext.algorithms import seq2seq
from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingContext
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError
from tests.unit.test_seq2seq import TINY_RNN, corpus, hyperparameters, view  # noqa: F401 - shared fixture

TEXT_RUN = {**TINY_RNN, "max_num_batches": "300", "bleu_sample_size": "20"}


def text_context(root: Path, corpus: dict[str, Path], raw: dict[str, str]) -> TrainingContext:  # noqa: F811
    paths = Paths(root)
    for name, split in (("train", "train"), ("validation", "val")):
        folder = paths.channel_dir(name)
        folder.mkdir(parents=True)
        for side in ("src", "trg"):
            (folder / f"{split}.{side}").write_bytes(corpus[f"{split}.{side}"].read_bytes())
    hp = hyperparameters(raw)
    return TrainingContext(hyperparameters=hp, channels={n: Channel(n, paths=paths) for n in ("train", "validation")},
                           model_dir=root / "model", output_data_dir=root / "output",
                           checkpoints=Checkpoints(None, hp))


def test_text_channels_train_without_a_vocab_channel(tmp_path: Path, corpus: dict[str, Path]) -> None:  # noqa: F811
    torch.set_num_threads(1)
    ctx = text_context(tmp_path, corpus, TEXT_RUN)
    seq2seq.ALGORITHM.validate(ctx.hyperparameters, ctx.channels)  # vocab is optional with text
    seq2seq.ALGORITHM.train(ctx)
    predictor = seq2seq.ALGORITHM.load(ctx.model_dir)
    answer = predictor.predict({"instances": [{"data": "1 2 3"}, {"data": "4 5 6 7"}]}, "application/json",
                               "application/json")
    assert [p["target"] for p in answer["predictions"]] == ["3 2 1", "7 6 5 4"]


def test_subwords_are_learned_saved_and_used_in_serving(tmp_path: Path, corpus: dict[str, Path]) -> None:  # noqa: F811,E501
    torch.set_num_threads(1)
    ctx = text_context(tmp_path, corpus, {**TEXT_RUN, "subword_vocab_size": "24", "max_num_batches": "60"})
    seq2seq.ALGORITHM.train(ctx)
    assert {"spm.src.model", "spm.trg.model"} <= {p.name for p in ctx.model_dir.iterdir()}
    predictor = Seq2SeqPredictor.load(ctx.model_dir)
    answer = predictor.predict({"instances": [{"data": "1 2 3", "configuration": {"attention_matrix": True}}]},
                               "application/json", "application/json")["predictions"][0]
    pieces = predictor.translate([predictor.encode("1 2 3")])[0].tokens
    assert answer["target"] == predictor.decode(pieces)
    assert len(answer["matrix"]) == len(pieces)
    assert len(answer["matrix"][0]) == len(predictor.encode("1 2 3"))


def test_subwords_need_text_channels(tmp_path: Path, corpus: dict[str, Path]) -> None:  # noqa: F811
    from tests.unit.test_seq2seq import channels_for
    channels = channels_for(tmp_path, corpus)
    with pytest.raises(ClientError, match="subword_vocab_size=100: subwords are learned from plain-text"):
        seq2seq.read_inputs(channels, view(hyperparameters({**TINY_RNN, "subword_vocab_size": "100"})))
