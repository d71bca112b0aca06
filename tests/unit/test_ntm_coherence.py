"""TU, WETC and NPMI against values worked out by hand on tiny fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagetext.algorithms.ntm import coherence


def test_top_words_rank_by_score() -> None:
    scores = np.array([[0.1, 0.9, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0]])
    assert coherence.top_words(scores, 2).tolist() == [[1, 2], [0, 1]]


def test_topic_uniqueness_by_hand() -> None:
    # word 1 is in two topics' top lists, everything else in one.
    top = np.array([[0, 1], [1, 2], [3, 4]])
    tu = coherence.topic_uniqueness(top)
    np.testing.assert_allclose(tu, [(1 + 0.5) / 2, (0.5 + 1) / 2, 1.0])
    assert tu.mean() == pytest.approx(5 / 6)
    # identical topics: TU = 1/K
    assert coherence.topic_uniqueness(np.array([[0, 1], [0, 1], [0, 1]])).tolist() == pytest.approx([1 / 3] * 3)


def test_wetc_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])  # word 3 has no vector
    c = 1 / math.sqrt(2)
    # topic 0: pairs (0,1)=c, (0,2)=0, (1,2)=c -> mean 2c/3; topic 1: (1,3) -> 0 (no vector for 3)
    np.testing.assert_allclose(coherence.wetc(np.array([[0, 1, 2], [1, 3, 0]])[:, :3], vectors)[0], 2 * c / 3)
    np.testing.assert_allclose(coherence.wetc(np.array([[1, 3]]), vectors), [0.0])


def test_npmi_by_hand() -> None:
    # 4 documents (word ids present):
    docs = [np.array([0, 1]), np.array([0, 1, 2]), np.array([2]), np.array([0, 3])]
    counter = coherence.CooccurrenceCounter([0, 1, 2, 3])
    counter.add(docs[:2])
    counter.add(docs[2:])  # batches add up
    assert counter.num_docs == 4
    p0, p1, p2, p01, p02, p12 = 3 / 4, 2 / 4, 2 / 4, 2 / 4, 1 / 4, 1 / 4

    def npmi(pij: float, pi: float, pj: float) -> float:
        return math.log(pij / (pi * pj)) / -math.log(pij)

    expected0 = (npmi(p01, p0, p1) + npmi(p02, p0, p2) + npmi(p12, p1, p2)) / 3
    # words 1 and 3 never co-occur: -1
    np.testing.assert_allclose(counter.npmi(np.array([[0, 1, 2]])), [expected0])
    np.testing.assert_allclose(counter.npmi(np.array([[1, 3]])), [-1.0])


def test_npmi_ignores_words_outside_the_counted_set() -> None:
    counter = coherence.CooccurrenceCounter([5, 9])
    counter.add([np.array([1, 5, 9, 12]), np.array([5]), np.array([], dtype=np.int64)])
    assert counter.pair_docs.tolist() == [[2, 1], [1, 1]]
