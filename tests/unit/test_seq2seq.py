"""Seq2Seq training: a tiny model learns digit reversal (Sockeye's ``generate_digits_file`` task),
batched and single beam search agree, resume after a kill gives the same model, and the
user's mistakes (channels, vocabularies, ids, hyperparameters) are ClientErrors naming them.

The helpers here (digit corpora, prepared channels, tiny hyperparameters) are shared by the
other Seq2Seq tests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sagetext.algorithms import seq2seq
from sagetext.algorithms.seq2seq import artifacts, data, prepare
from sagetext.algorithms.seq2seq import config as cfg
from sagetext.algorithms.seq2seq import vocab as vocabulary
from sagetext.algorithms.seq2seq.beam import beam_search
from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters
from sagetext.algorithms.seq2seq.model import build_model, with_source_eos
from sagetext.algorithms.seq2seq.trainer import Inputs, Trainer, write_model
from sagetext.algorithms.seq2seq.validation import translate_pairs
from sagetext.contract.channels import Channel
from sagetext.contract.checkpoints import Checkpoints
from sagetext.contract.context import TrainingStopped
from sagetext.contract.hyperparameters import Hyperparameters, Spec, parse
from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

TINY_RNN = {"rnn_num_hidden": "64", "num_embed_source": "32", "num_embed_target": "32", "batch_size": "32",
            "learning_rate": "0.003", "checkpoint_frequency_num_batches": "100", "max_num_batches": "500",
            "bleu_sample_size": "40", "beam_size": "3", "max_seq_len_source": "20", "max_seq_len_target": "20"}
TINY_TRANSFORMER = {**TINY_RNN, "encoder_type": "transformer", "decoder_type": "transformer",
                    "transformer_model_size": "64", "transformer_attention_heads": "4",
                    "transformer_feed_forward_num_hidden": "128", "transformer_dropout": "0.0",
                    "num_layers_encoder": "2", "num_layers_decoder": "2", "learning_rate": "0.001",
                    "max_num_batches": "600"}


def digit_lines(count: int, seed: int, max_len: int = 8) -> list[str]:
    """Lines of 1..max_len random digits (Sockeye's ``generate_digits_file``)."""
    rng = random.Random(seed)
    return [" ".join(str(rng.randrange(10)) for _ in range(rng.randint(1, max_len))) for _ in range(count)]


def reverse(line: str) -> str:
    return " ".join(reversed(line.split()))


def write_corpus(folder: Path, train: int = 2000, validation: int = 100) -> dict[str, Path]:
    """Reversal task as parallel text files, then prepared into .rec and vocab files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, count, seed in (("train", train, 1), ("val", validation, 2)):
        source = digit_lines(count, seed)
        files[f"{split}.src"] = folder / f"{split}.src"
        files[f"{split}.trg"] = folder / f"{split}.trg"
        files[f"{split}.src"].write_text("\n".join(source) + "\n")
        files[f"{split}.trg"].write_text("\n".join(reverse(s) for s in source) + "\n")
    out = folder / "prepared"
    args = ["-ts", str(files["train.src"]), "-tt", str(files["train.trg"]), "-vs", str(files["val.src"]),
            "-vt", str(files["val.trg"]), "--output-dir", str(out)]
    assert prepare.main(args) == 0
    return {**files, "train.rec": out / "train.rec", "val.rec": out / "val.rec",
            "vocab.src.json": out / "vocab.src.json", "vocab.trg.json": out / "vocab.trg.json"}


def hyperparameters(raw: dict[str, str]) -> Hyperparameters:
    hp = parse(raw, Spec.load("seq2seq"))
    cfg.check(view(hp))
    return hp


def view(hp: Hyperparameters) -> Seq2SeqHyperparameters:
    return hp.typed(Seq2SeqHyperparameters)


def data_config(**changes: object) -> cfg.DataConfig:
    """The DataConfig of the spec's defaults, with ``changes``."""
    return dataclasses.replace(cfg.data_config(view(parse({}, Spec.load("seq2seq")))), **changes)


def channels_for(root: Path, corpus: dict[str, Path]) -> dict[str, Channel]:
    """File-mode channels train/validation/vocab under a fake contract root."""
    paths = Paths(root)
    layout = {"train": ["train.rec"], "validation": ["val.rec"], "vocab": ["vocab.src.json", "vocab.trg.json"]}
    for name, files in layout.items():
        folder = paths.channel_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        for file_name in files:
            (folder / file_name).write_bytes(corpus[file_name].read_bytes())
    return {name: Channel(name, paths=paths) for name in layout}


def make_trainer(hp: Hyperparameters, channels: dict[str, Channel], checkpoints: Checkpoints | None = None,
                 stop: threading.Event | None = None) -> Trainer:
    source, target = seq2seq.read_vocab_channel(channels["vocab"])
    data_config = cfg.data_config(view(hp))
    train, val = (data.truncate(data.read_pairs(channels[n], len(source), len(target)), data_config)
                  for n in ("train", "validation"))
    return Trainer(cfg.model_config(view(hp), len(source), len(target)), data_config, cfg.trainer_config(view(hp)),
                   Inputs(train, val, source, target), checkpoints or Checkpoints(None, hp), stop_requested=stop)


_CACHE: dict[str, Path] = {}  # the corpus and the trained model, shared by every Seq2Seq test module


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if "corpus" not in _CACHE:
        _CACHE.update({f"corpus:{k}": v for k, v in write_corpus(tmp_path_factory.mktemp("digits")).items()})
        _CACHE["corpus"] = Path()
    return {k.split(":", 1)[1]: v for k, v in _CACHE.items() if k.startswith("corpus:")}


@pytest.fixture(scope="session")
def rnn_model_dir(tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, Path]) -> Path:
    """A tiny RNN trained on digit reversal, written as a model folder (shared by serving tests)."""
    if "rnn_model" not in _CACHE:
        torch.set_num_threads(1)
        hp = hyperparameters(TINY_RNN)
        trainer = make_trainer(hp, channels_for(tmp_path_factory.mktemp("rnn_root"), corpus))
        best = trainer.fit()
        folder = tmp_path_factory.mktemp("rnn_model")
        write_model(folder, best, trainer, hp.as_strings())
        _CACHE["rnn_model"] = folder
    return _CACHE["rnn_model"]


def exact_match(model: torch.nn.Module, pairs: list[data.Pair], beam: int) -> float:
    outputs = translate_pairs(model, pairs, beam, 20, "cpu")
    return float(np.mean([out == t.tolist() for out, (_, t) in zip(outputs, pairs)]))


# ---- learning -------------------------------------------------------------------------------

def test_rnn_learns_digit_reversal(rnn_model_dir: Path, corpus: dict[str, Path]) -> None:
    from sagetext.algorithms.seq2seq import artifacts
    loaded = artifacts.load(rnn_model_dir)
    source, target = vocabulary.load(corpus["vocab.src.json"]), vocabulary.load(corpus["vocab.trg.json"])
    pairs = [(np.array(source.ids(s)), np.array(target.ids(reverse(s)))) for s in digit_lines(200, 7)]
    assert exact_match(loaded.model, pairs, beam=3) >= 0.95
    assert exact_match(loaded.model, pairs, beam=1) >= 0.9


def test_transformer_learns_digit_reversal(tmp_path: Path, corpus: dict[str, Path]) -> None:
    torch.set_num_threads(1)
    # The model a job writes is its best checkpoint, and that is what is tested: the last
    # update's accuracy moves by several points from one checkpoint to the next (0.88-0.99 after
    # 300 updates), so that rounding-level changes such as fusing two matmuls decided it.
    raw = {**TINY_TRANSFORMER, "max_num_batches": "1000"}
    trainer = make_trainer(hyperparameters(raw), channels_for(tmp_path, corpus))
    trainer.model.load_state_dict(trainer.fit())
    metrics = trainer.evaluate()
    assert metrics["accuracy"] >= 0.97, metrics
    assert exact_match(trainer.model, trainer.inputs.validation, beam=3) >= 0.8


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_batched_and_single_beam_search_agree(architecture: str, rnn_model_dir: Path) -> None:
    from sagetext.algorithms.seq2seq import artifacts
    if architecture == "rnn":
        model = artifacts.load(rnn_model_dir).model
    else:  # an untrained model still has to decode the same alone and in a batch
        torch.manual_seed(3)
        hp = hyperparameters({**TINY_TRANSFORMER, "transformer_dropout": "0.1"})
        model = build_model(cfg.model_config(view(hp), 14, 14)).eval()
    rng = np.random.default_rng(0)
    sources = [rng.integers(4, 14, size=n) for n in (1, 7, 3, 12, 5)]
    pairs = [(s, s) for s in sources]
    batch = data.make_batch(pairs, list(range(len(pairs))))
    together = beam_search(model, batch.source, batch.source_length, 4, 16)
    for index, source in enumerate(sources):
        alone = beam_search(model, torch.from_numpy(source).unsqueeze(0), torch.tensor([len(source)]), 4, 16)[0]
        assert alone.tokens == together[index].tokens
        assert alone.score == pytest.approx(together[index].score, abs=1e-4)
        assert np.allclose(alone.attention, together[index].attention, atol=1e-4)
        assert np.array(alone.attention).shape == (len(alone.tokens), len(source)) or not alone.tokens


@pytest.mark.parametrize("variant", [
    {"rnn_attention_type": "dot"}, {"rnn_attention_type": "bilinear"}, {"rnn_attention_type": "fixed"},
    {"rnn_attention_type": "mlp", "rnn_attention_num_hidden": "24"}, {"rnn_cell_type": "gru"},
    {"rnn_decoder_state_init": "avg"}, {"rnn_decoder_state_init": "zero"},
    {"num_layers_encoder": "3", "num_layers_decoder": "3", "rnn_residual_connections": "true"},
    {"num_layers_decoder": "2", "rnn_attention_in_upper_layers": "false", "rnn_cell_type": "gru"},
    {"weight_init_type": "uniform", "weight_init_scale": "0.1"}, {"xavier_factor_type": "avg"},
    {"rnn_attention_type": "dot", "rnn_attention_num_hidden": "16"},
])
def test_rnn_variants_train_and_decode(variant: dict[str, str]) -> None:
    hp = hyperparameters({**TINY_RNN, "rnn_num_hidden": "32", **variant})
    model = build_model(cfg.model_config(view(hp), 12, 13))
    pairs = [(np.array([4, 5, 6]), np.array([6, 5])), (np.array([7]), np.array([8, 9, 10, 11]))]
    batch = data.make_batch(pairs, [0, 1])
    logits = model(batch.source, batch.source_length, batch.target_input)
    assert logits.shape == (2, 5, 13)
    logits.sum().backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert unused == []
    found = beam_search(model.eval(), batch.source, batch.source_length, 2, 6)
    assert [len(h.attention) for h in found] == [len(h.tokens) for h in found]
    assert all(len(row) == int(n) for h, n in zip(found, batch.source_length) for row in h.attention)


def test_weights_follow_xavier_magnitude_and_fan() -> None:
    hp = hyperparameters({**TINY_RNN, "rnn_num_hidden": "64", "weight_init_scale": "3.0", "xavier_factor_type": "in"})
    model = build_model(cfg.model_config(view(hp), 50, 60))
    weight = model.hidden.weight.detach()  # (64, 128): fan in 128
    assert float(weight.abs().max()) <= (3.0 / 128) ** 0.5 + 1e-6
    assert float(weight.abs().max()) > 0.9 * (3.0 / 128) ** 0.5
    assert float(model.hidden.bias.detach().abs().max()) == 0.0



def test_transformer_starts_as_sockeye_3_does() -> None:
    """Glorot-uniform matrices (the cross-attention's query and key-value projections each with
    its own fan), zero biases, embeddings in ±0.07 with a zero padding row."""
    torch.manual_seed(0)
    model = build_model(cfg.model_config(view(hyperparameters({**TINY_TRANSFORMER, "transformer_model_size": "128"})),
                                         500, 600))
    biases = [name for name, p in model.named_parameters() if name.endswith("bias") and "norm" not in name]
    assert biases and all(float(model.get_parameter(name).detach().abs().max()) == 0.0 for name in biases)
    for table in (model.source_embed.weight.detach(), model.target_embed.weight.detach()):
        assert 0.069 < float(table.abs().max()) <= 0.07 and float(table[0].abs().max()) == 0.0

    def near_glorot(weight: torch.Tensor) -> bool:
        bound = (6 / sum(weight.shape)) ** 0.5
        return 0.98 * bound < float(weight.abs().max()) <= bound

    cross = model.decoder[0].cross_attention.in_proj_weight.detach()  # (3 * 128, 128)
    assert near_glorot(cross[:128]) and near_glorot(cross[128:])
    assert near_glorot(model.decoder[0].self_attention.in_proj_weight.detach())
    assert near_glorot(model.output.weight.detach()) and near_glorot(model.encoder.layers[0].linear1.weight.detach())

# ---- checkpoints, resume, SIGTERM -----------------------------------------------------------------

class _Killed(Exception):
    pass


class _KilledAfterSave(Checkpoints):
    """Saves like Checkpoints, then 'kills' the job after the n-th save."""

    def __init__(self, folder: Path, hp: Hyperparameters, kill_after: int) -> None:
        super().__init__(folder, hp)
        self.saves, self.kill_after = 0, kill_after

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self.saves += 1
        if self.saves == self.kill_after:
            raise _Killed()


def test_resume_after_a_kill_gives_the_same_model(tmp_path: Path, corpus: dict[str, Path]) -> None:
    torch.set_num_threads(1)
    raw = {**TINY_RNN, "rnn_num_hidden": "32", "checkpoint_frequency_num_batches": "30", "max_num_batches": "90",
           "bleu_sample_size": "0", "embed_dropout_source": "0.2", "rnn_decoder_hidden_dropout": "0.2"}
    hp = hyperparameters(raw)
    channels = channels_for(tmp_path / "root", corpus)
    uninterrupted = make_trainer(hp, channels, Checkpoints(tmp_path / "a", hp)).fit()
    killed = make_trainer(hp, channels, _KilledAfterSave(tmp_path / "b", hp, kill_after=2))
    with pytest.raises(_Killed):
        killed.fit()
    resumed_trainer = make_trainer(hp, channels, Checkpoints(tmp_path / "b", hp))
    assert resumed_trainer.state.updates == 60 and resumed_trainer.state.checkpoint == 2
    resumed = resumed_trainer.fit()
    assert resumed.keys() == uninterrupted.keys()
    for name in uninterrupted:
        assert torch.allclose(resumed[name], uninterrupted[name], atol=1e-5), name


def test_a_checkpoint_with_other_hyperparameters_is_not_resumed(tmp_path: Path, corpus: dict[str, Path],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    raw = {**TINY_RNN, "rnn_num_hidden": "16", "checkpoint_frequency_num_batches": "5", "max_num_batches": "5"}
    channels = channels_for(tmp_path / "root", corpus)
    make_trainer(hyperparameters(raw), channels, _KilledAfterSave(tmp_path / "c", hyperparameters(raw), 99)).fit()
    other = hyperparameters({**raw, "rnn_num_hidden": "32"})
    with caplog.at_level(logging.INFO, logger="sagetext"):
        trainer = make_trainer(other, channels, Checkpoints(tmp_path / "c", other))
    assert "other hyperparameters (rnn_num_hidden: checkpoint '16' vs job '32'); training afresh" in caplog.text
    assert trainer.state.updates == 0 and trainer.state.checkpoint == 0


def test_stop_request_saves_state_and_raises_training_stopped(tmp_path: Path, corpus: dict[str, Path]) -> None:
    hp = hyperparameters({**TINY_RNN, "rnn_num_hidden": "16"})
    stop = threading.Event()
    stop.set()
    trainer = make_trainer(hp, channels_for(tmp_path / "root", corpus), Checkpoints(tmp_path / "ck", hp), stop)
    with pytest.raises(TrainingStopped):
        trainer.fit()
    assert (tmp_path / "ck" / "checkpoint.pt").exists()


def test_learning_rate_schedules() -> None:
    hp = hyperparameters({**TINY_RNN, "lr_scheduler_type": "fixed_rate_inv_sqrt_t",
                          "fixed_rate_lr_half_life": "2", "checkpoint_frequency_num_batches": "10"})
    model_config = cfg.model_config(view(hp), 10, 10)
    pairs = [(np.array([4]), np.array([5]))]
    trainer = Trainer(model_config, cfg.data_config(view(hp)), cfg.trainer_config(view(hp)),
                      Inputs(pairs, pairs, *[vocabulary.build(vocabulary.count_tokens([]), 10, 1)] * 2),
                      Checkpoints(None, hp))
    trainer.state.updates = 20  # one half-life
    trainer._set_learning_rate()
    assert trainer.state.learning_rate == pytest.approx(0.003 / 2)


# ---- the user's mistakes ----------------------------------------------------------------------

def test_missing_vocab_channel_is_named(tmp_path: Path, corpus: dict[str, Path]) -> None:
    channels = channels_for(tmp_path, corpus)
    del channels["vocab"]
    with pytest.raises(ClientError, match="'vocab' channel is required"):
        seq2seq.ALGORITHM.validate(hyperparameters(TINY_RNN), channels)


@pytest.mark.parametrize("raw,needle", [
    ({"rnn_num_hidden": "63"}, "rnn_num_hidden=63: expected an even number"),
    ({"momentum": "0.9"}, "momentum=0.9: only used with optimizer_type=sgd"),
    ({"encoder_type": "transformer"}, "encoder_type=transformer with decoder_type=rnn: expected one of"),
])
def test_invalid_combinations(raw: dict[str, str], needle: str) -> None:
    with pytest.raises(ClientError, match=needle.replace("(", r"\(")):
        hyperparameters({**TINY_RNN, **raw})


def test_an_odd_rnn_num_hidden_is_refused_only_where_the_bidirectional_encoder_splits_it() -> None:
    hp = hyperparameters({**TINY_RNN, "encoder_type": "cnn", "rnn_num_hidden": "63"})  # no ClientError
    assert hp["rnn_num_hidden"] == 63


def test_vocab_without_special_tokens_names_the_token(tmp_path: Path) -> None:
    path = tmp_path / "vocab.src.json"
    path.write_text('{"<pad>": 0, "<unk>": 1, "</s>": 2, "a": 3}')
    with pytest.raises(ClientError, match="vocab.src.json: the special token '<s>' is missing"):
        vocabulary.load(path)


def test_ids_out_of_range_name_record_and_id(tmp_path: Path, corpus: dict[str, Path]) -> None:
    channels = channels_for(tmp_path, corpus)
    source, target = seq2seq.read_vocab_channel(channels["vocab"])
    with pytest.raises(ClientError, match=r"record 1: target id \d+ at position 0 is out of range"):
        data.read_pairs(channels["train"], len(source), 4)


# ---- data -----------------------------------------------------------------------------------------

def test_parallel_buckets_follow_sockeye() -> None:
    config = data_config(bucket_width=10, max_seq_len_source=50, max_seq_len_target=50)
    assert data.parallel_buckets(config, 1.0) == [(10, 10), (20, 20), (30, 30), (40, 40), (50, 50)]
    assert data.parallel_buckets(config, 1.5) == [(7, 10), (14, 20), (21, 30), (28, 40), (35, 50), (42, 50),
                                                  (49, 50), (50, 50)]
    off = data_config(bucketing_enabled=False, max_seq_len_source=50, max_seq_len_target=40)
    assert data.parallel_buckets(off, 1.5) == [(50, 40)]


def test_batches_by_words_hold_the_token_budget_on_average_and_cover_every_pair_once() -> None:
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(4, 9, size=n), rng.integers(4, 9, size=m))
             for n, m in zip(rng.integers(1, 30, 500), rng.integers(1, 30, 500))]
    config = data_config(batch_size=200, batch_type="word", bucket_width=10, max_seq_len_source=30,
                            max_seq_len_target=31)
    plan = data.BatchPlan(pairs, config, seed=5)
    epoch = plan.epoch(0)
    assert sorted(i for batch in epoch for i in batch) == list(range(500))
    # as Sockeye counts word batches: each bucket's batches hold batch_size / (mean target length)
    # pairs, so that a batch's real target tokens (</s> counted) are about batch_size
    tokens = [sum(len(pairs[i][1]) + 1 for i in batch) for batch in epoch]
    full = [t for t, batch in zip(tokens, epoch) if len(batch) in plan.sizes and len(batch) > 1]
    assert len(full) > len(epoch) // 2
    assert 0.8 * 200 <= float(np.median(full)) <= 1.2 * 200 and max(tokens) < 1.6 * 200
    sentences = data_config(batch_size=16, bucket_width=10, max_seq_len_source=30, max_seq_len_target=31)
    assert {len(batch) for batch in data.BatchPlan(pairs, sentences, seed=5).epoch(0)} >= {16}
    assert plan.epoch(0) == epoch and plan.epoch(1) != epoch
    shards = [plan.epoch(0, rank, 3) for rank in range(3)]
    assert len({len(s) for s in shards}) == 1 and not set(map(tuple, shards[0])) & set(map(tuple, shards[1]))


def test_truncation_keeps_room_for_the_end_of_sentence() -> None:
    config = data_config(max_seq_len_source=3, max_seq_len_target=4)
    (source, target), = data.truncate([(np.arange(10), np.arange(10))], config)
    assert len(source) == 3 and len(target) == 3
    batch = data.make_batch([(source, target)], [0])
    assert batch.target_output.tolist() == [[0, 1, 2, vocabulary.EOS_ID]]
    assert batch.target_input.tolist() == [[vocabulary.BOS_ID, 0, 1, 2]]


# ---- the spec -----------------------------------------------------------------------------------

SAGEMAKER_DEFAULTS = {  # the SageMaker Developer Guide's table
    "batch_size": 64, "beam_size": 5, "bleu_sample_size": 0, "bucket_width": 10, "bucketing_enabled": True,
    "checkpoint_frequency_num_batches": 1000, "checkpoint_threshold": 3, "clip_gradient": 1.0,
    "cnn_activation_type": "glu", "cnn_hidden_dropout": 0.0, "cnn_kernel_width_decoder": 5,
    "cnn_kernel_width_encoder": 3, "cnn_num_hidden": 512, "decoder_type": "rnn", "embed_dropout_source": 0.0,
    "embed_dropout_target": 0.0, "encoder_type": "rnn", "fixed_rate_lr_half_life": 10, "learning_rate": 0.0003,
    "loss_type": "cross-entropy", "lr_scheduler_type": "plateau_reduce", "max_num_batches": -1,
    "max_num_epochs": None, "max_seq_len_source": 100, "max_seq_len_target": 100, "min_num_epochs": 0,
    "momentum": None, "num_embed_source": 512, "num_embed_target": 512, "num_layers_decoder": 1,
    "num_layers_encoder": 1, "optimized_metric": "perplexity", "optimizer_type": "adam",
    "plateau_reduce_lr_factor": 0.5, "plateau_reduce_lr_threshold": 3, "rnn_attention_in_upper_layers": True,
    "rnn_attention_num_hidden": None, "rnn_attention_type": "mlp", "rnn_cell_type": "lstm",
    "rnn_decoder_state_init": "last", "rnn_decoder_hidden_dropout": 0.0, "rnn_first_residual_layer": 2,
    "rnn_num_hidden": 1024, "rnn_residual_connections": False, "training_metric": "perplexity",
    "weight_decay": 0.0, "weight_init_scale": 2.34, "weight_init_type": "xavier", "xavier_factor_type": "in",
}
EXTENSIONS = {"batch_type", "label_smoothing", "seed", "subword_vocab_size", "transformer_attention_heads",
              "transformer_dropout", "transformer_feed_forward_num_hidden", "transformer_model_size"}


def test_spec_has_every_sagemaker_hyperparameter_with_its_default() -> None:
    hp = parse({}, Spec.load("seq2seq"))
    assert {k: hp[k] for k in SAGEMAKER_DEFAULTS} == SAGEMAKER_DEFAULTS
    assert set(hp) - set(SAGEMAKER_DEFAULTS) == EXTENSIONS
    model = cfg.model_config(view(hp), 10, 10)
    assert model.rnn_attention_num_hidden == 1024  # defaults to rnn_num_hidden
    hp = parse({"rnn_attention_in_upper_layers": "False", "learning_rate": "1e-05", "max_num_epochs": "3",
                "optimizer_type": "sgd", "momentum": "0.9"}, Spec.load("seq2seq"))
    cfg.check(view(hp))
    assert cfg.trainer_config(view(hp)).momentum == 0.9 and cfg.trainer_config(view(hp)).max_num_epochs == 3


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_step_by_step_decoding_equals_teacher_forcing(architecture: str) -> None:
    raw = TINY_TRANSFORMER if architecture == "transformer" else {**TINY_RNN, "num_layers_decoder": "2"}
    torch.manual_seed(0)
    model = build_model(cfg.model_config(view(hyperparameters(raw)), 12, 13)).eval()
    pairs = [(np.array([4, 5, 6, 7]), np.array([6, 5, 9])), (np.array([7, 8]), np.array([8, 9, 10, 11, 4]))]
    batch = data.make_batch(pairs, [0, 1])
    with torch.no_grad():
        expected = model(batch.source, batch.source_length, batch.target_input)
        encoded = model.encode(batch.source, batch.source_length)
        state = model.init_state(encoded)
        for t in range(batch.target_input.size(1)):
            logits, attention, state = model.step(batch.target_input[:, t], state, encoded)
            assert torch.allclose(logits, expected[:, t], atol=1e-4), t
            assert torch.allclose(attention.sum(1), torch.ones(2), atol=1e-4)
            # the model reads each source with </s> after it (4 + 1 columns); the second
            # sentence's two tokens and its </s> hold all of its weight, its padding none
            assert attention.shape == (2, 5)
            assert float(attention[1, 3:].abs().sum()) == 0.0


def test_pairs_are_stored_on_disk_and_read_back_exactly() -> None:
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(4, 50, rng.integers(0, 12)), rng.integers(4, 50, rng.integers(1, 9))) for _ in range(300)]
    store = data.PairStore.of(pairs)
    assert len(store) == 300
    np.testing.assert_array_equal(store.source_lengths, [len(s) for s, _ in pairs])
    np.testing.assert_array_equal(store.target_lengths, [len(t) for _, t in pairs])
    for (s, t), (s2, t2) in zip(pairs, store):
        assert s.tolist() == s2.tolist() and t.tolist() == t2.tolist() and s2.dtype == np.int64
    assert store[-1][0].tolist() == pairs[-1][0].tolist()
    assert [t.tolist() for _, t in store[10:20:3]] == [t.tolist() for _, t in pairs[10:20:3]]
    with pytest.raises(IndexError):
        store[300]
    # Buckets and batches are the same from the store as from the list.
    config = data_config(bucket_width=3, max_seq_len_source=20, max_seq_len_target=20)
    buckets = data.parallel_buckets(config, data.length_ratio(pairs))
    assert data.length_ratio(store) == pytest.approx(data.length_ratio(pairs))
    assert data.bucket_pairs(store, buckets) == data.bucket_pairs(pairs, buckets)
    batch, again = data.make_batch(pairs, [5, 7, 9]), data.make_batch(store, [5, 7, 9])
    assert torch.equal(batch.source, again.source) and torch.equal(batch.target_output, again.target_output)


@pytest.mark.parametrize("architecture", ["rnn", "transformer", "cnn"])
def test_scored_positions_get_the_logits_of_teacher_forcing(architecture: str) -> None:
    """Training asks only for the logits of real target positions (no padding); they are the
    full teacher-forced logits at those positions, in row-major order."""
    cnn = {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_num_hidden": "32"}
    raw = {"rnn": TINY_RNN, "transformer": TINY_TRANSFORMER, "cnn": {**TINY_RNN, **cnn}}[architecture]
    torch.manual_seed(0)
    model = build_model(cfg.model_config(view(hyperparameters(raw)), 12, 13)).eval()
    pairs = [(np.array([4, 5, 6, 7]), np.array([6, 5, 9])), (np.array([7, 8]), np.array([8, 9, 10, 11, 4]))]
    batch = data.make_batch(pairs, [0, 1])
    scored = batch.target_output != vocabulary.PAD_ID
    with torch.no_grad():
        full = model(batch.source, batch.source_length, batch.target_input)
        only = model(batch.source, batch.source_length, batch.target_input, scored)
    assert only.shape == (int(scored.sum()), 13) == (4 + 6, 13)
    assert torch.allclose(only, full[scored], atol=1e-5)


def test_sources_end_in_eos_within_max_seq_len_source() -> None:
    """As Sockeye's: </s> after each source's tokens; a source already max_seq_len_source long
    ends in </s> in place of its last token (the maximum counts it)."""
    source = torch.tensor([[4, 5, 6], [7, 0, 0], [8, 9, 0]])
    length = torch.tensor([3, 1, 2])
    marked, marked_length = with_source_eos(source, length, max_len=10)
    assert marked.tolist() == [[4, 5, 6, 3], [7, 3, 0, 0], [8, 9, 3, 0]]
    assert marked_length.tolist() == [4, 2, 3]
    marked, marked_length = with_source_eos(source, length, max_len=3)
    assert marked.tolist() == [[4, 5, 3], [7, 3, 0], [8, 9, 3]]
    assert marked_length.tolist() == [3, 2, 3]


def test_new_models_read_sources_with_eos_and_older_model_files_without() -> None:
    hp = hyperparameters(TINY_RNN)
    assert cfg.model_config(view(hp), 12, 13).source_eos is True
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "seq2seq_cnn_tiny" / "model"
    assert json.loads((fixture / "config.json").read_text())["format_version"] == 2
    assert artifacts.load(fixture).config.source_eos is False
