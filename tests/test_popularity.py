"""The popularity recommender on a hand-made fixture."""

from __future__ import annotations

from socialrec.models.popularity import popularity_scores, recommend_popular

# Popularity (distinct users): i1 4, i2 3, i3 2, i4 2, i5 1, i6 1 (ties broken by id).
TRAIN = [("a", "i1"), ("b", "i1"), ("c", "i1"), ("d", "i1"), ("a", "i1"),  # duplicate row
         ("a", "i2"), ("b", "i2"), ("c", "i2"),
         ("b", "i3"), ("c", "i3"),
         ("c", "i4"), ("d", "i4"),
         ("c", "i5"), ("c", "i6")]


def test_scores_count_distinct_users(spark):
    train = spark.createDataFrame(TRAIN, "user_id string, item_id string")
    got = {r.item_id: r.score for r in popularity_scores(train).collect()}
    assert got == {"i1": 4.0, "i2": 3.0, "i3": 2.0, "i4": 2.0, "i5": 1.0, "i6": 1.0}


def test_top_k_unseen_exact(spark):
    train = spark.createDataFrame(TRAIN, "user_id string, item_id string")
    users = spark.createDataFrame([("a",), ("c",), ("d",), ("new",)], "user_id string")
    recs = recommend_popular(train, users, k=3)
    got = {}
    for r in recs.orderBy("user_id", "rank").collect():
        got.setdefault(r.user_id, []).append(r.item_id)
    assert got["a"] == ["i3", "i4", "i5"]  # a saw i1, i2
    assert got["d"] == ["i2", "i3", "i5"]  # d saw i1, i4
    assert got["new"] == ["i1", "i2", "i3"]  # a user with no history gets the most popular
    assert "c" not in got  # c has seen the whole catalogue: nothing left to recommend
    ranks = {r.user_id: [x.rank for x in recs.where(recs.user_id == r.user_id).orderBy("rank").collect()]
             for r in users.collect()}
    assert ranks["a"] == [1, 2, 3]
    expl = recs.where("user_id = 'new' and rank = 1").first().explanation
    assert expl == "popular: 4 people engaged with this"


def test_heavy_user_still_gets_k(spark):
    # u0 has seen the 50 most popular items; the rest of the catalogue is still offered.
    rows = [(f"v{v}", f"i{i:03d}") for i in range(60) for v in range(60 - i)]
    rows += [("u0", f"i{i:03d}") for i in range(50)]
    train = spark.createDataFrame(rows, "user_id string, item_id string")
    users = spark.createDataFrame([("u0",)], "user_id string")
    got = [r.item_id for r in recommend_popular(train, users, k=5).orderBy("rank").collect()]
    assert got == ["i050", "i051", "i052", "i053", "i054"]
