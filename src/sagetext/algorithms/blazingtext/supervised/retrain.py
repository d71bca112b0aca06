"""``sagetext quantize --retrain``: what fastText's ``quantize -retrain`` does after the cutoff.

The cutoff keeps only some input rows (``quantize.prune``); a line's other words and n-grams
then add nothing to its hidden vector, so the kept rows and the output matrix are trained again
on the training file, with the pruned dictionary, before product quantization: fastText's
per-line SGD (the compiled step), the rate falling linearly from ``lr`` to 0 over ``epochs``
passes (fastText's default rate for it is 0.05, its default passes the model's own). The file is
read as fastText reads ``-input``: ``__label__`` lines, tokens split on whitespace, in order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format.model_file import FastTextModel
from sagetext.algorithms.blazingtext.fasttext_format.quantize import Pruned
from sagetext.algorithms.blazingtext.supervised import compiled
from sagetext.algorithms.blazingtext.supervised.batches import LineBatch
from sagetext.algorithms.blazingtext.supervised.encoding import Encoded, TokenMaps, TokenTable, encode
from sagetext.data.text import line_chunks, tokenize
from sagetext.errors import ClientError

log = logging.getLogger(__name__)

DEFAULT_LR = 0.05  # fastText's quantize: -lr defaults to 0.05


def retrain(model: FastTextModel, pruned: Pruned, train_file: Path, epochs: int | None = None, lr: float = DEFAULT_LR,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pruned input matrix and the output matrix after ``epochs`` (default: the model's own)
    passes over ``train_file``."""
    epochs = model.args.epoch if epochs is None else epochs
    if epochs < 1 or not lr > 0:
        raise ClientError(f"--retrain: epochs={epochs}, learning rate={lr}: expected at least 1 and above 0")
    loss = model.args.loss_name
    if loss not in compiled.LOSS_CODES:
        raise ClientError(f"--retrain: the model's loss is {loss}; retraining supports {sorted(compiled.LOSS_CODES)}")
    if not compiled.available():
        raise ClientError("--retrain needs the compiled SGD extension, which this installation lacks (no C compiler)")
    lines = _pruned_lines(read_lines(model, train_file), model, pruned)
    if lines.num_lines == 0:
        raise ClientError(f"--input {train_file}: no line has a label of the model and a kept word or n-gram")
    input, output = np.array(pruned.input, dtype=np.float32), np.array(model.output, dtype=np.float32)
    rows = np.arange(len(input), dtype=np.int32)
    total, done = epochs * int(lines.ntokens.sum()), 0
    for epoch in range(epochs):
        for first in range(0, lines.num_lines, compiled.LINES_PER_BATCH):
            part = lines.lines(first, min(first + compiled.LINES_PER_BATCH, lines.num_lines))
            tokens = int(part.ntokens.sum())
            batch = LineBatch(first, rows, part.inputs.astype(np.int32), part.offsets[:-1].astype(np.int32),
                              part.labels.astype(np.int64), part.label_offsets.astype(np.int64), tokens)
            compiled.train_batch(input, output, batch, lr * (1 - done / total), lr * (1 - (done + tokens) / total),
                                 loss, (seed, epoch))
            done += tokens
        log.info("Retrained epoch %d/%d on %d lines", epoch + 1, epochs, lines.num_lines)
    return input, output


def read_lines(model: FastTextModel, path: Path) -> Encoded:
    """Every line of ``path`` as the model's (unpruned) input rows and label ids."""
    table, blocks = TokenTable(), []
    with open(path, "rb") as f:
        for chunk in line_chunks(f):
            block = tokenize(chunk)
            blocks.append((table.ids(block), block.is_label, block.line_lengths))
    maps = TokenMaps.build(table, model.dictionary)
    args = model.args
    return Encoded.concatenate([encode(ids, is_label, lengths, maps, model.dictionary.nwords, args.word_ngrams,
                                       args.bucket) for ids, is_label, lengths in blocks])


def _pruned_lines(lines: Encoded, model: FastTextModel, pruned: Pruned) -> Encoded:
    """``lines`` with each input row renumbered as in the pruned matrix; rows not kept dropped."""
    nwords, kept_words = model.dictionary.nwords, pruned.dictionary.nwords
    new_row = np.full(len(model.input), -1, dtype=np.int64)
    word_index = pruned.dictionary.word_index
    for old, word in enumerate(model.dictionary.words):
        new_row[old] = word_index.get(word, -1)
    if pruned.ngram_index is not None:
        buckets, positions = pruned.ngram_index
        new_row[nwords + buckets] = kept_words + positions
    renumbered = new_row[lines.inputs]
    kept = renumbered >= 0
    line_of_input = np.repeat(np.arange(lines.num_lines), np.diff(lines.offsets))
    offsets = np.zeros(lines.num_lines + 1, dtype=np.int64)
    np.cumsum(np.bincount(line_of_input[kept], minlength=lines.num_lines), out=offsets[1:])
    return Encoded(renumbered[kept].astype(np.int32), offsets, lines.labels, lines.label_offsets,
                   lines.ntokens).trainable()
