"""ALS: confidence values, id maps that survive reruns, blockwise top-k from factors
against numpy, seen-item removal, tuning that picks the better point, and cold start:
the embedding -> factor bridge on a fixture with a known answer, fold-in against Spark's
own user step, and vectors for users with posts or follows but no history."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.sql import functions as F

from socialrec.models.als import (
    ALSParams,
    blocks_for,
    bridge,
    cold_user_vectors,
    confidence_value,
    fit,
    fold_in,
    grid_points,
    new_id_map,
    recommend_from_factors,
    ridge_map,
    train_and_recommend,
    tune,
)
from socialrec.models.retrieval import centre


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


def test_params_defaults_are_the_configs():
    from socialrec.core.config import ALSConfig
    from socialrec.models.als import DEFAULT_BLOCKS

    c = ALSConfig()
    assert ALSParams() == ALSParams(rank=c.rank, reg=c.reg, alpha=c.alpha, max_iter=c.max_iter)
    assert DEFAULT_BLOCKS == c.blocks


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


def test_ridge_map_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    W, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    W_hat, b_hat = ridge_map(X, X @ W + b, reg=1e-9)
    np.testing.assert_allclose(W_hat, W, atol=1e-6)
    np.testing.assert_allclose(b_hat, b, atol=1e-6)
    shrunk, _ = ridge_map(X, X @ W + b, reg=1e4)  # the penalty shrinks the map, not the intercept
    assert np.linalg.norm(shrunk) < 0.1 * np.linalg.norm(W)
    with pytest.raises(ValueError, match="no warm item"):
        ridge_map(np.zeros((0, 6)), np.zeros((0, 3)), 1.0)


def test_bridge_gives_cold_items_the_factors_their_text_implies(spark):
    """Item factors that are an exact linear function of the (centred) embedding: the
    bridge, learned on the 40 warm items, must give the 10 cold items their true factors,
    and ALS retrieval over the cold items then ranks them as the true factors would."""
    rng = np.random.default_rng(1)
    E = rng.normal(size=(50, 8)).astype(np.float32)
    W, b = rng.normal(size=(8, 4)), rng.normal(size=4)
    true = centre(E).astype(np.float64) @ W + b  # bridge centres the embeddings, as the content models do
    ids = [f"i{j:02d}" for j in range(50)]
    emb = spark.createDataFrame([(ids[j], E[j].tolist()) for j in range(50)], "item_id string, vector array<float>")
    warm = spark.createDataFrame([(ids[j], true[j].astype(np.float32).tolist()) for j in range(40)],
                                 "item_id string, vector array<float>")
    bridged, stats = bridge(warm, emb, reg=1e-6)
    assert stats == {"warm": 40, "bridged": 10}
    # A second source that explains nothing (noise, and missing for some items) is
    # concatenated and gets no weight: the cold factors stay the true ones.
    noise = rng.normal(size=(50, 3))
    other = spark.createDataFrame([(ids[j], noise[j].tolist()) for j in range(0, 50, 2)],
                                  "item_id string, vector array<float>")
    both, stats2 = bridge(warm, [emb, other], reg=1e-6)
    assert stats2 == stats
    got2 = {r.item_id: np.array(r.vector) for r in both.collect()}
    for j in range(40, 50):
        np.testing.assert_allclose(got2[ids[j]], true[j], rtol=1e-3, atol=1e-3)
    got = {r.item_id: np.array(r.vector) for r in bridged.collect()}
    assert set(got) == set(ids)
    for j in range(40, 50):
        np.testing.assert_allclose(got[ids[j]], true[j], rtol=1e-3, atol=1e-3)
    U = rng.normal(size=(3, 4)).astype(np.float32)
    users = spark.createDataFrame([(f"u{i}", U[i].tolist()) for i in range(3)], "user_id string, vector array<float>")
    no_history = spark.createDataFrame([], "user_id string, item_id string")
    recs = recommend_from_factors(users, bridged, no_history, 10, candidates=ids[40:]).orderBy("user_id", "rank")
    for i in range(3):
        want = [ids[40 + j] for j in np.argsort(-(true[40:] @ U[i]), kind="stable")]
        assert [r.item_id for r in recs.where(F.col("user_id") == f"u{i}").collect()] == want


def test_blocks_come_from_the_data_and_are_honoured(spark):
    """One block per 500,000 pairs, at least 2; a fit with ``blocks=None`` equals one with
    ``blocks_for`` its rows, and the number of blocks is really passed to Spark (they seed
    the initial factors, so 10 blocks give other factors)."""
    assert [blocks_for(n) for n in (0, 60_000, 500_000, 500_001, 1_000_000, 10_000_000)] == [2, 2, 2, 2, 2, 20]
    rng = np.random.default_rng(3)
    rows = [(u, i, 1.0) for u in range(40) for i in range(30) if rng.random() < 0.3]
    df = spark.createDataFrame(rows, "uidx int, iidx int, r double")
    p = ALSParams(rank=4, reg=0.1, alpha=2.0, max_iter=4)

    def users(model):
        return np.array([r.features for r in model.userFactors.orderBy("id").collect()])

    auto, two = users(fit(df, p, seed=1, blocks=None)), users(fit(df, p, seed=1, blocks=2))
    ten, default = users(fit(df, p, seed=1, blocks=10)), users(fit(df, p, seed=1))
    np.testing.assert_array_equal(auto, two)
    np.testing.assert_array_equal(default, ten)  # the library's default is the configuration's
    assert np.abs(ten - two).max() > 1e-3


def test_fold_in_is_the_user_step_of_spark_als(spark):
    """Spark's implicit ALS ends each iteration with the user update, so folding a user's
    own pairs into the final item factors must give back the user's factors."""
    from pyspark.ml.recommendation import ALS

    rng = np.random.default_rng(5)
    rows = [(u, i, float(rng.integers(1, 5))) for u in range(30) for i in range(25) if rng.random() < 0.3]
    df = spark.createDataFrame(rows, "u int, i int, r double")
    model = ALS(rank=4, regParam=0.1, alpha=2.0, maxIter=6, implicitPrefs=True, userCol="u", itemCol="i",
                ratingCol="r", seed=1).fit(df)
    V = np.zeros((25, 4))
    for r in model.itemFactors.collect():
        V[r.id] = r.features
    U = {r.id: np.array(r.features) for r in model.userFactors.collect()}
    for user in (0, 7, 19):
        pos = np.array([i for u, i, _ in rows if u == user])
        vals = np.array([r for u, _, r in rows if u == user])
        np.testing.assert_allclose(fold_in(V, pos, reg=0.1, alpha=2.0, r=vals), U[user], rtol=2e-3, atol=2e-4)


def test_users_without_history_get_vectors_from_posts_and_follows(spark):
    V = np.eye(3, dtype=np.float32)
    items = spark.createDataFrame([(f"i{j}", V[j].tolist()) for j in range(3)], "item_id string, vector array<float>")
    uvec = spark.createDataFrame([("old1", [1.0, 0.0, 0.0]), ("old2", [0.0, 0.0, 1.0])],
                                 "user_id string, vector array<float>")
    users = spark.createDataFrame([("old1",), ("poster",), ("follower",), ("both",), ("nobody",)], "user_id string")
    own = spark.createDataFrame([("poster", "i1"), ("both", "i1")], "user_id string, item_id string")
    edges = spark.createDataFrame([("follower", "old1"), ("follower", "old2"), ("both", "old2"), ("old1", "old2")],
                                  "src string, dst string")
    p = ALSParams(rank=3, reg=0.1, alpha=2.0)
    got = {r.user_id: np.array(r.vector) for r in
           cold_user_vectors(users, uvec, items, params=p, own_items=own, edges=edges).collect()}
    assert set(got) == {"poster", "follower", "both"}  # old1 has factors; nobody has neither
    posted = fold_in(V, np.array([1]), reg=0.1, alpha=2.0)
    # Orthonormal items: the fold-in points along the posted item: 3 / (3 + 0.1) on i1.
    np.testing.assert_allclose(posted, [0.0, 3.0 / 3.1, 0.0], atol=1e-9)
    np.testing.assert_allclose(got["poster"], posted, atol=1e-6)
    np.testing.assert_allclose(got["follower"], [0.5, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(got["both"], (posted + np.array([0.0, 0.0, 1.0])) / 2, atol=1e-6)
