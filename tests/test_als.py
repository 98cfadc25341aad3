"""ALS: confidence values, id maps that survive reruns, blockwise top-k from factors
against numpy, seen-item removal, tuning that picks the better point, and the stage's
id_map / metrics / runs rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.sql import functions as F

from socialrec.als import ALSParams, confidence_value, grid_points, new_id_map, recommend_from_factors, \
    train_and_recommend, tune


def test_confidence_values(spark):
    df = spark.createDataFrame([(1.0,), (4.0,), (1000.0,)], "weight double")
    got = {mode: [r.r for r in df.select(confidence_value("weight", mode, 10.0).alias("r")).collect()]
           for mode in ("linear", "log", "binary")}
    assert got["linear"] == [1.0, 4.0, 1000.0]
    assert got["log"] == pytest.approx([math.log(1.1), math.log(1.4), math.log(101.0)])
    assert got["binary"] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="als.confidence: 'square'"):
        confidence_value("weight", "square")


def test_id_map_keeps_numbers_across_runs(spark):
    first = new_id_map(spark.createDataFrame([("b",), ("a",), ("c",), ("a",)], "id string"))
    m1 = {r.id: r.idx for r in first.collect()}
    assert m1 == {"a": 0, "b": 1, "c": 2}
    existing = spark.createDataFrame(list(m1.items()), "id string, idx int")
    second = new_id_map(spark.createDataFrame([("c",), ("e",), ("a",), ("d",)], "id string"), existing)
    m2 = {r.id: r.idx for r in second.collect()}
    assert m2 == {"a": 0, "c": 2, "d": 3, "e": 4}  # b left; d, e appended in id order
    # Round trip: id -> idx -> id.
    back = second.select(F.col("idx").alias("i"), F.col("id").alias("back"))
    assert {r.back for r in second.join(back, second.idx == back.i).collect()} == set(m2)


def test_grid_points_fill_from_the_base():
    pts = grid_points({"reg": [0.1, 1.0], "alpha": [2.0]}, ALSParams(rank=16, reg=9.0, alpha=9.0, max_iter=3))
    assert pts == [ALSParams(16, 0.1, 2.0, 3), ALSParams(16, 1.0, 2.0, 3)]
    assert grid_points({}, ALSParams()) == [ALSParams()]


def test_top_k_from_factors_equals_numpy_and_drops_seen(spark):
    rng = np.random.default_rng(7)
    U, V = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(12, 4)).astype(np.float32)
    users = spark.createDataFrame([(f"u{i}", U[i].tolist()) for i in range(6)], "user_id string, vector array<float>")
    items = spark.createDataFrame([(f"i{j:02d}", V[j].tolist()) for j in range(12)],
                                  "item_id string, vector array<float>")
    seen = {0: [1, 2], 3: [0, 5, 7], 5: list(range(10))}
    train = spark.createDataFrame([(f"u{u}", f"i{j:02d}") for u, js in seen.items() for j in js],
                                  "user_id string, item_id string")
    got = {}
    for r in recommend_from_factors(users, items, train, 4, block_cells=8).orderBy("user_id", "rank").collect():
        got.setdefault(r.user_id, []).append((r.item_id, r.score))
    for u in range(6):
        s = U[u] @ V.T
        s[seen.get(u, [])] = -np.inf
        want = [f"i{j:02d}" for j in np.argsort(-s, kind="stable")[:4] if np.isfinite(s[j])]
        assert [i for i, _ in got[f"u{u}"]] == want, u
        assert got[f"u{u}"][0][1] == pytest.approx(float(s.max()), rel=1e-5)
    assert len(got["u5"]) == 2  # ten of twelve seen: only two left to recommend
    cold = recommend_from_factors(users, items, train, 3, candidates=["i03", "i08", "i11"]).collect()
    assert {r.item_id for r in cold} <= {"i03", "i08", "i11"}
    assert len(cold) == 5 * 3 + 1  # u5 has seen i03 and i08: only i11 is left for it


def _two_tribes(spark):
    """Users 0-19 engage only with items a*, users 20-39 only with items b*."""
    rows = []
    for u in range(40):
        tribe = "a" if u < 20 else "b"
        for j in range(10):
            if (u * 7 + j * 3) % 10 < 6:  # each user sees 6 of their tribe's 10 items
                rows.append((f"u{u:02d}", f"{tribe}{j}", 1.0 + (u + j) % 3))
    train = spark.createDataFrame(rows, "user_id string, item_id string, weight double")
    ids = lambda col: train.select(F.col(col).alias("id"))  # noqa: E731
    return train, new_id_map(ids("user_id")), new_id_map(ids("item_id"))


def test_als_recommends_within_the_tribe_and_never_seen_items(spark):
    train, users_map, items_map = _two_tribes(spark)
    # Rank 2: one dimension per tribe (rank 4 also learns which 6 of 10 items a user's
    # subgroup sees and may then prefer the other tribe's items to its own unseen ones).
    recs, uvec, ivec = train_and_recommend(train, users_map, items_map, ALSParams(rank=2, reg=0.01, alpha=1.0,
                                                                                   max_iter=10), 3)
    rows = recs.collect()
    assert len(rows) == 40 * 3
    assert all(r.item_id[0] == ("a" if int(r.user_id[1:]) < 20 else "b") for r in rows)
    assert not {(r.user_id, r.item_id) for r in rows} & {(r.user_id, r.item_id) for r in train.collect()}
    assert all(r.explanation.startswith("people who engaged with ") for r in rows)
    assert uvec.count() == 40 and ivec.count() == 20


def test_tuning_prefers_the_point_that_ranks_better(spark):
    train, users_map, items_map = _two_tribes(spark)
    good, crushed = ALSParams(rank=4, reg=0.1, alpha=5.0, max_iter=8), ALSParams(rank=4, reg=500.0, alpha=5.0, max_iter=8)
    scores = tune(train, users_map, items_map, [crushed, good], k=3, val_ratio=0.7, seed=1)
    assert scores[0][0] == good and scores[0][1] > scores[1][1]
