"""Word-vector artifacts of BlazingText's word2vec modes, and the predictor that serves them.

What a user gets from a word2vec job and what an endpoint loads:

- ``vectors.txt``: word2vec text format, header ``<n_words> <dim>``, words by descending
  frequency; floats printed with 9 significant digits so they read back bit for bit.
- ``vectors.bin``: fastText's own ``.bin`` (version 12) in every mode, as AWS says BlazingText's
  ``.bin`` files can be cross-consumed by fastText: ``fasttext.load_model`` and gensim's
  ``load_facebook_model`` read it. With subwords it carries the char n-gram table, so that
  unseen words still get vectors; without, it has no n-gram buckets (``bucket`` 0, ``maxn``
  0), as fastText writes a model trained with ``-maxn 0 -bucket 0``. batch_skipgram is saved
  as skipgram (fastText has no such model name). word2vec.c's binary format, which older
  sagetext versions wrote without subwords, is still read for serving.

The readers and writers are ours, not gensim's, for two reasons: serving must load files a
user dropped into the model folder, so every size in a header is checked against the file
length before anything is allocated (nothing is ever unpickled); and the same code must write
the artifacts of any trainer from one plain ``WordVectors`` value. The fastText n-gram hash
comes from gensim, which reproduces fastText's.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import numpy as np

from sagetext.algorithms.blazingtext.fasttext_format import model_file
from sagetext.algorithms.blazingtext.fasttext_format.dictionary import Dictionary
from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters
from sagetext.contract.artifacts import write_atomic
from sagetext.data.media_types import JSON
from sagetext.errors import ClientError

if TYPE_CHECKING:
    from sagetext.algorithms.blazingtext.hyperparameters import BlazingTextHyperparameters

VECTORS_TXT = "vectors.txt"
VECTORS_BIN = "vectors.bin"
EOS = "</s>"
MODEL_CODES = {"cbow": 1, "skipgram": 2}  # fastText's model_name enum (sup = 3)
LOSS_NS = 2  # fastText's loss_name enum: hs = 1, ns = 2


@dataclass(frozen=True)
class Subwords:
    """fastText's char n-gram table: ``ngrams[hash(ngram) % bucket]`` for n in [minn, maxn]."""

    minn: int
    maxn: int
    ngrams: np.ndarray  # (bucket, dim) float32

    def hashes(self, word: str) -> list[int]:
        # gensim (and scipy under it) takes a second or more to import: only when subwords are used,
        # never for a supervised job, which imports this module through the algorithm's package.
        from gensim.models.fasttext import ft_ngram_hashes

        return ft_ngram_hashes(word, self.minn, self.maxn, len(self.ngrams))


@dataclass(frozen=True)
class WordVectors:
    """The trained embedding, whatever trained it.

    ``rows[i]`` is word ``words[i]``'s own input vector (words by descending frequency). With
    ``subwords`` a word's vector is, as in fastText, the mean of its own row and its n-gram
    rows; an unseen word gets the mean of its n-gram rows.
    """

    words: Sequence[str]
    rows: np.ndarray  # (n_words, dim) float32
    counts: Sequence[int] = ()
    subwords: Subwords | None = None
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.rows):
            raise ValueError(f"{len(self.words)} words but {len(self.rows)} vector rows")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    @property
    def dim(self) -> int:
        return int(self.rows.shape[1])

    def vector(self, word: str) -> np.ndarray | None:
        """The word's vector, or None when it is unknown (and has no n-grams)."""
        i = self.index.get(word)
        if self.subwords is None:
            return None if i is None else self.rows[i]
        hashes = [] if word == EOS else self.subwords.hashes(word)  # fastText gives </s> no n-grams
        total = self.subwords.ngrams[hashes].sum(axis=0) if hashes else np.zeros(self.dim, np.float32)
        if i is not None:
            total = total + self.rows[i]
        count = len(hashes) + (i is not None)
        return None if count == 0 else (total / count).astype(np.float32)

    def matrix(self) -> np.ndarray:
        """Every vocabulary word's vector, in ``words`` order (what vectors.txt holds)."""
        if self.subwords is None:
            return self.rows
        if not self.words:
            return self.rows
        return np.stack(cast(list[np.ndarray], [self.vector(w) for w in self.words]))  # vocabulary words have one


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class FastTextFields:
    """What fastText's .bin of word vectors carries besides the input vectors."""

    output: np.ndarray  # the (n_words, dim) output matrix
    mode: str  # cbow or skipgram (fastText has no batch_skipgram)
    window: int
    epochs: int
    min_count: int
    negative: int
    sample: float
    ntokens: int  # tokens in the corpus

    @classmethod
    def of(cls, hp: BlazingTextHyperparameters, output: np.ndarray, ntokens: int) -> FastTextFields:
        return cls(output, "cbow" if hp.mode == "cbow" else "skipgram", hp.window_size, hp.epochs, hp.min_count,
                   hp.negative_samples, hp.sampling_threshold, int(ntokens))


def write_artifacts(model_dir: Path, vectors: WordVectors, fasttext: FastTextFields,
                    matrix: np.ndarray | None = None) -> None:
    """vectors.txt and vectors.bin, each written atomically. ``matrix``: ``vectors.matrix()``
    when the trainer has it already (with subwords it takes seconds word by word)."""
    matrix = vectors.matrix() if matrix is None else matrix
    write_atomic(model_dir / VECTORS_TXT, lambda f: _write_text(f, vectors.words, matrix))
    write_atomic(model_dir / VECTORS_BIN, lambda f: write_fasttext_bin(f, vectors, fasttext))


def _write_text(f: BinaryIO, words: Sequence[str], matrix: np.ndarray) -> None:
    f.write(f"{len(words)} {matrix.shape[1]}\n".encode())
    from sagetext.algorithms.blazingtext.word2vec.native_engine import _native

    if _native is not None and len(words):  # the same text, formatted in C by every core (seconds less on text8)
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        f.write(_native.format_rows([w.encode("utf-8") for w in words], rows, dim=rows.shape[1],
                                    threads=os.cpu_count() or 1))
        return
    row_format = " ".join(["%.9g"] * matrix.shape[1])
    lines = []
    for word, row in zip(words, matrix.tolist()):
        lines.append(f"{word} {row_format % tuple(row)}\n")
        if len(lines) >= 10_000:
            f.write("".join(lines).encode("utf-8"))
            lines.clear()
    f.write("".join(lines).encode("utf-8"))


def write_fasttext_bin(f: BinaryIO, vectors: WordVectors, fields: FastTextFields) -> None:
    """fastText .bin v12 of word vectors, with or without subwords (the format lives in
    ``fasttext_format.model_file``)."""
    sub = vectors.subwords
    args = model_file.Args(dim=vectors.dim, word_ngrams=1, bucket=0 if sub is None else len(sub.ngrams),
                           epoch=fields.epochs, min_count=fields.min_count, ws=fields.window, neg=fields.negative,
                           loss=LOSS_NS, model=MODEL_CODES[fields.mode], minn=0 if sub is None else sub.minn,
                           maxn=0 if sub is None else sub.maxn, t=fields.sample)
    counts = np.asarray(vectors.counts or [1] * len(vectors.words), dtype=np.int64)
    dictionary = Dictionary(tuple(w.encode("utf-8") for w in vectors.words), counts, (), np.zeros(0, np.int64),
                            fields.ntokens)
    parts = [vectors.rows] if sub is None else [vectors.rows, sub.ngrams]
    model_file.write_parts(f, args, dictionary, parts, fields.output)


# ---------------------------------------------------------------- reading


def read_vectors(path: Path) -> WordVectors:
    """A word2vec binary file or a fastText .bin (told apart by fastText's magic number)."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if len(data) >= 4 and struct.unpack_from("<i", data)[0] == model_file.MAGIC:
                return _read_fasttext(data, path)
            return _read_word2vec_bin(data, path)
    except (OSError, ValueError) as exc:  # mmap of an empty file raises ValueError
        raise ClientError(f"{path}: cannot be read ({exc})") from None


def _read_word2vec_bin(data: mmap.mmap, path: Path) -> WordVectors:
    end = data.find(b"\n", 0, 100)
    fields = data[:end].split() if end > 0 else []
    if len(fields) != 2 or not all(x.isdigit() for x in fields) or int(fields[1]) == 0:
        raise ClientError(f"{path}: neither a fastText .bin nor word2vec binary (header {data[:40]!r})")
    n, dim = int(fields[0]), int(fields[1])
    pos, row_bytes = end + 1, 4 * dim
    if n * (row_bytes + 2) > len(data) - pos:  # each entry: >= 1 byte word, a space, the floats
        raise ClientError(f"{path}: header says {n} words x {dim} dims but the file has only {len(data)} bytes")
    words, rows = [], np.empty((n, dim), np.float32)
    for i in range(n):
        while pos < len(data) and data[pos] in b"\n\r":
            pos += 1
        space = data.find(b" ", pos, pos + 10_000)
        if space < 0 or space + 1 + row_bytes > len(data):
            raise ClientError(f"{path}: word {i} of {n} is truncated or malformed at byte {pos}")
        words.append(data[pos:space].decode("utf-8", errors="replace"))
        rows[i] = np.frombuffer(data, "<f4", dim, space + 1)
        pos = space + 1 + row_bytes
    return WordVectors(words, rows)


def _read_fasttext(data: mmap.mmap, path: Path) -> WordVectors:
    """Word vectors of a fastText .bin (ours or fastText's): words, their rows, the n-gram table."""
    model = model_file.read(data, str(path))
    if model.ngram_rows is not None:
        raise ClientError(f"{path.name} is a pruned (quantized) word-vector model; serve the unquantized .bin")
    d, args = model.dictionary, model.args
    words = [w.decode("utf-8", errors="replace") for w in d.words]
    matrix = np.array(model.input, dtype=np.float32)  # a copy: the file's map is closed after reading
    sub = Subwords(args.minn, args.maxn, matrix[d.nwords:]) if args.maxn > 0 and args.bucket > 0 else None
    return WordVectors(words, matrix[:d.nwords], d.word_counts.tolist(), sub)


# ---------------------------------------------------------------- serving


class VectorsPredictor:
    """``{"instances": ["word", ...]}`` → ``[{"word": w, "vector": [...]}, ...]``.

    An unknown word gets zeros, or its n-gram vector when the model has subwords. BlazingText
    answers in the request's content type and ignores Accept, so only JSON in, JSON out.

    Our extension: with ``"configuration": {"neighbors": N}`` each instance may also be an
    analogy (``"king - man + woman"``) and its answer carries ``"neighbors"``: the N nearest
    words, ``[{"word": w, "similarity": cosine}, ...]`` (see ``neighbors``); an analogy's
    ``"vector"`` is the one searched for.
    """

    answers: Mapping[str, tuple[str, ...]] = {JSON: (JSON,)}
    honours_accept = False

    def __init__(self, vectors: WordVectors) -> None:
        self.vectors = vectors
        self._index: Any = None  # neighbors.NeighborIndex, built at the first request that asks for neighbours

    def predict(self, data: Any, content_type: str, response_type: str) -> list[dict[str, Any]]:
        if not isinstance(data, dict) or "instances" not in data:
            raise ClientError('request body must be a JSON object with an "instances" list of words')
        instances = data["instances"]
        if not isinstance(instances, list):
            raise ClientError(f'"instances" must be a list of words, got {type(instances).__name__}')
        for i, word in enumerate(instances):
            if not isinstance(word, str):
                raise ClientError(f'"instances"[{i}] must be a string (a word), got {type(word).__name__}')
        from sagetext.algorithms.blazingtext.word2vec import neighbors

        count = neighbors.neighbor_count(data.get("configuration"))
        if count is not None:
            return self._with_neighbors(instances, count)
        zeros = [0.0] * self.vectors.dim
        answers = []
        for word in instances:
            vector = self.vectors.vector(word)
            answers.append({"word": word, "vector": zeros if vector is None else vector.tolist()})
        return answers

    def _with_neighbors(self, instances: list[str], count: int) -> list[dict[str, Any]]:
        from sagetext.algorithms.blazingtext.word2vec import neighbors

        queries = [neighbors.parse_query(text) for text in instances]  # every malformed query is refused first
        if self._index is None:
            self._index = neighbors.NeighborIndex(self.vectors)
        answers = []
        for query in queries:
            vector, _ = self._index.query_vector(query)
            found = self._index.neighbors(query, count)
            answers.append({"word": query.text,
                            "vector": [0.0] * self.vectors.dim if vector is None else vector.tolist(),
                            "neighbors": [{"word": word, "similarity": similarity} for word, similarity in found]})
        return answers


def load_vectors(model_dir: Path) -> VectorsPredictor:
    """The word-vector predictor for a model folder holding ``vectors.bin`` (ours or fastText's)."""
    path = Path(model_dir) / VECTORS_BIN
    if not path.is_file():
        raise ClientError(f"{path}: not found; a BlazingText word2vec model needs vectors.bin")
    return VectorsPredictor(read_vectors(path))
