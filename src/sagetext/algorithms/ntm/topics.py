"""The topics a trained model found: top words per topic, their quality (TU, WETC, NPMI), the
end-of-training summary in the log (SageMaker's format) and ``topics.json``.

Summary lines (SageMaker's, with our NPMI added at the end of each bracket)::

    Topics from epoch:final (num_topics:50) [wetc 0.37, tu 0.82, npmi 0.31]:
    [0.41, 0.90, npmi 0.35] god jesus christian bible ...   (20 words; ids when there is no vocab.txt)
    ...
    Topic quality of the run: tu 0.82, npmi 0.31, wetc 0.37 (top 10 words of 50 topics)

WETC appears only when word vectors were given; TU always; NPMI (our extension) whenever the
training corpus was counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagetext.algorithms.ntm import coherence
from sagetext.contract.artifacts import write_bytes_atomic

log = logging.getLogger(__name__)

TOPICS_FILE = "topics.json"
SUMMARY_WORDS = 20


@dataclass(frozen=True)
class TopicReport:
    ids: np.ndarray  # (K, SUMMARY_WORDS) word ids, best first
    weights: np.ndarray  # (K, SUMMARY_WORDS) word probabilities under each topic alone
    tu: np.ndarray
    wetc: np.ndarray | None
    npmi: np.ndarray | None

    def model_scores(self) -> dict[str, float | None]:
        return {"tu": float(self.tu.mean()),
                "wetc": None if self.wetc is None else float(self.wetc.mean()),
                "npmi": None if self.npmi is None else float(self.npmi.mean())}


def report(topic_word: np.ndarray, vectors: np.ndarray | None,
           counter: coherence.CooccurrenceCounter | None) -> TopicReport:
    """Score the topics of a (K, V) topic-word score matrix."""
    ids = coherence.top_words(topic_word, SUMMARY_WORDS)
    shifted = topic_word - topic_word.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    weights = np.take_along_axis(probs, ids, axis=1)
    top = ids[:, :coherence.TOP_N]
    return TopicReport(ids, weights, coherence.topic_uniqueness(top),
                       None if vectors is None else coherence.wetc(top, vectors),
                       None if counter is None else counter.npmi(top))


def metric_words(topic_word: np.ndarray) -> np.ndarray:
    """The word ids the metrics look at: every topic's top TOP_N (for co-occurrence counting)."""
    return np.unique(coherence.top_words(topic_word, coherence.TOP_N))


def log_summary(result: TopicReport, vocab: Sequence[str] | None) -> None:
    scores = result.model_scores()
    named = [(name, scores[name]) for name in ("wetc", "tu", "npmi") if scores[name] is not None]
    log.info("Topics from epoch:final (num_topics:%d) [%s]:", len(result.ids),
             ", ".join(f"{name} {value:.2f}" for name, value in named))
    for k, row in enumerate(result.ids):
        tags = ([f"{result.wetc[k]:.2f}"] if result.wetc is not None else []) + [f"{result.tu[k]:.2f}"]
        if result.npmi is not None:
            tags.append(f"npmi {result.npmi[k]:.2f}")
        log.info("[%s] %s", ", ".join(tags), " ".join(_words(row, vocab)))
    quality = ", ".join(f"{name} {value:.3f}" for name, value in sorted(named, key=lambda item: item[0] == "wetc"))
    log.info("Topic quality of the run: %s (top %d words of %d topics)", quality, coherence.TOP_N, len(result.ids))


def write_json(result: TopicReport, vocab: Sequence[str] | None, model_dir: Path) -> Path:
    scores = result.model_scores()
    topics = []
    for k, row in enumerate(result.ids):
        topics.append({
            "topic": k,
            "words": _words(row, vocab),
            "ids": [int(i) for i in row],
            "weights": [round(float(w), 6) for w in result.weights[k]],
            "tu": float(result.tu[k]),
            "wetc": None if result.wetc is None else float(result.wetc[k]),
            "npmi": None if result.npmi is None else float(result.npmi[k]),
        })
    payload = {"num_topics": len(result.ids), "metric_top_n": coherence.TOP_N, **scores,
               "wetc_vectors": "auxiliary channel word vectors" if result.wetc is not None else None,
               "npmi_reference": "document co-occurrence on the training corpus",
               "topics": topics}
    path = model_dir / TOPICS_FILE
    write_bytes_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False).encode("utf-8"))
    return path


def _words(row: np.ndarray, vocab: Sequence[str] | None) -> list[str]:
    return [vocab[int(i)] if vocab is not None else str(int(i)) for i in row]


def markdown(result: TopicReport, vocab: Sequence[str] | None) -> str:
    """The topics as a Markdown table (TensorBoard's text tab shows it): topic, scores, top words."""
    lines = ["| topic | tu | npmi | top words |", "|---|---|---|---|"]
    for k, row in enumerate(result.ids):
        npmi = "" if result.npmi is None else f"{result.npmi[k]:.2f}"
        lines.append(f"| {k} | {result.tu[k]:.2f} | {npmi} | {' '.join(_words(row, vocab))} |")
    return "\n".join(lines)
