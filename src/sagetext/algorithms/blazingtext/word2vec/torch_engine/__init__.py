"""Our word2vec engine on PyTorch, for GPUs and CPUs (``SAGETEXT_WORD2VEC_ENGINE=torch``).

Modules: ``corpus_ids`` (the channel read once into word ids), ``batches`` (subsampling,
windows, negatives, learning rate), ``input_rows`` (word rows and fastText subword bags),
``step`` (the reference update, the kernels' oracle), ``kernels`` (the fused Triton step),
``checkpoint``, ``progress``, ``model`` (the parameters and how they become artifacts),
``trainer`` (epochs, progress; workers combined with ``word2vec.model_sync``). The native
engine reuses ``corpus_ids``, ``input_rows``, ``model``, ``checkpoint`` and ``progress``.
Why our own: gensim has no GPU path, and BlazingText's speed comes from GPU kernels with
negatives shared across a window (HogBatch).
"""
