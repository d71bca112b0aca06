"""Seq2Seq's hyperparameters as a typed, frozen view (``Hyperparameters.typed``).

Names and types only: ``configs/seq2seq.toml`` gives the defaults, ranges and meanings, and a
unit test keeps this class and the spec equal. ``config`` builds the model's, the data's and
the trainer's own configurations from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Seq2SeqHyperparameters:
    batch_size: int
    batch_type: Literal["sentence", "word"]
    beam_size: int
    bleu_sample_size: int
    bucket_width: int
    bucketing_enabled: bool
    checkpoint_frequency_num_batches: int
    checkpoint_threshold: int
    clip_gradient: float
    cnn_activation_type: Literal["glu", "relu", "softrelu", "sigmoid", "tanh"]
    cnn_hidden_dropout: float
    cnn_kernel_width_decoder: int
    cnn_kernel_width_encoder: int
    cnn_num_hidden: int
    decoder_type: Literal["rnn", "cnn", "transformer"]
    embed_dropout_source: float
    embed_dropout_target: float
    encoder_type: Literal["rnn", "cnn", "transformer"]
    fixed_rate_lr_half_life: int
    label_smoothing: float
    learning_rate: float
    loss_type: Literal["cross-entropy"]
    lr_scheduler_type: Literal["plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"]
    max_num_batches: int
    max_num_epochs: int | None
    max_seq_len_source: int
    max_seq_len_target: int
    min_num_epochs: int
    momentum: float | None
    num_embed_source: int
    num_embed_target: int
    num_layers_decoder: int
    num_layers_encoder: int
    optimized_metric: Literal["perplexity", "accuracy", "bleu"]
    optimizer_type: Literal["adam", "sgd", "rmsprop"]
    plateau_reduce_lr_factor: float
    plateau_reduce_lr_threshold: int
    rnn_attention_in_upper_layers: bool
    rnn_attention_num_hidden: int | None
    rnn_attention_type: Literal["dot", "fixed", "mlp", "bilinear"]
    rnn_cell_type: Literal["lstm", "gru"]
    rnn_decoder_hidden_dropout: float
    rnn_decoder_state_init: Literal["last", "avg", "zero"]
    rnn_first_residual_layer: int
    rnn_num_hidden: int
    rnn_residual_connections: bool
    seed: int
    subword_vocab_size: int
    training_metric: Literal["perplexity", "accuracy"]
    transformer_attention_heads: int
    transformer_dropout: float
    transformer_feed_forward_num_hidden: int
    transformer_model_size: int
    weight_decay: float
    weight_init_scale: float
    weight_init_type: Literal["xavier", "uniform"]
    xavier_factor_type: Literal["in", "out", "avg"]
