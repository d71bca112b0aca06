"""Compress a supervised model into fastText's ``.ftz`` (what ``fasttext quantize`` does).

Two steps, as in fastText's ``FastText::quantize``:

- ``cutoff`` (optional): keep only that many input rows, ``</s>`` first and then the rows of
  largest norm (``selectEmbeddings``); the dictionary keeps the chosen words (in their order)
  and every label, and the kept n-gram buckets get an index (bucket -> row after the words,
  in the order chosen; ``Dictionary::prune``); other n-grams are then ignored at prediction.
- product quantisation of the input matrix (and the output with ``qout``): each row cut into
  slices of ``dsub`` dimensions, each slice replaced by the nearest of 256 centroids found by
  k-means (25 rounds on at most 65,536 rows, ``ProductQuantizer``); with ``qnorm`` the rows
  are normalised first and their norms quantised apart (256 one-dimensional centroids).

The k-means here is fastText's algorithm with numpy's random generator, so the centroids are
not fastText's bit for bit; the file is fastText's format, and fastText and sagetext decode
it to the same vectors, hence the same predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format import model_file
from sagetext.algorithms.blazingtext.fasttext_format.dictionary import EOS, Dictionary
from sagetext.algorithms.blazingtext.fasttext_format.quantized import KSUB, ProductQuantizer, QuantizedMatrix
from sagetext.errors import ClientError

KMEANS_ROUNDS = 25  # fastText's niter_
MAX_POINTS = KSUB * 256  # fastText trains each slice on at most this many rows
SEED = 1234  # fastText's ProductQuantizer seed
SPLIT_EPS = 1e-7  # fastText's eps_: how far apart the two halves of a split cluster start
OUTPUT_DSUB = 2  # fastText quantizes the output matrix with slices of 2 whatever dsub is
_CHUNK = 16384  # rows per distance computation (16384 x 256 floats)


@dataclass(frozen=True)
class Pruned:
    """A model cut to ``cutoff`` input rows (see module doc)."""

    dictionary: Dictionary
    input: np.ndarray  # kept word rows (dictionary order), then kept n-gram rows
    ngram_index: tuple[np.ndarray, np.ndarray] | None  # (buckets, rows after the words); None: not pruned


Retrain = Callable[[model_file.FastTextModel, "Pruned"], tuple[np.ndarray, np.ndarray]]


def quantize_file(source: Path, target: Path, cutoff: int = 0, dsub: int = 2, qnorm: bool = False,
                  qout: bool = False, retrain: Retrain | None = None) -> None:
    """Read the supervised ``.bin`` at ``source`` and write its quantized ``.ftz`` to ``target``;
    ``retrain`` (with a cutoff only, as fastText) gives the kept rows and the output matrix new
    values before quantization (``supervised.retrain``)."""
    model = model_file.read(source.read_bytes(), source.name)
    if model.args.model != 3:
        raise ClientError(f"{source} is a word-vector model; only supervised models can be quantized (as in fastText)")
    if model.ngram_rows is not None or model.args.maxn > 0:
        raise ClientError(f"{source} is already pruned or uses character n-grams; quantize the model training wrote")
    pruned = prune(model.dictionary, model.input, cutoff)
    output = model.output
    if retrain is not None:
        if pruned.ngram_index is None:
            raise ClientError(f"--retrain: cutoff={cutoff} keeps all {len(model.input)} input rows; retraining "
                              "follows a cutoff below that (as in fastText)")
        retrained, output = retrain(model, pruned)
        pruned = Pruned(pruned.dictionary, retrained, pruned.ngram_index)
    input_matrix = quantize_matrix(pruned.input, dsub, qnorm, "input matrix")
    output_matrix = quantize_matrix(output, OUTPUT_DSUB, qnorm, "output matrix") if qout else output
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        model_file.write_quantized(f, model.args, pruned.dictionary, pruned.ngram_index, input_matrix, output_matrix)
    tmp.replace(target)


def prune(dictionary: Dictionary, matrix: np.ndarray, cutoff: int) -> Pruned:
    """Keep ``cutoff`` input rows (``</s>`` first, then by descending norm); ``cutoff`` 0 or at
    least the number of rows keeps everything."""
    if cutoff <= 0 or cutoff >= len(matrix):
        return Pruned(dictionary, matrix, None)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    if not np.isfinite(norms).all():
        raise ClientError("the model's input matrix holds NaN or infinite values; it cannot be quantized")
    order = np.argsort(-norms, kind="stable")
    eos = dictionary.word_index.get(EOS)
    if eos is not None:
        order = np.concatenate([[eos], order[order != eos]])
    chosen = order[:cutoff]
    nwords = dictionary.nwords
    words = np.sort(chosen[chosen < nwords])
    ngrams = chosen[chosen >= nwords]
    kept = Dictionary(tuple(dictionary.words[i] for i in words.tolist()), dictionary.word_counts[words],
                      dictionary.labels, dictionary.label_counts, dictionary.ntokens)
    index = (ngrams - nwords, np.arange(len(ngrams), dtype=np.int64))  # bucket -> its row among the n-grams
    return Pruned(kept, np.ascontiguousarray(matrix[np.concatenate([words, ngrams])]), index)


def quantize_matrix(matrix: np.ndarray, dsub: int, qnorm: bool, what: str) -> QuantizedMatrix:
    """``matrix`` (rows, dim) product-quantized with slices of ``dsub`` (see module doc)."""
    rows, dim = matrix.shape
    if rows < KSUB:
        raise ClientError(f"the {what} has {rows} rows; quantization needs at least {KSUB} (fastText's limit)")
    if dsub < 1:
        raise ClientError(f"dsub={dsub}: expected a positive integer")
    rng = np.random.default_rng(SEED)
    data = np.array(matrix, dtype=np.float32)
    norm_codes = norm_quantizer = None
    if qnorm:
        norms = np.sqrt(np.einsum("ij,ij->i", data, data)).astype(np.float32)
        data /= np.where(norms == 0, 1.0, norms)[:, None]
        norm_quantizer = _train(norms[:, None], 1, rng)
        norm_codes = _codes(norms[:, None], norm_quantizer)[:, 0]
    quantizer = _train(data, min(dsub, dim), rng)
    return QuantizedMatrix(rows, dim, _codes(data, quantizer), quantizer, norm_codes, norm_quantizer)


def _train(data: np.ndarray, dsub: int, rng: np.random.Generator) -> ProductQuantizer:
    """k-means of each slice over at most MAX_POINTS rows (fastText's ``ProductQuantizer::train``)."""
    rows, dim = data.shape
    shape = ProductQuantizer(dim, dsub, np.zeros(0, dtype=np.float32))
    centroids = np.zeros(dim * KSUB, dtype=np.float32)
    sample = np.arange(rows)
    for m in range(shape.nsubq):
        if rows > MAX_POINTS:
            sample = rng.permutation(rows)[:MAX_POINTS]
        start = m * dsub
        width = dsub if m < shape.nsubq - 1 else shape.lastdsub
        points = np.ascontiguousarray(data[sample, start:start + width])
        centroids[m * KSUB * dsub:m * KSUB * dsub + KSUB * width] = _kmeans(points, rng).ravel()
    return ProductQuantizer(dim, dsub, centroids)


def _kmeans(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """256 centroids: start from 256 distinct random points, then KMEANS_ROUNDS of assign/average;
    an empty cluster takes half of a large one (fastText's ``MStep``)."""
    centroids = points[rng.permutation(len(points))[:KSUB]].astype(np.float32)
    for _ in range(KMEANS_ROUNDS):
        assigned = _nearest(points, centroids)
        counts = np.bincount(assigned, minlength=KSUB)
        sums = np.stack([np.bincount(assigned, weights=points[:, j], minlength=KSUB)
                         for j in range(points.shape[1])], axis=1)
        filled = counts > 0
        centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
        for k in np.flatnonzero(~filled).tolist():
            donor = int(rng.choice(KSUB, p=np.maximum(counts - 1, 0) / max(np.maximum(counts - 1, 0).sum(), 1)))
            sign = (np.arange(centroids.shape[1]) % 2) * 2 - 1
            centroids[k] = centroids[donor] + sign * SPLIT_EPS
            centroids[donor] -= sign * SPLIT_EPS
            counts[k] = counts[donor] // 2
            counts[donor] -= counts[k]
    return centroids


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centroid (squared L2; the first on ties). Slices are a few
    dimensions wide, so the distances are summed one dimension at a time (no matrix product)."""
    out = np.empty(len(points), dtype=np.int64)
    squared = np.einsum("ij,ij->i", centroids, centroids)
    minus_twice = -2.0 * centroids
    for start in range(0, len(points), _CHUNK):
        chunk = points[start:start + _CHUNK]
        scores = np.tile(squared, (len(chunk), 1))
        for j in range(points.shape[1]):
            scores += np.multiply.outer(chunk[:, j], minus_twice[:, j])
        out[start:start + len(chunk)] = np.argmin(scores, axis=1)
    return out


def _codes(data: np.ndarray, quantizer: ProductQuantizer) -> np.ndarray:
    codes = np.empty((len(data), quantizer.nsubq), dtype=np.uint8)
    for m in range(quantizer.nsubq):
        slice_centroids = quantizer.slice_centroids(m)
        start = m * quantizer.dsub
        codes[:, m] = _nearest(np.ascontiguousarray(data[:, start:start + slice_centroids.shape[1]]), slice_centroids)
    return codes
