"""BlazingText's word2vec modes (``cbow``, ``skipgram``, ``batch_skipgram``, with ``subwords``).

Two engines train them and write the same artifacts (``vectors``), evaluation (``evaluation``)
and log lines (``progress``), reading the channel the same way (``corpus``) and decaying the
rate on the same line (``learning_rate``):

- ``gensim_engine``: gensim's Word2Vec / FastText, the default;
- ``torch_engine``: our PyTorch engine (minibatches of windows sharing negatives, a fused
  Triton step on GPUs), on GPUs or CPUs, chosen with the ``word2vec_engine`` setting
  (``SAGETEXT_WORD2VEC_ENGINE=torch``).
"""

from __future__ import annotations

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.contract.context import TrainingContext
from sagetext.errors import ClientError


def check_hyperparameters(hp: BlazingTextHyperparameters) -> None:
    """Combinations SageMaker rejects."""
    if hp.mode == "batch_skipgram" and hp.subwords:
        raise ClientError("subwords=True is not supported in batch_skipgram mode; "
                          "use mode=skipgram or cbow for subword vectors")
    if hp.subwords and hp.min_char > hp.max_char:
        raise ClientError(f"min_char={hp.min_char} is larger than max_char={hp.max_char}")


def train(ctx: TrainingContext) -> None:
    """Train with the chosen engine; rank 0 writes the artifacts into ``ctx.model_dir``."""
    if ctx.settings.word2vec_engine == "torch":  # on any device; gensim is the default
        from sagetext.algorithms.blazingtext.word2vec.torch_engine import trainer as torch_trainer

        torch_trainer.train_word2vec(ctx)
    else:
        from sagetext.algorithms.blazingtext.word2vec.gensim_engine import trainer as gensim_trainer

        gensim_trainer.train_word2vec(ctx)
