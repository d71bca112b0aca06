"""BlazingText's hyperparameters as a typed, frozen view (``Hyperparameters.typed``).

Names and types only: ``configs/blazingtext.toml`` gives the defaults, ranges, meanings and
the modes that use each name, and a unit test keeps this class and the spec equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BlazingTextHyperparameters:
    mode: Literal["supervised", "cbow", "skipgram", "batch_skipgram"]
    epochs: int
    learning_rate: float
    min_count: int
    vector_dim: int
    buckets: int
    word_ngrams: int
    loss: Literal["softmax", "ova", "hs", "ns"]
    early_stopping: bool
    patience: int
    min_epochs: int
    window_size: int
    negative_samples: int
    sampling_threshold: float
    batch_size: int
    evaluation: bool
    subwords: bool
    min_char: int
    max_char: int
    seed: int
