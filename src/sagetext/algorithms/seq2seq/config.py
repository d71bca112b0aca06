"""Typed Seq2Seq configurations, built from the hyperparameters in one place (Sockeye habit).

``model.py``, ``transformer.py``, ``data.py`` and ``trainer.py`` never see the hyperparameters:
they get these frozen dataclasses, filled from the typed view (``Seq2SeqHyperparameters``)
field by field, so that no default is written here (the spec in configs/ gives them).
``ModelConfig`` is also what the model folder's ``config.json`` stores, so serving rebuilds the
same network without the hyperparameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from sagetext.algorithms.seq2seq.hyperparameters import Seq2SeqHyperparameters
from sagetext.errors import ClientError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Config = TypeVar("Config", bound="DataclassInstance")


@dataclass(frozen=True)
class ModelConfig:
    encoder_type: str  # "rnn", "cnn" or "transformer" (see COMBINATIONS)
    decoder_type: str
    source_vocab_size: int
    target_vocab_size: int
    num_layers_encoder: int
    num_layers_decoder: int
    # rnn
    num_embed_source: int
    num_embed_target: int
    rnn_cell_type: str
    rnn_num_hidden: int
    rnn_attention_type: str
    rnn_attention_num_hidden: int
    rnn_attention_in_upper_layers: bool
    rnn_decoder_state_init: str
    rnn_decoder_hidden_dropout: float
    rnn_residual_connections: bool
    rnn_first_residual_layer: int
    embed_dropout_source: float
    embed_dropout_target: float
    weight_init_type: str
    weight_init_scale: float
    xavier_factor_type: str
    # cnn
    cnn_num_hidden: int
    cnn_kernel_width_encoder: int
    cnn_kernel_width_decoder: int
    cnn_activation_type: str
    cnn_hidden_dropout: float
    # transformer (extension)
    transformer_model_size: int
    transformer_attention_heads: int
    transformer_feed_forward_num_hidden: int
    transformer_dropout: float
    max_seq_len_source: int
    max_seq_len_target: int
    # every source ends in </s> (within max_seq_len_source), in training and in decoding, as in
    # Sockeye 1.x (and so AWS's Seq2Seq) and Sockeye 3; False only in model files made before
    source_eos: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        missing = [f.name for f in fields(cls) if f.name not in values]
        if missing:
            raise ClientError(f"the model's config.json lacks {', '.join(missing)}")
        return cls(**{f.name: values[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class DataConfig:
    batch_size: int
    batch_type: str
    bucket_width: int
    bucketing_enabled: bool
    max_seq_len_source: int
    max_seq_len_target: int


@dataclass(frozen=True)
class TrainerConfig:
    optimizer_type: str
    learning_rate: float
    momentum: float | None
    weight_decay: float
    clip_gradient: float
    label_smoothing: float
    lr_scheduler_type: str
    plateau_reduce_lr_factor: float
    plateau_reduce_lr_threshold: int
    fixed_rate_lr_half_life: int
    checkpoint_frequency_num_batches: int
    checkpoint_threshold: int
    optimized_metric: str
    training_metric: str
    min_num_epochs: int
    max_num_epochs: int | None
    max_num_batches: int
    bleu_sample_size: int
    beam_size: int
    seed: int


# Encoder/decoder pairs that train. SageMaker documents rnn and cnn for both, with no rule tying
# them, and Sockeye 1.x (which it is built on) builds any encoder with any decoder; a cnn decoder
# there needs the encoder's size to equal cnn_num_hidden, where we project instead. The
# transformer (an extension) pairs only with itself.
COMBINATIONS = (("rnn", "rnn"), ("rnn", "cnn"), ("cnn", "rnn"), ("cnn", "cnn"), ("transformer", "transformer"))


def check(hp: Seq2SeqHyperparameters) -> None:
    """Rules the spec's ranges cannot express; one ClientError listing every problem."""
    errors = []
    if hp.encoder_type == "rnn" and hp.rnn_num_hidden % 2:
        errors.append(f"rnn_num_hidden={hp.rnn_num_hidden}: expected an even number "
                      "(the bidirectional encoder splits it across its two directions)")
    if (hp.encoder_type, hp.decoder_type) not in COMBINATIONS:
        allowed = ", ".join(f"{encoder}/{decoder}" for encoder, decoder in COMBINATIONS)
        errors.append(f"encoder_type={hp.encoder_type} with decoder_type={hp.decoder_type}: expected one of "
                      f"{allowed} (encoder/decoder; transformer is an extension and pairs only with itself)")
    if hp.momentum is not None and hp.optimizer_type != "sgd":
        errors.append(f"momentum={hp.momentum}: only used with optimizer_type=sgd, not {hp.optimizer_type}")
    if hp.encoder_type == "transformer" and hp.transformer_model_size % hp.transformer_attention_heads:
        errors.append(f"transformer_model_size={hp.transformer_model_size}: expected a multiple of "
                      f"transformer_attention_heads={hp.transformer_attention_heads}")
    if hp.max_num_epochs is not None and hp.max_num_epochs < hp.min_num_epochs:
        errors.append(f"max_num_epochs={hp.max_num_epochs}: expected >= min_num_epochs={hp.min_num_epochs}")
    if errors:
        raise ClientError("Invalid hyperparameters: " + "; ".join(errors) + ".")


def model_config(hp: Seq2SeqHyperparameters, source_vocab_size: int, target_vocab_size: int) -> ModelConfig:
    return _config(ModelConfig, hp, source_vocab_size=source_vocab_size,
                   target_vocab_size=target_vocab_size,
                   rnn_attention_num_hidden=hp.rnn_attention_num_hidden or hp.rnn_num_hidden, source_eos=True)


def data_config(hp: Seq2SeqHyperparameters) -> DataConfig:
    return _config(DataConfig, hp)


def trainer_config(hp: Seq2SeqHyperparameters) -> TrainerConfig:
    return _config(TrainerConfig, hp)


def _config(config: type[Config], hp: Seq2SeqHyperparameters, **own: Any) -> Config:
    """``config`` with the hyperparameters of the same names, and ``own`` for the rest."""
    given = asdict(hp)
    return config(**{f.name: own[f.name] if f.name in own else given[f.name] for f in fields(config)})
