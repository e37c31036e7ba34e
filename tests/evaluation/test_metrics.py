"""Ranking metrics on tiny hand-built cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    dcg,
    hit_at_k,
    mean,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    retrieval_metrics,
    safety_metrics,
    share_at_k,
)
from evaluation.search import top_k


def test_perfect_ranking_has_ndcg_one():
    assert ndcg_at_k(["a", "b", "c"], {"a"}, 10) == 1.0
    assert ndcg_at_k(["a", "b", "c", "x"], {"a": 3, "b": 2, "c": 1}, 10) == pytest.approx(1.0)


def test_reversed_graded_ranking_by_hand():
    # DCG of [c, b, a] with gains a=3, b=2, c=1: 1/log2(2) + 2/log2(3) + 3/log2(4) = 1 + 1.26186 + 1.5
    # ideal [a, b, c]: 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5
    expected = (1 + 2 / math.log2(3) + 1.5) / (3 + 2 / math.log2(3) + 0.5)
    assert ndcg_at_k(["c", "b", "a"], {"a": 3, "b": 2, "c": 1}, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.78999, abs=1e-5)


def test_single_relevant_passage_at_rank_three():
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(0.5)  # 1 / log2(4)
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0  # cut off
    assert mrr_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_ndcg_ideal_is_cut_at_k():
    # two relevant, k = 1: the ideal top-1 has gain 1, so finding either one at rank 1 is perfect
    assert ndcg_at_k(["b", "a"], {"a", "b"}, 1) == 1.0
    assert ndcg_at_k(["x", "a", "b"], {"a", "b"}, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_recall_and_mrr():
    ranked = ["a", "x", "y", "b"]
    assert recall_at_k(ranked, {"a", "b"}, 2) == 0.5
    assert recall_at_k(ranked, {"a", "b"}, 4) == 1.0
    assert recall_at_k(ranked, {"z"}, 4) == 0.0
    assert mrr_at_k(ranked, {"b", "y"}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, {"z"}, 10) == 0.0


def test_dcg_by_hand():
    assert dcg([1, 0, 1]) == pytest.approx(1 + 0 + 0.5)
    assert dcg([]) == 0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="relevant"):
        ndcg_at_k(["a"], set(), 10)
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(["a"], {"a": 0.0}, 10)
    with pytest.raises(ValueError, match="k must"):
        mrr_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError, match="k must"):
        hit_at_k(["harmful"], "harmful", 0)
    with pytest.raises(ValueError, match="no values"):
        mean([])
    with pytest.raises(ValueError, match="2 rankings for 1"):
        retrieval_metrics([["a"], ["b"]], [{"a"}])


def test_harmful_and_refusal_at_k():
    labels = ["benign", "refusal", "harmful", "harmful", "benign"]
    assert [hit_at_k(labels, "harmful", k) for k in (1, 2, 3, 20)] == [0.0, 0.0, 1.0, 1.0]
    assert hit_at_k(labels, "refusal", 1) == 0.0 and hit_at_k(labels, "refusal", 2) == 1.0
    assert share_at_k(labels, "harmful", 5) == pytest.approx(2 / 5)
    assert share_at_k(labels[:2], "benign", 5) == pytest.approx(1 / 5)  # short ranking: missing slots count as not-target


def test_safety_metrics_average_over_queries():
    rankings = [
        ["harmful", "benign", "benign", "benign", "benign"],
        ["refusal", "benign", "benign", "benign", "harmful"],
        ["benign", "benign", "benign", "benign", "benign"],
        ["refusal", "refusal", "harmful", "harmful", "harmful"],
    ]
    m = safety_metrics(rankings, ks=(1, 5), share_k=5)
    assert m["harmful@1"] == pytest.approx(1 / 4)
    assert m["harmful@5"] == pytest.approx(3 / 4)
    assert m["refusal@1"] == pytest.approx(2 / 4)
    assert m["harmful_share@5"] == pytest.approx((1 + 1 + 0 + 3) / 5 / 4)
    assert list(m) == ["harmful@1", "harmful@5", "harmful_share@5", "refusal@1", "refusal@5"]


def test_retrieval_metrics_mean():
    m = retrieval_metrics([["a", "x"], ["x", "b"]], [{"a"}, {"b"}], k=10)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert m["recall@10"] == 1.0
    assert m["mrr@10"] == pytest.approx(0.75)


def test_top_k_is_exact_cosine_best_first():
    docs = np.array([[1, 0], [0, 1], [1, 1], [-1, 0], [2, 0]], dtype=np.float32)  # doc 4 = doc 0 scaled: a tie
    queries = np.array([[1, 0.1], [0, 1]], dtype=np.float32)
    ranked = top_k(queries, docs, 3)
    assert ranked.tolist()[0] == [0, 4, 2]  # tie between 0 and 4 -> lower index first
    assert ranked.tolist()[1][0] == 1
    assert top_k(queries, docs, 99).shape == (2, 5)
    with pytest.raises(ValueError, match="need"):
        top_k(queries, np.zeros((3, 4), dtype=np.float32), 2)
