"""NTM's hyperparameters as a typed, frozen view (``Hyperparameters.typed``).

Names and types only: ``configs/ntm.toml`` gives the defaults, ranges and meanings, and a unit
test keeps this class and the spec equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class NtmHyperparameters:
    feature_dim: int
    num_topics: int
    batch_norm: bool
    clip_gradient: float
    encoder_layers: tuple[int, ...] | Literal["auto"]
    encoder_layers_activation: Literal["sigmoid", "tanh", "relu"]
    epochs: int
    learning_rate: float
    mini_batch_size: int
    num_patience_epochs: int
    optimizer: Literal["sgd", "adam", "adagrad", "adadelta", "rmsprop"]
    rescale_gradient: float
    sub_sample: float
    tolerance: float
    weight_decay: float
    seed: int
