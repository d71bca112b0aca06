"""Word-similarity evaluation of word vectors: BlazingText's WS-353 ``eval.json`` (spec §3.5, §3.7).

With ``evaluation=true`` a word2vec job scores its vectors on the three WS-353 sets (all,
relatedness, similarity): Spearman's rho between the cosine similarity of each pair and the
human score, over the pairs whose two words both have a vector. With subwords every word has
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from sagetext.contract.artifacts import write_bytes_atomic
from sagetext.contract.metrics import MetricLogger

log = logging.getLogger(__name__)

WORDSIM_DIR = Path(__file__).resolve().parent / "wordsim"
WS353_FILES = ("EN-WS-353-ALL.txt", "EN-WS-353-REL.txt", "EN-WS-353-SIM.txt")
EVAL_JSON = "eval.json"

Lookup = Callable[[str], "np.ndarray | None"]


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """``word1<TAB>word2<TAB>score`` lines (``#`` comments and blank lines skipped)."""
    pairs = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 'word1 word2 score', got {line!r}")
        pairs.append((fields[0], fields[1], float(fields[2])))
    return pairs


def similarity_score(pairs: list[tuple[str, str, float]], lookup: Lookup) -> dict[str, float | int]:
    """``{"not_found", "spearmans_rho", "total_pairs"}`` for one word-similarity set.

    ``spearmans_rho`` is 0.0 when fewer than two pairs (or only constant values) remain.
    """
    cosines, humans, not_found = [], [], 0
    for first, second, score in pairs:
        a, b = _find(lookup, first), _find(lookup, second)
        if a is None or b is None:
            not_found += 1
            continue
        cosines.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
        humans.append(score)
    rho = float(spearmanr(cosines, humans).statistic) if len(cosines) >= 2 else float("nan")
    if not np.isfinite(rho):
        log.warning("Spearman's rho is undefined over %d pairs; reporting 0.0", len(cosines))
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
        result[name] = similarity_score(read_pairs(WORDSIM_DIR / name), lookup)
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
