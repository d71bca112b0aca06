"""Word-similarity evaluation of word vectors: BlazingText's WS-353 ``eval.json``.

With ``evaluation=true`` a word2vec job scores its vectors on the three WS-353 sets (all,
relatedness, similarity): Spearman's rho between the cosine similarity of each pair and the
human score, over the pairs whose two words both have a vector (gensim's
``KeyedVectors.evaluate_word_pairs``). With subwords every word has
one (from its char n-grams), so ``not_found`` can be 0. The result goes to ``eval.json``, to
the log as pretty JSON, and to the ``#mean_rho`` metric that hyperparameter tuning reads.

The WS-353 files ship inside the package (``wordsim/``, from mfaruqui/eval-word-vectors, MIT),
as SageMaker ships them in its image: a job never downloads anything. A word is looked up as
written, then lowercased (a few WS-353 words are capitalised, e.g. ``Jerusalem``, while corpora
like text8 are lowercase).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from sagetext.contract.artifacts import write_bytes_atomic
from sagetext.contract.metrics import MetricLogger

log = logging.getLogger(__name__)

WORDSIM_DIR = Path(__file__).resolve().parent / "wordsim"
WS353_FILES = ("EN-WS-353-ALL.txt", "EN-WS-353-REL.txt", "EN-WS-353-SIM.txt")
EVAL_JSON = "eval.json"

Lookup = Callable[[str], "np.ndarray | None"]


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """``word1<TAB>word2<TAB>score`` lines (``#`` comments and blank lines skipped), as gensim's
    ``evaluate_word_pairs`` reads them; any other line is an error here, where gensim skips it."""
    pairs = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 'word1<TAB>word2<TAB>score', got {line!r}")
        pairs.append((fields[0], fields[1], float(fields[2])))
    return pairs


def similarity_score(path: Path, lookup: Lookup) -> dict[str, float | int]:
    """``{"not_found", "spearmans_rho", "total_pairs"}`` for one word-similarity file.

    The pair words that have a vector go into a gensim ``KeyedVectors`` under their names as
    written; gensim's ``evaluate_word_pairs`` then scores the file with it, exact names only.
    ``spearmans_rho`` is 0.0 when fewer than two pairs (or only constant values) remain.
    """
    pairs = read_pairs(path)
    found: dict[str, np.ndarray] = {}
    for word in dict.fromkeys(word for first, second, _ in pairs for word in (first, second)):
        vector = _find(lookup, word)
        if vector is not None:
            found[word] = vector
    not_found = sum(first not in found or second not in found for first, second, _ in pairs)
    rho = float("nan")
    if len(pairs) - not_found >= 2:
        vectors = KeyedVectors(len(next(iter(found.values()))))
        vectors.add_vectors(list(found), np.stack(list(found.values())).astype(np.float32))
        with warnings.catch_warnings():  # constant similarities: rho is nan, reported below
            warnings.simplefilter("ignore")
            _, spearman, _ = vectors.evaluate_word_pairs(str(path), restrict_vocab=len(vectors),
                                                         case_insensitive=False)
        rho = float(spearman[0])
    if not np.isfinite(rho):
        log.warning("Spearman's rho is undefined over %d pairs; reporting 0.0", len(pairs) - not_found)
        rho = 0.0
    return {"not_found": not_found, "spearmans_rho": rho, "total_pairs": len(pairs)}


def _find(lookup: Lookup, word: str) -> np.ndarray | None:
    vector = lookup(word)
    if vector is None and word.lower() != word:
        vector = lookup(word.lower())
    if vector is None or not np.any(vector):
        return None
    return vector


def evaluate_ws353(lookup: Lookup) -> dict[str, object]:
    """The eval.json object: one entry per WS-353 file, then ``mean_rho``."""
    result: dict[str, object] = {}
    for name in WS353_FILES:
        result[name] = similarity_score(WORDSIM_DIR / name, lookup)
    rhos = [result[name]["spearmans_rho"] for name in WS353_FILES]  # type: ignore[index]
    result["mean_rho"] = float(np.mean(rhos))
    return result


def run_evaluation(lookup: Lookup, model_dir: Path, metrics: MetricLogger) -> dict[str, object]:
    """Evaluate, write ``eval.json``, log the JSON and the ``#mean_rho`` metric (rank 0 only)."""
    log.info("Evaluating word embeddings....")
    result = evaluate_ws353(lookup)
    write_bytes_atomic(model_dir / EVAL_JSON, json.dumps(result, indent=4).encode("utf-8"))
    log.info("%s", json.dumps(result, indent=4))
    metrics.log("mean_rho", result["mean_rho"])  # type: ignore[arg-type]
    return result
