"""Our compiled word2vec engine for CPUs, the default there (``SAGETEXT_WORD2VEC_ENGINE=native``).

Modules: ``csrc/`` (C: the tokenizer, the HogBatch update of a window, Hogwild threads over
blocks of sentences, built into ``_native`` by ``pip install``), ``corpus`` (the channel read
once into word ids by the compiled tokenizer), ``shard`` (a worker's part of the corpus cut
into blocks and sync segments), ``trainer`` (epochs, syncs across workers, checkpoints,
progress, artifacts). It shares the vocabulary ranking, initialisation, model combination,
checkpoints and progress lines with ``torch_engine``.

Why our own code rather than gensim: gensim re-tokenizes the text every epoch in Python and
gives every (context, centre) pair its own negatives; reading the corpus once into ids and
sharing a window's negatives across its context words (HogBatch: Ji et al., "Parallelizing
Word2Vec in Shared and Distributed Memory", 2016) turns the inner loop into small dense
products over rows that stay in cache. BENCHMARKS.md has the figures against gensim.
"""

from __future__ import annotations

try:
    from . import _native
except ImportError as exc:  # built by `pip install` with gcc; optional so that the package installs without one
    _native = None  # type: ignore[assignment]  # callers check available() first
    IMPORT_ERROR: str | None = str(exc)
else:
    IMPORT_ERROR = None


def available() -> bool:
    """Whether the compiled part was built and loads."""
    return _native is not None
