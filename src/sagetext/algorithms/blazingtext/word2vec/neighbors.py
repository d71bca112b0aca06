"""Nearest neighbours and analogies over trained word vectors: ``sagetext neighbors`` and the
word2vec server's optional ``"configuration": {"neighbors": N}``.

A query is a word (``king``) or words joined by ``+`` and ``-`` with spaces around them
(``king - man + woman``). Its vector is the sum of its words' unit vectors with their signs
(3CosAdd, what word2vec's ``word-analogy`` and gensim's ``most_similar(positive=...,
negative=...)`` rank by); the answer is the vocabulary words of highest cosine similarity to
it, the query's own words left out. A model with subwords gives unknown words their n-gram
vector; without, a query with an unknown word has no neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagetext.algorithms.blazingtext.word2vec.vectors import VECTORS_BIN, WordVectors, read_vectors
from sagetext.errors import ClientError

OPERATORS = {"+": 1.0, "-": -1.0}
MAX_NEIGHBORS = 1000


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[tuple[float, str], ...]  # (sign, word)

    @property
    def is_word(self) -> bool:
        return len(self.terms) == 1 and self.terms[0][0] > 0


def parse_query(text: str) -> Query:
    """``word`` or ``word (+|-) word ...``; a single token is a word even if it holds + or -."""
    tokens = text.split()
    if len(tokens) == 1 or not any(t in OPERATORS for t in tokens):
        return Query(text, ((1.0, text),))
    words, operators = tokens[0::2], tokens[1::2]
    if len(tokens) % 2 == 0 or any(op not in OPERATORS for op in operators) or any(w in OPERATORS for w in words):
        raise ClientError(f"query {text!r}: expected WORD or WORD + WORD - WORD ... (operators between words, "
                          "separated by spaces)")
    return Query(text, ((1.0, words[0]), *((OPERATORS[op], w) for op, w in zip(operators, words[1:]))))


def split_queries(tokens: Sequence[str]) -> list[str]:
    """Command-line words as queries: ``king - man + woman paris`` is two queries (a word with no
    operator before it starts a new one); a quoted argument may hold a whole query."""
    flat = [t for arg in tokens for t in arg.split()]
    queries: list[list[str]] = []
    for i, token in enumerate(flat):
        if not queries or (token not in OPERATORS and flat[i - 1] not in OPERATORS):
            queries.append([token])
        else:
            queries[-1].append(token)
    return [" ".join(q) for q in queries]


class NeighborIndex:
    """Unit vectors of the whole vocabulary, to rank words by cosine similarity."""

    def __init__(self, vectors: WordVectors) -> None:
        self.vectors = vectors
        matrix = np.asarray(vectors.matrix(), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.unit = matrix / np.where(norms > 0, norms, 1.0)

    def query_vector(self, query: Query) -> tuple[np.ndarray | None, str | None]:
        """The query's vector, or (None, the first word without a vector)."""
        total = np.zeros(self.vectors.dim, dtype=np.float32)
        for sign, word in query.terms:
            vector = self.vectors.vector(word)
            norm = float(np.linalg.norm(vector)) if vector is not None else 0.0
            if vector is None or norm == 0.0:
                return None, word
            if query.is_word:
                return vector, None
            total += sign * vector / norm
        return total, None

    def neighbors(self, query: Query, count: int) -> list[tuple[str, float]]:
        """The ``count`` nearest vocabulary words with their cosine similarity, best first."""
        vector, _ = self.query_vector(query)
        norm = float(np.linalg.norm(vector)) if vector is not None else 0.0
        if vector is None or norm == 0.0:
            return []
        similarity = self.unit @ (vector / norm)
        excluded = [i for _, word in query.terms if (i := self.vectors.index.get(word)) is not None]
        similarity[excluded] = -np.inf
        count = min(count, len(similarity) - len(set(excluded)))
        if count <= 0:
            return []
        top = np.argpartition(-similarity, count - 1)[:count]
        top = top[np.argsort(-similarity[top], kind="stable")]
        return [(self.vectors.words[i], float(similarity[i])) for i in top.tolist()]


def neighbor_count(configuration: object) -> int | None:
    """``configuration.neighbors`` of a request: None when absent, else an int in [1, MAX_NEIGHBORS]."""
    if configuration is None:
        return None
    if not isinstance(configuration, dict):
        raise ClientError(f'"configuration" must be a JSON object, got {type(configuration).__name__}')
    count = configuration.get("neighbors")
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_NEIGHBORS:
        raise ClientError(f'"configuration"."neighbors"={count!r}: expected an integer in [1, {MAX_NEIGHBORS}]')
    return count


def load_word_vectors(model_dir: Path) -> WordVectors:
    """The word vectors of a model folder: ``vectors.bin``, or a fastText word-vector ``model.bin``."""
    for name in (VECTORS_BIN, "model.bin"):
        path = Path(model_dir) / name
        if path.is_file():
            return read_vectors(path)
    raise ClientError(f"{model_dir}: no vectors.bin (or fastText model.bin) to read word vectors from")


def print_neighbors(model_dir: Path, queries: Sequence[str], count: int) -> int:
    """``sagetext neighbors``: each query's neighbours as ``word similarity`` lines; 1 if any query
    has a word without a vector."""
    index = NeighborIndex(load_word_vectors(model_dir))
    status = 0
    for text in split_queries(queries):
        query = parse_query(text)
        _, missing = index.query_vector(query)
        if missing is not None:
            print(f"{text}: no vector for {missing!r}")
            status = 1
            continue
        print(text)
        for word, similarity in index.neighbors(query, count):
            print(f"  {word:24} {similarity:.4f}")
    return status
