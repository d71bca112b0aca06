"""The word2vec modes trained by gensim's Word2Vec and FastText (``trainer``), with checkpoints
that hold plain arrays instead of gensim's pickles (``checkpoint``)."""
