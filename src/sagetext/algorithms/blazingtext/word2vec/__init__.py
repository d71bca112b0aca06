"""BlazingText's word2vec modes (``cbow``, ``skipgram``, ``batch_skipgram``, with ``subwords``).

Three engines train them and write the same artifacts (``vectors``), evaluation (``evaluation``)
and log lines (``progress``), reading the channel the same way (``corpus``), decaying the
rate on the same line (``learning_rate``) and combining workers' models alike (``model_sync``),
chosen with ``SAGETEXT_WORD2VEC_ENGINE``:

- ``native_engine``: our compiled CPU engine (HogBatch windows, Hogwild threads), the default
  wherever it was built (``pip install`` compiles it with gcc);
- ``gensim_engine``: gensim's Word2Vec / FastText, the reference, and the default where the
  native engine could not be built;
- ``torch_engine``: our PyTorch engine (minibatches of windows sharing negatives, a fused
  Triton step on GPUs), on GPUs or CPUs.
"""

from __future__ import annotations

import logging

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.contract.context import TrainingContext
from sagetext.contract.settings import Settings
from sagetext.errors import ClientError

log = logging.getLogger(__name__)


def chosen_engine(settings: Settings) -> str:
    """The ``word2vec_engine`` setting (``SAGETEXT_WORD2VEC_ENGINE``) when given; else ``native``
    where it was built, else ``gensim``."""
    if settings.word2vec_engine:
        return settings.word2vec_engine
    from sagetext.algorithms.blazingtext.word2vec import native_engine

    if native_engine.available():
        return "native"
    log.warning("The native word2vec engine is not built (%s); training with gensim", native_engine.IMPORT_ERROR)
    return "gensim"


def check_hyperparameters(hp: BlazingTextHyperparameters) -> None:
    """Combinations SageMaker rejects."""
    if hp.mode == "batch_skipgram" and hp.subwords:
        raise ClientError("subwords=True is not supported in batch_skipgram mode; "
                          "use mode=skipgram or cbow for subword vectors")
    if hp.subwords and hp.min_char > hp.max_char:
        raise ClientError(f"min_char={hp.min_char} is larger than max_char={hp.max_char}")


def train(ctx: TrainingContext) -> None:
    """Train with the chosen engine; rank 0 writes the artifacts into ``ctx.model_dir``."""
    engine = chosen_engine(ctx.settings)  # each trainer imported only when used
    if engine == "native":
        from sagetext.algorithms.blazingtext.word2vec.native_engine import trainer as native_trainer

        native_trainer.train_word2vec(ctx)
    elif engine == "torch":
        from sagetext.algorithms.blazingtext.word2vec.torch_engine import trainer as torch_trainer

        torch_trainer.train_word2vec(ctx)
    else:
        from sagetext.algorithms.blazingtext.word2vec.gensim_engine import trainer as gensim_trainer

        gensim_trainer.train_word2vec(ctx)
