"""Typed Seq2Seq configurations, built from the hyperparameters in one place (Sockeye habit).

``model.py``, ``transformer.py``, ``data.py`` and ``trainer.py`` never see the hyperparameter
mapping: they get these frozen dataclasses. ``ModelConfig`` is also what the model folder's
``config.json`` stores, so serving rebuilds the same network without the hyperparameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sagetext.errors import ClientError


@dataclass(frozen=True)
class ModelConfig:
    architecture: str  # "rnn" or "transformer"
    source_vocab_size: int
    target_vocab_size: int
    num_layers_encoder: int = 1
    num_layers_decoder: int = 1
    # rnn
    num_embed_source: int = 512
    num_embed_target: int = 512
    rnn_cell_type: str = "lstm"
    rnn_num_hidden: int = 1024
    rnn_attention_type: str = "mlp"
    rnn_attention_num_hidden: int = 1024
    rnn_attention_in_upper_layers: bool = True
    rnn_decoder_state_init: str = "last"
    rnn_decoder_hidden_dropout: float = 0.0
    rnn_residual_connections: bool = False
    rnn_first_residual_layer: int = 2
    embed_dropout_source: float = 0.0
    embed_dropout_target: float = 0.0
    weight_init_type: str = "xavier"
    weight_init_scale: float = 2.34
    xavier_factor_type: str = "in"
    # transformer (extension)
    transformer_model_size: int = 512
    transformer_attention_heads: int = 8
    transformer_feed_forward_num_hidden: int = 2048
    transformer_dropout: float = 0.1
    max_seq_len_source: int = 100
    max_seq_len_target: int = 100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DataConfig:
    batch_size: int = 64
    batch_type: str = "sentence"
    bucket_width: int = 10
    bucketing_enabled: bool = True
    max_seq_len_source: int = 100
    max_seq_len_target: int = 100


@dataclass(frozen=True)
class TrainerConfig:
    optimizer_type: str = "adam"
    learning_rate: float = 3e-4
    momentum: float | None = None
    weight_decay: float = 0.0
    clip_gradient: float = 1.0
    label_smoothing: float = 0.0
    lr_scheduler_type: str = "plateau_reduce"
    plateau_reduce_lr_factor: float = 0.5
    plateau_reduce_lr_threshold: int = 3
    fixed_rate_lr_half_life: int = 10
    checkpoint_frequency_num_batches: int = 1000
    checkpoint_threshold: int = 3
    optimized_metric: str = "perplexity"
    training_metric: str = "perplexity"
    min_num_epochs: int = 0
    max_num_epochs: int | None = None
    max_num_batches: int = -1
    bleu_sample_size: int = 0
    beam_size: int = 5
    seed: int = 0


def check(hp: Mapping[str, Any]) -> None:
    """Rules the spec's ranges cannot express; one ClientError listing every problem."""
    errors = []
    if hp["rnn_num_hidden"] % 2:
        errors.append(f"rnn_num_hidden={hp['rnn_num_hidden']}: expected an even number "
                      "(the bidirectional encoder splits it across its two directions)")
    for key in ("encoder_type", "decoder_type"):
        if hp[key] == "cnn":
            errors.append(f"{key}=cnn is not supported yet; use rnn or transformer")
    if "cnn" not in (hp["encoder_type"], hp["decoder_type"]) and hp["encoder_type"] != hp["decoder_type"]:
        errors.append(f"encoder_type={hp['encoder_type']} with decoder_type={hp['decoder_type']}: "
                      "both must be rnn or both transformer")
    if hp.get("momentum") is not None and hp["optimizer_type"] != "sgd":
        errors.append(f"momentum={hp['momentum']}: only used with optimizer_type=sgd, "
                      f"not {hp['optimizer_type']}")
    if hp["encoder_type"] == "transformer" and hp["transformer_model_size"] % hp["transformer_attention_heads"]:
        errors.append(f"transformer_model_size={hp['transformer_model_size']}: expected a multiple of "
                      f"transformer_attention_heads={hp['transformer_attention_heads']}")
    if hp.get("max_num_epochs") is not None and hp["max_num_epochs"] < hp["min_num_epochs"]:
        errors.append(f"max_num_epochs={hp['max_num_epochs']}: expected >= min_num_epochs={hp['min_num_epochs']}")
    if errors:
        raise ClientError("Invalid hyperparameters: " + "; ".join(errors) + ".")


def model_config(hp: Mapping[str, Any], source_vocab_size: int, target_vocab_size: int) -> ModelConfig:
    attention_hidden = hp["rnn_attention_num_hidden"] or hp["rnn_num_hidden"]
    names = [f for f in ModelConfig.__dataclass_fields__
             if f not in ("architecture", "source_vocab_size", "target_vocab_size", "rnn_attention_num_hidden")]
    return ModelConfig(architecture=hp["encoder_type"], source_vocab_size=source_vocab_size,
                       target_vocab_size=target_vocab_size, rnn_attention_num_hidden=attention_hidden,
                       **{name: hp[name] for name in names})


def data_config(hp: Mapping[str, Any]) -> DataConfig:
    return DataConfig(**{name: hp[name] for name in DataConfig.__dataclass_fields__})


def trainer_config(hp: Mapping[str, Any]) -> TrainerConfig:
    return TrainerConfig(**{name: hp[name] for name in TrainerConfig.__dataclass_fields__})
