"""BlazingText's word2vec modes (``cbow``, ``skipgram``, ``batch_skipgram``, with ``subwords``).

Two engines train them and write the same artifacts (``vectors``), evaluation (``evaluation``)
and log lines (``progress``), reading the channel the same way (``corpus``) and decaying the
rate on the same line (``learning_rate``):

- ``gensim_engine``: gensim's Word2Vec / FastText, the default;
- ``torch_engine``: our PyTorch engine (minibatches of windows sharing negatives, a fused
  Triton step on GPUs), on GPUs or CPUs, chosen with ``SAGETEXT_WORD2VEC_ENGINE=torch``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError

ENGINE_ENV = "SAGETEXT_WORD2VEC_ENGINE"
ENGINES = ("torch", "gensim")


def use_torch_engine(device: str, env: Mapping[str, str] = os.environ) -> bool:
    """True with ``SAGETEXT_WORD2VEC_ENGINE=torch`` (on any ``device``); gensim otherwise."""
    chosen = env.get(ENGINE_ENV, "").strip().lower()
    if chosen and chosen not in ENGINES:
        raise ClientError(f"{ENGINE_ENV}={chosen!r}: expected one of {', '.join(ENGINES)}")
    return chosen == "torch"


def check_hyperparameters(hp: Hyperparameters) -> None:
    """Combinations SageMaker rejects."""
    if hp.mode == "batch_skipgram" and hp.subwords:
        raise ClientError("subwords=True is not supported in batch_skipgram mode; "
                          "use mode=skipgram or cbow for subword vectors")
    if hp.subwords and hp.min_char > hp.max_char:
        raise ClientError(f"min_char={hp.min_char} is larger than max_char={hp.max_char}")


def train(ctx: TrainingContext) -> None:
    """Train with the chosen engine; rank 0 writes the artifacts into ``ctx.model_dir``."""
    if use_torch_engine(ctx.device):
        from sagetext.algorithms.blazingtext.word2vec.torch_engine.trainer import train_word2vec
    else:
        from sagetext.algorithms.blazingtext.word2vec.gensim_engine.trainer import train_word2vec
    train_word2vec(ctx)
