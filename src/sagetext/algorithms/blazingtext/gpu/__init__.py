"""BlazingText word2vec on PyTorch: the GPU engine, which runs on CPU too.

``trainer.train_word2vec`` takes the place of the gensim trainer (``word2vec.py``) when
``SAGETEXT_WORD2VEC_ENGINE=torch``. It is opt-in for now, on GPUs too: it has been tested on CPU
only (no GPU was available yet to check its speed and its quality at full scale); once that is
done it becomes the default on CUDA devices. Why our
own code: gensim has no GPU path, and BlazingText's speed comes from GPU kernels with negatives
shared across a window (HogBatch).

Modules: ``corpus_ids`` (the channel read once into word ids), ``batches`` (subsampling,
windows, negatives, learning rate), ``input_rows`` (word rows and fastText subword bags),
``step`` (the reference update, the kernels' oracle), ``kernels`` (the fused Triton step),
``averaging`` (combining data-parallel workers), ``state`` (checkpoints), ``trainer`` (epochs,
progress, artifacts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sagetext.errors import ClientError

ENGINE_ENV = "SAGETEXT_WORD2VEC_ENGINE"
ENGINES = ("torch", "gensim")


def use_torch_engine(device: str, env: Mapping[str, str] = os.environ) -> bool:
    """True with ``SAGETEXT_WORD2VEC_ENGINE=torch`` (on any ``device``); gensim otherwise."""
    chosen = env.get(ENGINE_ENV, "").strip().lower()
    if chosen and chosen not in ENGINES:
        raise ClientError(f"{ENGINE_ENV}={chosen!r}: expected one of {', '.join(ENGINES)}")
    return chosen == "torch"
