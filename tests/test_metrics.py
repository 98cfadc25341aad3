"""Ranking metrics pinned on a hand-computed fixture and cross-checked against Spark's
RankingEvaluator."""

from __future__ import annotations

import math
import random

import pytest
from pyspark.ml.evaluation import RankingEvaluator

from socialrec.evaluation.metrics import beyond_accuracy, ranking_metrics

# A: 4 recs, relevant {a1, a3, a9}: hits at ranks 1 and 3.
# B: a short list of 2, relevant {b2}: hit at rank 2.
# C: no hits. D: no relevant items (not evaluated). E: relevant items, no recs (scores 0).
RECS = [("A", "a1", 1), ("A", "a2", 2), ("A", "a3", 3), ("A", "a4", 4),
        ("B", "b1", 1), ("B", "b2", 2),
        ("C", "c1", 1), ("C", "c2", 2), ("C", "c3", 3),
        ("D", "d1", 1)]
TRUTH = [("A", "a1"), ("A", "a3"), ("A", "a9"), ("B", "b2"), ("C", "c4"), ("C", "c5"), ("E", "e1")]

# Worked by hand (formulas in docs/evaluation.md):
EXPECTED = {
    ("precision", 3): (2 / 3 + 1 / 3) / 4,                       # 0.25
    ("recall", 3): (2 / 3 + 1) / 4,                              # 0.416667
    ("ndcg", 3): (1.5 / (1 + 1 / 1.5849625 + 0.5) + 1 / 1.5849625) / 4,  # 0.333712
    ("map", 3): ((1 + 2 / 3) / 3 + 0.5) / 4,                     # 0.263889
    ("mrr", 3): (1 + 0.5) / 4,                                   # 0.375
    ("hit_rate", 3): 2 / 4,
    ("precision", 1): 0.25,
    ("recall", 1): (1 / 3) / 4,
    ("ndcg", 1): 0.25,
    ("map", 1): 0.25,
    ("mrr", 1): 0.25,
    ("hit_rate", 1): 0.25,
}


def _frames(spark, recs, truth):
    r = spark.createDataFrame(recs, "user_id string, item_id string, rank int")
    t = spark.createDataFrame(truth, "user_id string, item_id string")
    return r, t


def test_hand_computed_fixture(spark):
    recs, truth = _frames(spark, RECS, TRUTH)
    rows = ranking_metrics(recs, truth, k=[1, 3]).collect()
    got = {(r.metric, r.k): r.value for r in rows}
    assert set(got) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert {r.n_users for r in rows} == {4}  # A, B, C, E; D has no relevant items
    assert got[("ndcg", 3)] == pytest.approx(0.3337120, abs=1e-6)
    assert got[("map", 3)] == pytest.approx(0.2638889, abs=1e-6)


def test_ranks_beyond_k_and_duplicate_truth_rows_do_not_count(spark):
    recs, truth = _frames(spark, [("A", "x", 1), ("A", "y", 2)], [("A", "y"), ("A", "y")])
    got = {(r.metric, r.k): r.value for r in ranking_metrics(recs, truth, k=[1, 2]).collect()}
    assert got[("hit_rate", 1)] == 0.0 and got[("precision", 1)] == 0.0
    assert got[("recall", 2)] == 1.0 and got[("mrr", 2)] == 0.5


def test_unknown_metric_is_rejected(spark):
    recs, truth = _frames(spark, RECS, TRUTH)
    with pytest.raises(ValueError, match="bad metrics"):
        ranking_metrics(recs, truth, metrics=["auc9"])


def _spark_evaluator_values(spark, recs, truth, k):
    """Spark's RankingEvaluator over the same users (those with relevant items)."""
    items = sorted({i for _, i, _ in recs} | {i for _, i in truth})
    code = {item: float(n) for n, item in enumerate(items)}
    users = sorted({u for u, _ in truth})
    rows = []
    for u in users:
        pred = [code[i] for _, i, _ in sorted((r for r in recs if r[0] == u), key=lambda r: r[2])]
        label = sorted({code[i] for uu, i in truth if uu == u})
        rows.append((pred, label))
    df = spark.createDataFrame(rows, "prediction array<double>, label array<double>")
    names = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK", "map": "meanAveragePrecisionAtK"}
    return {m: RankingEvaluator(metricName=n, k=k).evaluate(df) for m, n in names.items()}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_equals_spark_ranking_evaluator_on_fixture(spark, k):
    recs, truth = _frames(spark, RECS, TRUTH)
    ours = {r.metric: r.value for r in ranking_metrics(recs, truth, k=[k]).collect()}
    theirs = _spark_evaluator_values(spark, RECS, TRUTH, k)
    for m, v in theirs.items():
        assert ours[m] == pytest.approx(v, abs=1e-9), (m, k)


def test_equals_spark_ranking_evaluator_on_random_lists(spark):
    rng = random.Random(3)
    recs, truth = [], []
    for u in range(60):
        n_recs = rng.randint(0, 15)  # includes empty and short lists
        for rank, item in enumerate(rng.sample(range(40), n_recs), start=1):
            recs.append((f"u{u}", f"i{item}", rank))
        for item in rng.sample(range(40), rng.randint(1, 12)):
            truth.append((f"u{u}", f"i{item}"))
    r, t = _frames(spark, recs, truth)
    for k in (5, 10):
        ours = {row.metric: row.value for row in ranking_metrics(r, t, k=[k]).collect()}
        theirs = _spark_evaluator_values(spark, recs, truth, k)
        for m, v in theirs.items():
            assert ours[m] == pytest.approx(v, abs=1e-9), (m, k)
        assert 0 < ours["ndcg"] < 1


def test_auc_of_whole_lists_by_hand(spark):
    # 6 candidate items. A ranks all 6, relevant {x1, x3}: irrelevant items below x1: 4,
    # below x3: 3 (x2 is above it) -> (4 + 3) / (2 * 4) = 0.875.
    # B ranks 3 items, relevant {y2, y5}: y2 at rank 2 has 1 irrelevant above, so 4 - 1 = 3
    # below; y5 is unlisted, tied with the 4 - 2 = 2 unlisted irrelevant items: 0.5 * 2 = 1
    # -> (3 + 1) / (2 * 4) = 0.5.
    # C has no list at all: 0.5. D ranks its only relevant item last of all 6: 0 / 5 = 0.
    recs = ([("A", f"x{i}", i) for i in range(1, 7)] + [("B", "y1", 1), ("B", "y2", 2), ("B", "y3", 3)]
            + [("D", f"z{i}", i) for i in range(1, 7)])
    truth = [("A", "x1"), ("A", "x3"), ("B", "y2"), ("B", "y5"), ("C", "w1"), ("D", "z6")]
    r, t = _frames(spark, recs, truth)
    rows = ranking_metrics(r, t, k=[2], metrics=["auc", "ndcg"], n_candidates=6).collect()
    got = {(x.metric, x.k): (x.value, x.n_users) for x in rows}
    assert got[("auc", 0)] == (pytest.approx((0.875 + 0.5 + 0.5 + 0.0) / 4), 4)
    assert ("ndcg", 2) in got
    with pytest.raises(ValueError, match="n_candidates"):
        ranking_metrics(r, t, metrics=["auc"])


def test_by_segment_equals_each_segment_alone(spark):
    """``by``: one call per group gives what a separate call on that group's truth gives,
    a user may sit in several groups, and recs of users outside a group do not count."""
    recs, _ = _frames(spark, RECS, TRUTH)
    seg_truth = [("all", u, i) for u, i in TRUTH] + [("ab", u, i) for u, i in TRUTH if u in ("A", "B")]
    t = spark.createDataFrame(seg_truth, "segment string, user_id string, item_id string")
    got = {(r.segment, r.metric, r.k): (r.value, r.n_users) for r in ranking_metrics(recs, t, k=[1, 3], by=["segment"]).collect()}
    for seg, users in (("all", {"A", "B", "C", "E"}), ("ab", {"A", "B"})):
        alone = _frames(spark, RECS, [x for x in TRUTH if x[0] in users])[1]
        for r in ranking_metrics(recs, alone, k=[1, 3]).collect():
            assert got[(seg, r.metric, r.k)] == (pytest.approx(r.value, abs=1e-12), len(users))
    assert got[("ab", "recall", 3)][0] == pytest.approx((2 / 3 + 1) / 2)
    auc = ranking_metrics(recs, t, k=[3], metrics=["auc"], n_candidates=10, by=["segment"]).collect()
    assert {r.segment for r in auc} == {"all", "ab"}


# Beyond accuracy, by hand. Catalogue of 5 items; 4 train users; train users per item:
# a1 3, a2 1, b2 1, a3 0 -> self-information -log2((n + 1) / 5): a1 0.321928, a2 and b2
# 1.321928, a3 2.321928. Vectors: a1 (1, 0), a2 (0, 1), a3 (1, 1), b2 (2, 0) (same
# direction as a1); x has none.
BEYOND_RECS = [("A", "a1", 1), ("A", "a2", 2), ("A", "a3", 3), ("B", "a1", 1), ("B", "b2", 2)]
INFO = {"a1": -math.log2(4 / 5), "a2": -math.log2(2 / 5), "a3": -math.log2(1 / 5), "b2": -math.log2(2 / 5)}
D13 = 1 - 1 / math.sqrt(2)  # 1 - cos((1,0), (1,1))


def _beyond(spark, **kw):
    recs = spark.createDataFrame(BEYOND_RECS, "user_id string, item_id string, rank int")
    pop = spark.createDataFrame([("a1", 3), ("a2", 1), ("b2", 1)], "item_id string, n long")
    vecs = spark.createDataFrame([("a1", [1.0, 0.0]), ("a2", [0.0, 1.0]), ("a3", [1.0, 1.0]), ("b2", [2.0, 0.0])],
                                 "item_id string, vector array<float>")
    rows = beyond_accuracy(recs, k=[1, 2, 3], n_catalogue=5, item_train_users=pop, n_train_users=4,
                           item_vectors=vecs, **kw).collect()
    return rows


def test_coverage_novelty_diversity_by_hand(spark):
    got = {(r.metric, r.k): (r.value, r.n_users) for r in _beyond(spark)}
    expected = {
        ("coverage", 1): 1 / 5, ("coverage", 2): 3 / 5, ("coverage", 3): 4 / 5,
        ("novelty", 1): INFO["a1"],
        ("novelty", 2): ((INFO["a1"] + INFO["a2"]) / 2 + (INFO["a1"] + INFO["b2"]) / 2) / 2,
        ("novelty", 3): ((INFO["a1"] + INFO["a2"] + INFO["a3"]) / 3 + (INFO["a1"] + INFO["b2"]) / 2) / 2,
        # A@2: (a1, a2) orthogonal -> 1; B@2: a1 and b2 point the same way -> 0.
        ("diversity", 2): (1.0 + 0.0) / 2,
        ("diversity", 3): ((1.0 + D13 + D13) / 3 + 0.0) / 2,
    }
    assert set(got) == set(expected)  # no diversity@1: a one-item list has no pair
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value, abs=1e-9), 2), key
    assert got[("novelty", 3)][0] == pytest.approx(1.071928, abs=1e-6)


def test_beyond_accuracy_per_group(spark):
    users = spark.createDataFrame([("s1", "A"), ("s1", "B"), ("s2", "B"), ("s3", "C")], "segment string, user_id string")
    got = {(r.segment, r.metric, r.k): (r.value, r.n_users) for r in _beyond(spark, users=users, by=["segment"])}
    assert got[("s1", "coverage", 3)] == (pytest.approx(4 / 5), 2)
    assert got[("s2", "coverage", 3)] == (pytest.approx(2 / 5), 1)  # B's a1 and b2
    assert got[("s2", "novelty", 3)] == (pytest.approx((INFO["a1"] + INFO["b2"]) / 2), 1)
    assert got[("s2", "diversity", 3)] == (pytest.approx(0.0, abs=1e-9), 1)
    assert not any(seg == "s3" for seg, _, _ in got)  # C has no list: nothing to measure
    with pytest.raises(ValueError, match="novelty needs"):
        beyond_accuracy(spark.createDataFrame(BEYOND_RECS, "user_id string, item_id string, rank int"),
                        metrics=["novelty"], n_catalogue=5)
