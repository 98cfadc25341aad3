"""Splitter semantics: Microsoft Recommenders' per-user counts, disjointness, seeds."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from socialrec.split import chrono_split, cold_items_split, random_split, split, stratified_split, to_pairs

# Users with 1..9 pairs each, plus one with 40, timestamps increasing with the item number.
T0 = datetime(2026, 1, 1)
COUNTS = {f"u{n}": n for n in range(1, 10)} | {"big": 40}
ROWS = [(u, f"{u}-i{j:02d}", 1.0, T0 + timedelta(hours=j)) for u, n in COUNTS.items() for j in range(n)]


@pytest.fixture
def pairs(spark):
    return spark.createDataFrame(ROWS, "user_id string, item_id string, weight double, ts timestamp")


def _per_user(df):
    return {r.user_id: r.n for r in df.groupBy("user_id").agg(F.count("*").alias("n")).collect()}


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.8])
def test_stratified_counts_follow_python_round(pairs, ratio):
    train, test = stratified_split(pairs, ratio=ratio, seed=42)
    tr, te = _per_user(train), _per_user(test)
    for user, n in COUNTS.items():
        expected = round(ratio * n)  # Python's round: half to even, as Microsoft Recommenders
        assert tr.get(user, 0) == expected, (user, n)
        assert te.get(user, 0) == n - expected, (user, n)
    # e.g. 2 pairs at 0.75 -> round(1.5) = 2 in train; 1 pair -> all in train
    if ratio == 0.75:
        assert tr["u2"] == 2 and te.get("u2", 0) == 0 and tr["u1"] == 1


def test_stratified_is_a_disjoint_cover_and_seeded(pairs):
    train, test = stratified_split(pairs, seed=42)
    a = {(r.user_id, r.item_id) for r in train.collect()}
    b = {(r.user_id, r.item_id) for r in test.collect()}
    assert not a & b
    assert a | b == {(u, i) for u, i, _, _ in ROWS}
    again, _ = stratified_split(pairs, seed=42)
    assert {(r.user_id, r.item_id) for r in again.collect()} == a
    other, _ = stratified_split(pairs, seed=7)
    assert {(r.user_id, r.item_id) for r in other.collect()} != a
    # Independent of partitioning: the same split from a differently partitioned input.
    shuffled, _ = stratified_split(pairs.repartition(7), seed=42)
    assert {(r.user_id, r.item_id) for r in shuffled.collect()} == a


def test_min_rating_drops_light_users(pairs):
    train, test = stratified_split(pairs, seed=42, min_rating=5)
    users = set(_per_user(train)) | set(_per_user(test))
    assert users == {u for u, n in COUNTS.items() if n >= 5}


def test_chrono_puts_each_users_earliest_pairs_in_train(pairs):
    train, test = chrono_split(pairs, ratio=0.75)
    last_train = {r.user_id: r.m for r in train.groupBy("user_id").agg(F.max("ts").alias("m")).collect()}
    first_test = {r.user_id: r.m for r in test.groupBy("user_id").agg(F.min("ts").alias("m")).collect()}
    assert first_test  # users with >= 3 pairs have test rows
    for user, t in first_test.items():
        assert last_train[user] < t
    assert _per_user(train) == {u: round(0.75 * n) for u, n in COUNTS.items()}


def test_random_split_ratio_and_determinism(spark):
    df = spark.range(20000).select(
        (F.col("id") % 500).cast("string").alias("user_id"), F.col("id").cast("string").alias("item_id")
    )
    train, test = random_split(df, ratio=0.75, seed=42)
    n_train, n_test = train.count(), test.count()
    assert n_train + n_test == 20000
    assert abs(n_train / 20000 - 0.75) < 0.015
    assert train.exceptAll(random_split(df, ratio=0.75, seed=42)[0]).count() == 0


def test_dispatch_and_errors(pairs):
    assert _per_user(split(pairs, "chrono", 0.75)[0]) == _per_user(chrono_split(pairs, 0.75)[0])
    with pytest.raises(ValueError, match="unknown protocol 'weekly'"):
        split(pairs, "weekly")
    with pytest.raises(ValueError, match="ratio"):
        stratified_split(pairs, ratio=1.0)


def test_to_pairs_folds_events(spark):
    ev = spark.createDataFrame(
        [("u", "i", "view", 1.0, T0), ("u", "i", "like", 2.0, T0 + timedelta(days=1)), ("u", "j", "view", 1.0, T0)],
        "user_id string, item_id string, event string, weight double, ts timestamp",
    )
    got = {(r.user_id, r.item_id): (r.weight, r.ts, r.n_events) for r in to_pairs(ev).collect()}
    assert got == {("u", "i"): (3.0, T0, 2), ("u", "j"): (1.0, T0, 1)}


def test_cold_items_moves_every_pair_of_a_seeded_share_of_items(spark):
    # 50 users x 200 items, each user on a random third of the items.
    import random

    rnd = random.Random(3)
    rows = [(f"u{u}", f"i{i:03d}", 1.0, T0) for u in range(50) for i in range(200) if rnd.random() < 0.33]
    df = spark.createDataFrame(rows, "user_id string, item_id string, weight double, ts timestamp")
    train, test = split(df, "cold_items", seed=42, cold_share=0.2)
    tr_items = {r.item_id for r in train.select("item_id").distinct().collect()}
    te_items = {r.item_id for r in test.select("item_id").distinct().collect()}
    assert not tr_items & te_items  # no cold item has a train pair
    assert train.count() + test.count() == len(rows)
    assert 0.12 < len(te_items) / 200 < 0.28  # a hash draw: about a fifth
    # Every pair of a cold item is in test, whichever user it belongs to.
    assert test.count() == sum(1 for r in rows if r[1] in te_items)
    again = {r.item_id for r in cold_items_split(df.repartition(7), 0.2, 42)[1].select("item_id").distinct().collect()}
    assert again == te_items  # the same items for a seed, whatever the partitioning
    other = {r.item_id for r in cold_items_split(df, 0.2, 43)[1].select("item_id").distinct().collect()}
    assert other != te_items
    with pytest.raises(ValueError, match="ratio"):
        cold_items_split(df, 1.5)
