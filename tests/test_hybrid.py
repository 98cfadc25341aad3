"""The hybrid recommender: candidate union and features checked by hand, the ranker
learning the signal that predicts the label, and explanations naming it."""

from __future__ import annotations

import dataclasses
import functools
import math
from datetime import datetime

import numpy as np
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core.schemas import ITEMS
from socialrec.models.hybrid import (
    FEATURES,
    build_catalogue,
    candidates,
    coordinate_ascent,
    rank_with,
    rank_with_model,
    social_inputs,
    train_ranker,
    train_xgb_ranker,
)


def _items(spark, ids):
    return spark.createDataFrame([("d", i, None, None, None, None, "post", None, datetime(2026, 1, 1), None)
                                  for i in ids], ITEMS.schema)


@pytest.fixture(scope="module")
def tiny(spark):
    ids = ["a", "b", "c", "d", "e", "f"]
    vec = {"a": [1.0, 0.0], "b": [0.9, 0.1], "c": [0.0, 1.0], "d": [0.1, 0.9], "e": [-1.0, 0.0], "f": [0.0, -1.0]}
    content = spark.createDataFrame([(i, v) for i, v in vec.items()], "item_id string, vector array<float>")
    als_items = spark.createDataFrame([(i, [float(n), 1.0]) for n, i in enumerate(ids)],
                                      "item_id string, vector array<float>")
    als_users = spark.createDataFrame([("u", [1.0, 0.0]), ("v", [-1.0, 0.0])], "user_id string, vector array<float>")
    t = datetime(2026, 3, 1)
    train = spark.createDataFrame(
        [("u", "a", 1.0, t), ("v", "c", 1.0, t), ("w", "c", 1.0, t), ("w", "e", 1.0, datetime(2026, 2, 20))],
        "user_id string, item_id string, weight double, ts timestamp")
    cat = build_catalogue(train, _items(spark, ids), als_items=als_items, content={"transformer": content})
    return train, cat, als_users


def test_catalogue_arrays(tiny):
    _, cat, _ = tiny
    assert list(cat.ids) == ["a", "b", "c", "d", "e", "f"]
    assert list(cat.popularity) == [1, 0, 2, 0, 1, 0]
    assert cat.recency_days[0] == 0 and cat.recency_days[4] == pytest.approx(9.0)
    assert cat.age_days[0] == pytest.approx(59.0)  # posted 2026-01-01, newest interaction 2026-03-01
    np.testing.assert_allclose(np.linalg.norm(cat.content["transformer"], axis=1), 1.0, rtol=1e-5)


def test_candidates_union_features_and_labels(spark, tiny):
    train, cat, als_users = tiny
    truth = spark.createDataFrame([("u", "b"), ("w", "d")], "user_id string, item_id string")
    rows = {(r.user_id, r.item_id): r for r in
            candidates(train, cat, als_users=als_users, n_per_source=2, truth=truth).collect()}
    seen = {("u", "a"), ("v", "c"), ("w", "c"), ("w", "e")}
    assert not seen & set(rows)
    u = {i for (user, i) in rows if user == "u"}
    # u: ALS top-2 by item factor x = (n, 1).(1, 0) = n -> f (5), e (4); content top-2
    # (centred cosine to a) -> b first; popular top-2 unseen -> c (2 users), e (1 user).
    assert {"f", "e", "b", "c"} <= u
    assert rows[("u", "f")].als == pytest.approx(5.0) and rows[("u", "f")].rr_als == 1.0
    assert rows[("u", "e")].rr_als == 0.5 and rows[("u", "c")].rr_popular == 1.0
    assert rows[("u", "c")].popularity == pytest.approx(math.log1p(2))
    assert rows[("u", "b")].rr_transformer == 1.0 and rows[("u", "b")].similar_to == "a"
    assert rows[("u", "b")].label == 1.0 and rows[("u", "f")].label == 0.0
    assert rows[("w", "d")].label == 1.0
    assert rows[("w", "d")].als == 0.0  # w has no ALS factors: the feature is 0, the row stays
    assert rows[("u", "b")].activity == pytest.approx(math.log1p(1))


def test_ranker_learns_the_predictive_signal(spark):
    """Labels follow popularity only: the ranker weights popularity up, ranks the most
    popular candidate first and explains it by popularity."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        for j in range(8):
            pop = float(j)
            feats = dict.fromkeys(FEATURES, 0.0)
            feats.update(als=float(rng.normal()), transformer=float(rng.normal()), popularity=pop,
                         rr_popular=1.0 / (8 - j))
            label = 1.0 if rng.random() < 0.05 + 0.12 * j else 0.0
            rows.append((f"u{u}", f"i{j}", *[feats[f] for f in FEATURES], "x", label))
    cands = spark.createDataFrame(rows, "user_id string, item_id string, " + ", ".join(f"{f} double" for f in FEATURES)
                                  + ", similar_to string, label double")
    coef = train_ranker(cands, objective="pointwise")
    assert coef["popularity"] > 0.3 and abs(coef["als"]) < coef["popularity"]
    top = rank_with(coef, cands, 2).where(F.col("rank") == 1).collect()
    assert {r.item_id for r in top} == {"i7"}
    assert all(r.explanation == "popular: 1096 people engaged with this" for r in top)  # round(expm1(7))
    assert set(top[0].components) == {"als", "transformer", "w2v", "popular", "social", "graph", "profile", "trending",
                                      "ranker"}

    pair = train_ranker(cands, objective="pairwise")  # differences within a user: popularity still leads
    assert pair["popularity"] > abs(pair["als"]) and pair["popularity"] > 0


def _known_order(spark, users: range, *, labelled: bool) -> DataFrame:
    """Six candidates per user, i0..i5: popularity rises with j, the similarity to the
    user's closest history item is a seeded shuffle of six levels. Heavy users (300 items)
    engaged with the most popular (i5), light users (3 items) with the most similar: the
    right order needs popularity x activity, which no linear blend of the features has."""
    rng = np.random.default_rng(7)
    rows = []
    for u in users:
        heavy = u % 2 == 0
        sim = [float(x) / 5.0 for x in rng.permutation(6)]
        for j in range(6):
            feats = dict.fromkeys(FEATURES, 0.0)
            feats.update(popularity=float(j), popularity_z=(j - 2.5) / 1.7, max_sim=float(sim[j]),
                         transformer_z=(sim[j] - 0.5) / 0.34, activity=math.log1p(300 if heavy else 3), n_sources=1.0)
            label = float(j == 5 if heavy else sim[j] == 1.0) if labelled else None
            rows.append((f"u{u}", f"i{j}", *[feats[f] for f in FEATURES], "h1", label))
    return spark.createDataFrame(rows, "user_id string, item_id string, "
                                 + ", ".join(f"{f} double" for f in FEATURES) + ", similar_to string, label double")


def test_xgboost_ranker_learns_an_order_no_linear_blend_can(spark):
    """SparkXGBRanker (rank:ndcg, one group per user) trained on users whose right order
    is known ranks new users' engaged item first (heavy: the most popular, light: the most
    similar), credits the features that carry it, and explains each list by the signal its
    SHAP contributions favour."""
    model, shares = train_xgb_ranker(_known_order(spark, range(40), labelled=True), trees=30, depth=3, eta=0.3,
                                     workers=2, k=2)
    assert set(shares) == set(FEATURES) - {"als"} and sum(shares.values()) == pytest.approx(1.0)
    # Every split is on the three features that carry the order (xgboost's total gain).
    assert shares["activity"] > 0.05 and shares["popularity"] + shares["popularity_z"] > 0.01
    assert shares["max_sim"] + shares["transformer_z"] > 0.05
    assert sum(shares[f] for f in ("activity", "popularity", "popularity_z", "max_sim", "transformer_z")) \
        == pytest.approx(1.0)
    assert shares["als_z"] == 0.0 and shares["social"] == 0.0  # constant features never split
    serve = _known_order(spark, range(40, 60), labelled=False)
    most_similar = {r.user_id: r.item_id for r in serve.where(F.col("max_sim") == 1.0).collect()}
    top = {r.user_id: r for r in rank_with_model(model, serve, 3).where(F.col("rank") == 1).collect()}
    assert len(top) == 20
    for u in range(40, 60):
        r = top[f"u{u}"]
        if u % 2 == 0:
            assert r.item_id == "i5" and r.explanation == "popular: 147 people engaged with this"  # expm1(5)
            assert r.components["popular"] > r.components["transformer"]
        else:
            assert r.item_id == most_similar[f"u{u}"] and r.explanation == "similar to h1, which you engaged with"
            assert r.components["transformer"] > r.components["popular"]
    # The linear blend finds no weights that get both kinds of user right.
    train = _known_order(spark, range(40), labelled=True)
    _, best = coordinate_ascent(train, train.where(F.col("label") == 1.0).select("user_id", "item_id"), k=1,
                                start="popularity_z", features=("popularity_z", "transformer_z"), rounds=2)
    assert best < 0.8


def test_listwise_ranker_adds_the_signal_that_finds_the_held_out_items(spark):
    """ALS alone ranks every user's held-out item last among five; the transformer
    score ranks it first: coordinate ascent must give the transformer a positive weight
    that lifts validation nDCG@2 from 0 to 1."""
    rows = []
    for u in range(12):
        for j in range(5):
            feats = dict.fromkeys(FEATURES, 0.0)
            feats.update(als_z=float(4 - j) - 2.0, transformer_z=-4.0 if j < 4 else 4.0)
            rows.append((f"u{u}", f"i{j}", *[feats[f] for f in FEATURES], None, None))
    cands = spark.createDataFrame(rows, "user_id string, item_id string, " + ", ".join(f"{f} double" for f in FEATURES)
                                  + ", similar_to string, label double")
    truth = spark.createDataFrame([(f"u{u}", "i4") for u in range(12)], "user_id string, item_id string")
    weights, best = coordinate_ascent(cands, truth, k=2, features=("als_z", "transformer_z"), rounds=1)
    assert weights["als_z"] == 1.0 and weights["transformer_z"] > 0.5 and best == pytest.approx(1.0)


def _fold(spark, name: str, users: int, transformer_finds_it: bool):
    """One validation fold: each user's held-out item is i4, ALS ranks it last of five;
    the transformer score ranks it first (``transformer_finds_it``) or last."""
    rows = []
    for u in range(users):
        for j in range(5):
            feats = dict.fromkeys(FEATURES, 0.0)
            good = 4.0 if transformer_finds_it else -4.0
            feats.update(als_z=float(4 - j) - 2.0 if transformer_finds_it else float(j) - 2.0,
                         transformer_z=(good if j == 4 else -good))
            rows.append((f"{name}-u{u}", f"i{j}", *[feats[f] for f in FEATURES], None, None))
    cands = spark.createDataFrame(rows, "user_id string, item_id string, "
                                  + ", ".join(f"{f} double" for f in FEATURES) + ", similar_to string, label double")
    truth = spark.createDataFrame([(f"{name}-u{u}", "i4") for u in range(users)], "user_id string, item_id string")
    return cands, truth


def test_cold_blend_is_kept_only_if_it_carries_to_a_held_out_fold(spark):
    """Two folds where the transformer finds what ALS misses: the blend is kept. A fold
    where it does (3 users) and one where it ranks the engaged item last while ALS ranks
    it first (2 users): the search on both keeps the transformer (3 users gained, 2 lost),
    but learned on one fold it costs the other more than it gives, so ALS alone is returned."""
    from socialrec.models.hybrid import cross_checked_blend

    features = ("als_z", "transformer_z")
    kept, check = cross_checked_blend([_fold(spark, "a", 3, True), _fold(spark, "b", 3, True)], k=2,
                                      features=features)
    assert kept["transformer_z"] > 0 and check["blend_kept"] and check["held_out_gain"] > 0.5
    w, check = cross_checked_blend([_fold(spark, "a", 3, True), _fold(spark, "b", 2, False)], k=2,
                                   features=features)
    assert w["als_z"] == 1.0 and w["transformer_z"] == 0.0
    assert not check["blend_kept"] and check["held_out_gain"] < 0


def test_listwise_trials_equal_ranking_metrics_over_the_ranked_lists(spark):
    """The search scores all steps of a feature in one pass; each trial's nDCG@k must be
    the metric of rank_with's top k (ties by item id, features with few distinct values
    so that ties happen), users of the truth without candidates counting 0."""
    from socialrec.evaluation.metrics import ranking_metrics
    from socialrec.models.hybrid import _pack_lists, trial_ndcg

    rng = np.random.default_rng(3)
    rows, truth = [], []
    for u in range(40):
        for j in range(int(rng.integers(3, 15))):
            feats = dict.fromkeys(FEATURES, 0.0)
            feats.update(als_z=float(rng.integers(-2, 3)), transformer_z=float(rng.integers(-1, 2)),
                         social_z=float(rng.normal()))
            rows.append((f"u{u}", f"i{j:02d}" if j % 2 else f"j{j}", *[feats[f] for f in FEATURES], None, None))
            if rng.random() < 0.2:
                truth.append((f"u{u}", rows[-1][1]))
        truth.append((f"u{u}", "never-a-candidate"))
    truth += [("nobody", "i01"), ("nobody", "i03")]  # a truth user without candidates
    cands = spark.createDataFrame(rows, "user_id string, item_id string, " + ", ".join(f"{f} double" for f in FEATURES)
                                  + ", similar_to string, label double")
    truth = spark.createDataFrame(truth, "user_id string, item_id string")
    used = ("als_z", "transformer_z", "social_z")
    trials = [{"als_z": 1.0}, {"als_z": 1.0, "transformer_z": 0.5}, {"als_z": 0.25, "transformer_z": 1.0},
              {"transformer_z": 1.0, "social_z": -0.1}, {"als_z": 1.0, "transformer_z": 2.0, "social_z": 0.5}]
    packed = _pack_lists(cands, truth, used)
    # The reference in one metrics job: each trial's lists and truth under users "<trial>|<user>".
    tagged = lambda df, t: df.withColumn("user_id", F.concat(F.lit(f"{t}|"), "user_id"))  # noqa: E731
    recs = [tagged(rank_with(w, cands, 10).select("user_id", "item_id", "rank"), t) for t, w in enumerate(trials)]
    ref_truth = [tagged(truth, t).withColumn("trial", F.lit(t)) for t in range(len(trials))]
    ref = ranking_metrics(functools.reduce(DataFrame.unionByName, recs), functools.reduce(DataFrame.unionByName, ref_truth),
                          k=[1, 3, 10], metrics=["ndcg"], by=["trial"]).collect()
    for k in (1, 3, 10):
        got = trial_ndcg(packed, trials, used, k=k, n_users=41)
        want = [next(r.value for r in ref if r.trial == t and r.k == k) for t in range(len(trials))]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert len(set(np.round(got, 9))) > 2  # the trials rank differently


def test_cold_candidates_and_a_left_out_signal(spark, tiny):
    """Restricted to the allowed (cold) items, every source proposes only those; with
    popularity left out (the hybrid-no-popular ablation) it neither proposes nor scores."""
    train, _, als_users = tiny
    full = build_catalogue(train, _items(spark, list("abcdef")), als_items=None, content={}, allowed=["d", "f", "zz"],
                           popular=False)
    assert list(full.allowed) == [3, 5]  # zz is not in the catalogue
    assert not full.popular and not full.popularity.any()
    rows = candidates(train, full, als_users=None, n_per_source=5).collect()
    assert rows == []  # no source left: nothing proposed
    vec = spark.createDataFrame([(i, [1.0, float(n)]) for n, i in enumerate("abcdef")], "item_id string, vector array<float>")
    cat = build_catalogue(train, _items(spark, list("abcdef")), als_items=vec, content={}, allowed=["d", "f"],
                          popular=False)
    rows = candidates(train, cat, als_users=als_users, n_per_source=5).collect()
    # w has no ALS factors (and ALS is the only source left): no list, not an arbitrary one
    assert {r.item_id for r in rows} == {"d", "f"} and {r.user_id for r in rows} == {"u", "v"}
    assert all(r.rr_popular == 0.0 and r.popularity == 0.0 and r.popularity_z == 0.0 for r in rows)
    # u = (1, 0): both score 1; v = (-1, 0) likewise; ties go to the item id: d first.
    assert {(r.user_id, r.item_id): r.rr_als for r in rows}[("u", "d")] == 1.0


def test_social_candidates_features_and_explanation(spark, tiny):
    """u follows v and w: their items c (both) and e (w only) become social candidates
    with their counts and ages; node vectors place c between v and w; u's profile
    aggregates v's and w's profiles; the explanation names the count."""
    from socialrec.features.graph import graph_edges

    train, shared, _ = tiny
    cat = dataclasses.replace(shared, als=None)  # social_inputs sets cat.graph: not on the shared fixture
    edges = spark.createDataFrame([("d", "u", "v", "follow", 1.0, None), ("d", "u", "w", "follow", 1.0, None),
                                   ("d", "n", "v", "follow", 1.0, None)],  # n: no train pair, follows v
                                  "dataset string, src string, dst string, kind string, weight double, ts timestamp")
    graph = graph_edges(edges, directed=True)
    nodes = spark.createDataFrame([("u", [1.0, 0.0]), ("v", [1.0, 0.0]), ("w", [0.0, 1.0])],
                                  "user_id string, vector array<float>")
    social = social_inputs(train, graph, cat, nodes=nodes)
    # Items in node space: a <- u, c <- mean(v, w), e <- w; b, d, f have no users.
    np.testing.assert_allclose(cat.graph[[0, 2, 4]], [[1, 0], [2 ** -0.5, 2 ** -0.5], [0, 1]], atol=1e-6)
    assert not cat.graph[[1, 3, 5]].any()
    rows = {(r.user_id, r.item_id): r for r in
            candidates(train, cat, als_users=None, n_per_source=3, social=social).collect()}
    c, e = rows[("u", "c")], rows[("u", "e")]
    assert c.social == pytest.approx(math.log1p(2)) and e.social == pytest.approx(math.log1p(1))
    assert c.rr_social == 1.0 and e.rr_social == 0.5
    assert c.social_recency == 0.0 and e.social_recency == pytest.approx(math.log1p(9.0))  # w's e: 9 days before
    assert c.graph == pytest.approx(2 ** -0.5, abs=1e-6) and c.rr_graph == 1.0 and e.graph == pytest.approx(0.0)
    # u's profile by hand: e_u + 1/2 e_v + 1/2 e_w over the centred transformer vectors.
    m = cat.content["transformer"].astype(np.float64)
    unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
    h = unit(m[0]) + 0.5 * unit(m[2]) + 0.5 * unit(m[2] + m[4])
    assert c.profile == pytest.approx(float(m[2] @ unit(h)), abs=1e-5)
    assert ("v", "c") not in rows and rows[("v", "a")].social == 0.0  # v follows nobody; c is v's own
    # The newcomer n is served from the social sources: v's item c, and items near v's profile.
    n = {i: r for (user, i), r in rows.items() if user == "n"}
    assert n["c"].social == pytest.approx(math.log1p(1)) and n["c"].rr_social == 1.0 and n["c"].activity == 0.0
    assert all(r.rr_als == 0.0 and r.rr_transformer == 0.0 for r in n.values())
    assert n["c"].profile == pytest.approx(float(m[2] @ unit(m[2])), abs=1e-5)  # h_n = e_v
    top = rank_with(dict.fromkeys(FEATURES, 0.0) | {"social": 1.0}, candidates(
        train, cat, als_users=None, n_per_source=3, social=social), 1).where(F.col("user_id") == "u").first()
    assert (top.item_id, top.explanation) == ("c", "2 people you follow engaged with this")
    assert top.components["social"] == pytest.approx(math.log1p(2))


def test_trending_candidates_and_features(spark):
    """hybrid.trend_hours: velocity over the window to the newest train pair proposes the
    rising items and feeds trending / trending_z / rr_trending; explanations name it."""
    from datetime import timedelta

    ids = ["a", "b", "c", "d"]
    t = datetime(2026, 3, 1, 12, 0)
    train = spark.createDataFrame(
        [("u", "a", 1.0, t), ("v", "b", 2.0, t - timedelta(hours=1)), ("w", "b", 1.0, t - timedelta(hours=2)),
         ("x", "c", 4.0, t - timedelta(hours=30)), ("x", "d", 3.0, t - timedelta(hours=3, minutes=30))],
        "user_id string, item_id string, weight double, ts timestamp")
    content = spark.createDataFrame([(i, [1.0, float(n)]) for n, i in enumerate(ids)], "item_id string, vector array<float>")
    cat = build_catalogue(train, _items(spark, ids), als_items=None, content={"transformer": content}, trend_hours=3)
    # window (t - 3 h, t]: a 1.0, b 2.0 + 1.0; c (30 h ago) and d (3.5 h ago) are outside; per hour / 3
    np.testing.assert_allclose(cat.trend, [1 / 3, 1.0, 0.0, 0.0])
    assert build_catalogue(train, _items(spark, ids), als_items=None, content={}).trend is None
    rows = {(r.user_id, r.item_id): r for r in candidates(train, cat, als_users=None, n_per_source=3).collect()}
    u = {i: r for (user, i), r in rows.items() if user == "u"}
    assert u["b"].rr_trending == 1.0 and u["b"].trending == pytest.approx(math.log1p(1.0))
    assert "c" in u and u["c"].rr_trending == 0.0 and u["c"].trending == 0.0  # proposed by others, not rising
    z = [u[i].trending_z for i in sorted(u)]
    assert np.mean(z) == pytest.approx(0.0, abs=1e-9) and max(z) == u["b"].trending_z
    cands = candidates(train, cat, als_users=None, n_per_source=3)
    top = {r.user_id: r for r in rank_with({"trending_z": 1.0}, cands, 1).collect()}
    assert top["u"].item_id == "b" and top["u"].explanation == "trending: engagement with it is rising fast"
