"""Splitter semantics: Microsoft Recommenders' per-user counts, disjointness, seeds."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from socialrec.data.split import (
    PROTOCOLS,
    chrono_split,
    cold_items_fold,
    cold_items_split,
    cold_users_split,
    leave_last_split,
    random_split,
    split,
    stratified_split,
    time_cut,
    time_cut_split,
    to_pairs,
)

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
    # The hybrid's validation folds: disjoint, together the items of the same draw, each
    # fold's pairs all held out of its own first part; one fold is the split itself.
    parts = [cold_items_fold(df, 0.2, 42, f, 4) for f in range(4)]
    held = [{r.item_id for r in cold.select("item_id").distinct().collect()} for _, cold in parts]
    assert all(h for h in held) and sum(len(h) for h in held) == len(set().union(*held))
    assert set().union(*held) == te_items
    for (rest, cold), h in zip(parts, held):
        assert rest.count() + cold.count() == len(rows)
        assert not h & {r.item_id for r in rest.select("item_id").distinct().collect()}
    assert {r.item_id for r in cold_items_fold(df, 0.2, 42, 0, 1)[1].select("item_id").distinct().collect()} == te_items
    with pytest.raises(ValueError, match="fold 4"):
        cold_items_fold(df, 0.2, 42, 4, 4)


def _bounds(train, test):
    """Per user: the latest train timestamp and the earliest test timestamp."""
    last = {r.user_id: r.m for r in train.groupBy("user_id").agg(F.max("ts").alias("m")).collect()}
    first = {r.user_id: r.m for r in test.groupBy("user_id").agg(F.min("ts").alias("m")).collect()}
    return last, first


@pytest.mark.parametrize("protocol", ["chrono", "leave_last", "time_cut", "cold_users"])
def test_chronological_protocols_never_test_before_train(pairs, protocol):
    # Shuffle the timestamps so that item order and time disagree.
    shuffled = pairs.withColumn("ts", F.col("ts") + F.expr("make_interval(0, 0, 0, 0, "
                                                           "cast(pmod(xxhash64(item_id), 97) as int))"))
    train, test = split(shuffled, protocol, 0.75, 42, cold_share=0.5, cold_history=1)
    last, first = _bounds(train, test)
    assert first, protocol
    for user, t in first.items():
        assert user not in last or last[user] <= t, (protocol, user)
    assert train.count() + test.count() == len(ROWS)


def test_leave_last_puts_each_users_latest_pair_in_test(pairs):
    train, test = leave_last_split(pairs)
    te = {r.user_id: (r.item_id, r.ts) for r in test.collect()}
    # u1 has one pair: it stays in train; every other user has exactly their last pair in test.
    assert set(te) == set(COUNTS) - {"u1"}
    for user, (item, ts) in te.items():
        assert item == f"{user}-i{COUNTS[user] - 1:02d}" and ts == T0 + timedelta(hours=COUNTS[user] - 1)
    assert _per_user(train) == {u: n - 1 if n >= 2 else n for u, n in COUNTS.items()}


def test_time_cut_is_one_global_instant(pairs):
    cut = datetime(2026, 1, 1, 5)
    train, test = time_cut_split(pairs, cut=cut)
    assert train.where(F.col("ts") >= F.lit(cut)).count() == 0 and test.where(F.col("ts") < F.lit(cut)).count() == 0
    # Hours 0..4 train: each user keeps min(n, 5) pairs.
    assert _per_user(train) == {u: min(n, 5) for u, n in COUNTS.items()}
    assert _per_user(test) == {u: n - 5 for u, n in COUNTS.items() if n > 5}
    same = time_cut_split(pairs, cut="2026-01-01T05:00:00")[0]
    assert same.count() == train.count()
    # Default cut: the ratio quantile of the pair times (one of them, with 75% of the
    # pairs at or before it and fewer than 75% strictly before).
    times = sorted(r[3] for r in ROWS)
    q = time_cut(pairs, 0.75)
    assert q in times and sum(t < q for t in times) <= 0.75 * len(times) <= sum(t <= q for t in times)
    n_train = time_cut_split(pairs, 0.75)[0].count()
    assert n_train == sum(1 for t in times if t < q)


def test_cold_users_keep_only_their_earliest_history(spark):
    import random

    rnd = random.Random(5)
    rows = [(f"u{u:02d}", f"i{i:03d}", 1.0, T0 + timedelta(hours=rnd.randrange(1000)))
            for u in range(60) for i in range(100) if rnd.random() < 0.1]
    df = spark.createDataFrame(rows, "user_id string, item_id string, weight double, ts timestamp")
    train, test = cold_users_split(df, cold_share=0.3, seed=42, history=2)
    cold = {r.user_id for r in test.select("user_id").distinct().collect()}
    assert 0.15 < len(cold) / 60 < 0.45  # a hash draw: about 30%
    tr = _per_user(train)
    by_user: dict[str, list] = {}
    for u, i, _, ts in rows:
        by_user.setdefault(u, []).append((ts, i))
    for u, events in by_user.items():
        if u in cold:
            keep = {i for _, i in sorted(events)[:2]}
            got = {r.item_id for r in train.where(F.col("user_id") == u).collect()}
            assert tr[u] == 2 and got == keep, u
        else:
            assert tr[u] == len(events), u  # warm users: everything in train, nothing in test
    assert train.count() + test.count() == len(rows)
    zero = cold_users_split(df, cold_share=0.3, seed=42, history=0)[0]
    assert not cold & {r.user_id for r in zero.select("user_id").distinct().collect()}  # brand-new users
    assert {r.user_id for r in cold_users_split(df, 0.3, 43)[1].select("user_id").distinct().collect()} != cold


def test_every_protocol_dispatches(pairs):
    from socialrec.core.config import PROTOCOLS as CONFIG_PROTOCOLS

    assert PROTOCOLS == CONFIG_PROTOCOLS
    for protocol in PROTOCOLS:
        train, test = split(pairs, protocol, 0.75, 42)
        assert train.count() + test.count() <= len(ROWS) and test.count() > 0, protocol
        assert train.join(test, ["user_id", "item_id"]).count() == 0, protocol
