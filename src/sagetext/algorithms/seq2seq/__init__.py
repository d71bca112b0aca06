"""SageMaker Seq2Seq: neural machine translation with an RNN-attention (or Transformer) model.

Training reads the three required channels (``train`` and ``validation``:
RecordIO-protobuf sentence pairs; ``vocab``: ``vocab.src.json`` and ``vocab.trg.json``),
trains with internal checkpoints and early stopping, and writes the best model with copies of
both vocabularies. Serving translates JSON, JSON Lines and RecordIO-protobuf requests with
batched beam search. Prepare the data with ``python -m sagetext.algorithms.seq2seq.prepare``
(SageMaker's ``create_vocab_proto.py``).

Extension: the train and validation channels may instead hold parallel text (``*.src`` and
``*.trg`` files), with an optional learned subword vocabulary (``subword_vocab_size``); the
``vocab`` channel is then optional (see ``text_input.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters
from sagetext.contract.channels import Channel
from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError

if TYPE_CHECKING:  # these import torch; loaded lazily so importing the package stays cheap
    from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor
    from sagetext.algorithms.seq2seq.trainer import Inputs
    from sagetext.algorithms.seq2seq.vocab import Vocab

log = logging.getLogger(__name__)
CHANNELS = ("train", "validation", "vocab")


class Seq2Seq:
    name = "seq2seq"
    hyperparameter_view = Seq2SeqHyperparameters

    def validate(self, hyperparameters: Hyperparameters, channels: Mapping[str, Channel]) -> None:
        from sagetext.algorithms.seq2seq.config import check
        check(hyperparameters.typed(Seq2SeqHyperparameters))
        required: tuple[str, ...] = CHANNELS
        if "train" in channels and _holds_text(channels["train"]):
            required = ("train", "validation")  # extension: vocabularies can come from the text
        missing = [name for name in required if name not in channels]
        if missing:
            given = ", ".join(sorted(channels)) or "none"
            plural = len(missing) > 1
            raise ClientError(f"the {', '.join(repr(m) for m in missing)} channel{'s' if plural else ''} "
                              f"{'are' if plural else 'is'} required but missing: Seq2Seq needs "
                              f"{', '.join(required)} (channels given: {given})")

    def train(self, ctx: TrainingContext) -> None:
        from sagetext.algorithms.seq2seq import config, data, trainer
        hp = ctx.hyperparameters.typed(Seq2SeqHyperparameters)  # the runner has called validate
        check_sharding(ctx)
        data_config = config.data_config(hp)
        read = read_inputs(ctx.channels, hp)
        inputs = trainer.Inputs(data.truncate(read.train, data_config), data.truncate(read.validation, data_config),
                                read.source_vocab, read.target_vocab, read.detokenise, read.subword_models)
        model_config = config.model_config(hp, len(inputs.source_vocab), len(inputs.target_vocab))
        run = trainer.Trainer(model_config, data_config, config.trainer_config(hp), inputs, ctx.checkpoints,
                              device=ctx.device, rank=ctx.rank, world_size=ctx.world_size, metrics=ctx.metrics,
                              stop_requested=ctx.stop_requested, data_shard=ctx.shard(ctx.channel("train")))
        best = run.fit()
        if ctx.is_writer:
            trainer.write_model(ctx.model_dir, best, run, ctx.hyperparameters.as_strings())
            log.info("Model written to %s", ctx.model_dir)

    def load(self, model_dir: Path) -> "Seq2SeqPredictor":
        from sagetext.algorithms.seq2seq.predictor import Seq2SeqPredictor
        return Seq2SeqPredictor.load(model_dir)


def check_sharding(ctx: TrainingContext) -> None:
    """With several hosts only a RecordIO ``train`` channel may be ``ShardedByS3Key`` (each host
    then trains on its own objects): every worker must score the same validation set and use
    the same vocabularies, and vocabularies learned from text would differ between hosts."""
    if ctx.cluster.num_hosts == 1:
        return
    for name, channel in sorted(ctx.channels.items()):
        if channel.distribution == "FullyReplicated":
            continue
        if name != "train" or _holds_text(channel):
            what = "the train channel when it holds text" if name == "train" else f"the '{name}' channel"
            raise ClientError(f"channel '{name}': S3DistributionType={channel.distribution!r} on "
                              f"{ctx.cluster.num_hosts} hosts; Seq2Seq needs FullyReplicated for {what} "
                              "(only a RecordIO train channel may be ShardedByS3Key)")


def read_inputs(channels: Mapping[str, Channel], hp: Seq2SeqHyperparameters) -> "Inputs":
    """Training and validation pairs with their vocabularies, from RecordIO or (extension) text."""
    from sagetext.algorithms.seq2seq import data, text_input
    from sagetext.algorithms.seq2seq.trainer import Inputs
    subword_size = hp.subword_vocab_size
    if _holds_text(channels["train"]):
        text = text_input.load(dict(channels), subword_size, hp.seed)
        return Inputs(text.train, text.validation, text.source_vocab, text.target_vocab, text.detokenise,
                      text.subword_models)
    if subword_size:
        raise ClientError(f"subword_vocab_size={subword_size}: subwords are learned from plain-text channels "
                          "(*.src / *.trg files); RecordIO channels already hold token ids")
    source, target = read_vocab_channel(channels["vocab"])
    train, validation = (data.read_pairs(channels[name], len(source), len(target)) for name in ("train", "validation"))
    return Inputs(train, validation, source, target)


def _holds_text(channel: Channel) -> bool:
    from sagetext.algorithms.seq2seq.text_input import text_files
    return text_files(channel) is not None


def read_vocab_channel(channel: Channel) -> tuple["Vocab", "Vocab"]:
    """(source, target) vocabularies from the vocab channel's two JSON files."""
    from sagetext.algorithms.seq2seq import vocab
    files = {path.name: path for path in channel.files()}
    missing = [name for name in (vocab.SOURCE_FILE, vocab.TARGET_FILE) if name not in files]
    if missing:
        raise ClientError(f"channel 'vocab': {' and '.join(missing)} not found (files given: "
                          f"{', '.join(sorted(files)) or 'none'}); it needs vocab.src.json and vocab.trg.json")
    return vocab.load(files[vocab.SOURCE_FILE]), vocab.load(files[vocab.TARGET_FILE])


ALGORITHM = Seq2Seq()
