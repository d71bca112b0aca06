"""Checkpoints of the CPU word2vec trainer (gensim), saved and resumed through ``ctx.checkpoints``.

gensim's own ``save()`` pickles the whole model, and nothing from a folder a user controls is
ever unpickled here (DESIGN.md). So a checkpoint's state holds plain values only, written by
``contract/checkpoints`` (``torch.save``, atomically) and read back with ``weights_only=True``:

* the vocabulary: the words in gensim's order and their counts, the corpus' sentence and
  token counts (so a resumed job needs no vocabulary pass over the data);
* the weights: the input vectors (``vectors_vocab`` with subwords), ``syn1neg``, and with
  subwords the char n-gram vectors;
* where training stood: the position (epochs completed, then sentences of the next epoch
  already trained: a SIGTERM stops mid-epoch), and the learning rate there.

``restore`` rebuilds the vocabulary from the counts (``build_vocab_from_freq``: the same
min_count filtering, down-sampling and negative-sampling table as the first run) and copies
the weights in, word by word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gensim.models import FastText, Word2Vec

from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.contract.checkpoints import Position
from sagetext.contract.context import TrainingContext
from sagetext.errors import ClientError

KIND = "blazingtext-word2vec-gensim/2"


def epochs_done(position: Position, corpus_count: int) -> float:
    """Epochs trained at ``position``, whose step counts the sentences of the next epoch."""
    return position.epoch + position.step / max(corpus_count, 1)


@dataclass(frozen=True)
class Saved:
    position: Position  # step: sentences of the next epoch already trained
    alpha: float  # the learning rate at that position
    corpus_count: int  # sentences per pass
    corpus_total_words: int  # raw tokens per pass
    words: list[str]
    counts: list[int]
    input: np.ndarray
    output: np.ndarray
    ngrams: np.ndarray | None


def save(ctx: TrainingContext, model: Word2Vec, position: Position, alpha: float) -> None:
    """Save the model at ``position`` (rate ``alpha``) when checkpoints are configured."""
    if not (ctx.checkpoints.enabled and ctx.is_writer):  # the others would build the state for nothing
        return
    import torch

    wv = model.wv
    state = {
        "alpha": alpha, "corpus_count": int(model.corpus_count),
        "corpus_total_words": int(model.corpus_total_words), "words": list(wv.index_to_key),
        "counts": torch.as_tensor(np.asarray(wv.expandos["count"], dtype=np.int64)),
        "input": torch.from_numpy(_input(model)), "output": torch.from_numpy(model.syn1neg),
    }
    if isinstance(model, FastText):
        state["ngrams"] = torch.from_numpy(wv.vectors_ngrams)
    ctx.checkpoints.save(KIND, position, state)


def load(ctx: TrainingContext) -> Saved | None:
    """The saved state, or None; a checkpoint whose arrays do not fit this job is a ClientError."""
    resumed = ctx.checkpoints.load(KIND)
    if resumed is None:
        return None
    saved = resumed.state
    hp = ctx.hyperparameters.typed(BlazingTextHyperparameters)
    try:
        state = Saved(
            position=resumed.position, alpha=float(saved["alpha"]),
            corpus_count=int(saved["corpus_count"]), corpus_total_words=int(saved["corpus_total_words"]),
            words=[str(w) for w in saved["words"]], counts=[int(c) for c in saved["counts"].tolist()],
            input=saved["input"].numpy(), output=saved["output"].numpy(),
            ngrams=saved["ngrams"].numpy() if "ngrams" in saved else None)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ClientError(f"checkpoint {ctx.checkpoints.path} is incomplete ({type(exc).__name__}: {exc}); "
                          "remove it to start afresh") from None
    rows = (len(state.words), hp.vector_dim)
    shapes_fit = (len(state.counts) == rows[0] and state.input.shape == rows and state.output.shape == rows
                  and (state.ngrams is None) != bool(hp.subwords)
                  and (state.ngrams is None or state.ngrams.shape == (hp.buckets, hp.vector_dim)))
    if not shapes_fit or state.corpus_count < 1 or state.position.step >= state.corpus_count:
        raise ClientError(f"checkpoint {ctx.checkpoints.path} does not fit this job (its arrays do not match "
                          f"vector_dim={hp.vector_dim}, subwords={hp.subwords}, buckets={hp.buckets}); "
                          "remove it to start afresh")
    return state


def restore(model: Word2Vec, saved: Saved) -> None:
    """Give the untrained ``model`` the saved vocabulary and weights."""
    # gensim orders words by count, ties by reverse insertion: inserting in reverse keeps the saved order.
    frequencies = dict(zip(reversed(saved.words), reversed(saved.counts)))
    model.build_vocab_from_freq(frequencies, corpus_count=saved.corpus_count)
    model.corpus_total_words = saved.corpus_total_words  # raw tokens, not just those min_count keeps
    wv = model.wv
    if len(wv) != len(saved.words):
        raise ClientError(f"checkpoint vocabulary of {len(saved.words)} words gives {len(wv)} words with "
                          f"min_count={model.min_count}; remove the checkpoint to start afresh")
    rows = np.fromiter((wv.key_to_index[w] for w in saved.words), dtype=np.int64, count=len(saved.words))
    _input(model)[rows] = saved.input
    model.syn1neg[rows] = saved.output
    if isinstance(model, FastText):
        assert saved.ngrams is not None  # load() checked it
        wv.vectors_ngrams[:] = saved.ngrams
        wv.adjust_vectors()


def _input(model: Word2Vec) -> np.ndarray:
    """The trained input matrix: word vectors, or with subwords the whole-word part of them."""
    return model.wv.vectors_vocab if isinstance(model, FastText) else model.wv.vectors
