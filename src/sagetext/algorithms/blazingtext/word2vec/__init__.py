"""BlazingText's word2vec modes (``cbow``, ``skipgram``, ``batch_skipgram``, with ``subwords``).

Three engines train them and write the same artifacts (``vectors``), evaluation (``evaluation``)
and log lines (``progress``), reading the channel the same way (``corpus``) and decaying the
rate on the same line (``learning_rate``), chosen with ``SAGETEXT_WORD2VEC_ENGINE``:

- ``native_engine``: our compiled CPU engine (HogBatch windows, Hogwild threads), the default
  wherever it was built (``pip install`` compiles it with gcc);
- ``gensim_engine``: gensim's Word2Vec / FastText, the reference, and the default where the
  native engine could not be built;
- ``torch_engine``: our PyTorch engine (minibatches of windows sharing negatives, a fused
  Triton step on GPUs), on GPUs or CPUs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from sagetext.contract.context import TrainingContext
from sagetext.contract.hyperparameters import Hyperparameters
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

ENGINE_ENV = "SAGETEXT_WORD2VEC_ENGINE"
ENGINES = ("native", "torch", "gensim")


def chosen_engine(env: Mapping[str, str] = os.environ) -> str:
    """``SAGETEXT_WORD2VEC_ENGINE`` when set; else ``native`` where it was built, else ``gensim``."""
    chosen = env.get(ENGINE_ENV, "").strip().lower()
    if chosen and chosen not in ENGINES:
        raise ClientError(f"{ENGINE_ENV}={chosen!r}: expected one of {', '.join(ENGINES)}")
    if chosen:
        return chosen
    from sagetext.algorithms.blazingtext.word2vec import native_engine

    return "native" if native_engine.available() else "gensim"


def check_hyperparameters(hp: Hyperparameters) -> None:
    """Combinations SageMaker rejects."""
    if hp.mode == "batch_skipgram" and hp.subwords:
        raise ClientError("subwords=True is not supported in batch_skipgram mode; "
                          "use mode=skipgram or cbow for subword vectors")
    if hp.subwords and hp.min_char > hp.max_char:
        raise ClientError(f"min_char={hp.min_char} is larger than max_char={hp.max_char}")


def train(ctx: TrainingContext) -> None:
    """Train with the chosen engine; rank 0 writes the artifacts into ``ctx.model_dir``."""
    engine = chosen_engine()
    if engine == "native":
        from sagetext.algorithms.blazingtext.word2vec.native_engine.trainer import train_word2vec
    elif engine == "torch":
        from sagetext.algorithms.blazingtext.word2vec.torch_engine.trainer import train_word2vec
    else:
        from sagetext.algorithms.blazingtext.word2vec import native_engine
        from sagetext.algorithms.blazingtext.word2vec.gensim_engine.trainer import train_word2vec

        if ENGINE_ENV not in os.environ and native_engine.IMPORT_ERROR:
            log.warning("The native word2vec engine is not built (%s); training with gensim", native_engine.IMPORT_ERROR)
    train_word2vec(ctx)
