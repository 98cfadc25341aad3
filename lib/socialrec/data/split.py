"""Splitters: pure functions from interactions to (train, test).

The evaluation unit is the (user, item) pair: ``to_pairs`` folds a pair's events into
one row (summed weight, first timestamp, event count) so that no pair is in both train
and test. The splitters then follow Microsoft Recommenders' semantics:

* ``stratified_split`` — per user, a seeded random ``round(ratio * n)`` of the user's
  pairs go to train (Python's round, i.e. half to even, as in
  ``python_stratified_split(ratio=0.75, filter_by="user", seed=42)``), the rest to test;
  users with fewer than ``min_rating`` pairs are dropped.
* ``chrono_split`` — the same counts, but each user's earliest pairs go to train.
* ``random_split`` — each pair independently to train with probability ``ratio``.
* ``leave_last_split`` — per user with at least two pairs, the latest pair to test
  (leave-one-out as in NCF-style evaluation); everything else to train.
* ``time_cut_split`` — one global cut: pairs first seen before it to train, the rest to
  test; the cut is given, or the ``ratio`` quantile of the pairs' timestamps.
* ``cold_items_split`` — the cold-start protocol: a seeded share of the items (hash of
  seed and item below ``cold_share``) becomes cold, and every pair of a cold item goes to
  test; models then rank only the cold items (``cold_items``), which no model saw in
  train, so only what is known without interactions (text, age) can rank them.
* ``cold_users_split`` — a seeded share of the users becomes cold: each keeps only their
  earliest ``history`` pairs in train, the rest go to test; every other user's pairs stay
  in train, so test holds only users with at most ``history`` train pairs.

In the chronological splitters (chrono, leave_last, time_cut, cold_users) a user's test
pairs are never earlier than any of their train pairs (ties in time are broken by item id).

Randomness comes from a hash of (seed, user, item), so a split is the same for a seed
whatever the partitioning.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import PROTOCOLS
from socialrec.data.ingest import LOW_RATING

_MOD = 2_147_483_647


def _uniform(seed: int, *cols: Column) -> Column:
    return F.pmod(F.xxhash64(F.lit(seed), *cols), F.lit(_MOD)).cast("double") / F.lit(float(_MOD))


def positives(interactions: DataFrame) -> DataFrame:
    """The interactions that count as positives: all but ratings below
    ``dataset.positive_at`` (event ``low_rating``, kept in ``interactions`` and counted)."""
    return interactions.where(F.col(C.EVENT) != LOW_RATING)


def to_pairs(
    interactions: DataFrame,
    *,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_weight: str = C.WEIGHT,
    col_ts: str = C.TS,
) -> DataFrame:
    """One row per (user, item): summed weight, first timestamp, number of events."""
    return interactions.groupBy(col_user, col_item).agg(
        F.sum(col_weight).alias(col_weight),
        F.min(col_ts).alias(col_ts),
        F.count(F.lit(1)).cast("int").alias(C.N_EVENTS),
    )


def _by_user_rank(
    df: DataFrame, order: list[Column], ratio: float, col_user: str, min_rating: int
) -> tuple[DataFrame, DataFrame]:
    w = Window.partitionBy(col_user)
    ranked = (
        df.withColumn("_n", F.count(F.lit(1)).over(w))
        .where(F.col("_n") >= min_rating)
        .withColumn("_pos", F.row_number().over(w.orderBy(*order)))
        .withColumn("_train", F.col("_pos") <= F.bround(F.col("_n") * ratio, 0))
    )
    train = ranked.where("_train").drop("_n", "_pos", "_train")
    test = ranked.where(~F.col("_train")).drop("_n", "_pos", "_train")
    return train, test


def stratified_split(
    df: DataFrame,
    ratio: float = 0.75,
    seed: int = 42,
    *,
    min_rating: int = 1,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
) -> tuple[DataFrame, DataFrame]:
    """Per user, a random ``round(ratio * n)`` of their rows to train, the rest to test."""
    _check_ratio(ratio)
    order = [_uniform(seed, F.col(col_user), F.col(col_item)), F.col(col_item)]
    return _by_user_rank(df, order, ratio, col_user, min_rating)


def chrono_split(
    df: DataFrame,
    ratio: float = 0.75,
    *,
    min_rating: int = 1,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_ts: str = C.TS,
) -> tuple[DataFrame, DataFrame]:
    """Per user, the earliest ``round(ratio * n)`` rows to train, the rest to test."""
    _check_ratio(ratio)
    return _by_user_rank(df, [F.col(col_ts), F.col(col_item)], ratio, col_user, min_rating)


def random_split(
    df: DataFrame,
    ratio: float = 0.75,
    seed: int = 42,
    *,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
) -> tuple[DataFrame, DataFrame]:
    """Each row to train with probability ``ratio`` (hash of seed, user, item)."""
    _check_ratio(ratio)
    u = _uniform(seed, F.col(col_user), F.col(col_item))
    return df.where(u < ratio), df.where(u >= ratio)


def cold_items_split(
    df: DataFrame,
    cold_share: float = 0.2,
    seed: int = 42,
    *,
    col_item: str = C.ITEM,
) -> tuple[DataFrame, DataFrame]:
    """All pairs of a seeded ``cold_share`` of the items to test, the rest to train.

    An item is cold when the hash of (seed, item) falls below ``cold_share``, so the same
    items are cold for a seed whatever the partitioning and whichever pairs they have."""
    _check_ratio(cold_share)
    cold = is_cold(seed, cold_share, F.col(col_item))
    return df.where(~cold), df.where(cold)


def cold_items_fold(
    df: DataFrame,
    cold_share: float,
    seed: int,
    fold: int,
    folds: int,
    *,
    col_item: str = C.ITEM,
) -> tuple[DataFrame, DataFrame]:
    """Fold ``fold`` of ``folds`` disjoint cold-item folds: all pairs of the items whose
    hash of (seed, item) falls in [fold, fold + 1) x cold_share / folds to the second part,
    the rest to the first. Together the folds hold out the items ``cold_items_split`` with
    the same seed would; ``folds`` 1 is that split."""
    _check_ratio(cold_share)
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
    u = _uniform(seed, F.col(col_item).cast("string"))
    width = float(cold_share) / folds
    cold = (u >= F.lit(fold * width)) & (u < F.lit((fold + 1) * width if fold + 1 < folds else float(cold_share)))
    return df.where(~cold), df.where(cold)


def is_cold(seed: int, cold_share: float, item: Column) -> Column:
    """Whether ``item`` (or a user id) is cold for this seed: the hash of (seed, id) falls
    below ``cold_share``."""
    return _uniform(seed, item.cast("string")) < F.lit(float(cold_share))


def leave_last_split(
    df: DataFrame,
    *,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_ts: str = C.TS,
) -> tuple[DataFrame, DataFrame]:
    """Per user with two or more pairs, the latest pair (ties: the largest item id) to
    test; every other pair, and the whole history of one-pair users, to train."""
    w = Window.partitionBy(col_user)
    ranked = (df.withColumn("_n", F.count(F.lit(1)).over(w))
              .withColumn("_pos", F.row_number().over(w.orderBy(F.col(col_ts).desc(), F.col(col_item).desc()))))
    last = (F.col("_pos") == 1) & (F.col("_n") >= 2)
    return ranked.where(~last).drop("_n", "_pos"), ranked.where(last).drop("_n", "_pos")


def time_cut(df: DataFrame, ratio: float, *, col_ts: str = C.TS) -> datetime:
    """The global cut of ``time_cut_split`` (naive UTC): the ``ratio`` quantile of the
    pairs' timestamps (Spark's percentile_approx at accuracy 1e6: within a millionth of
    the rank)."""
    _check_ratio(ratio)
    row = df.agg(F.percentile_approx(F.col(col_ts).cast("double"), ratio, 1_000_000).alias("q")).first()
    if row is None or row["q"] is None:
        raise ValueError("time_cut: no pairs to cut")
    return datetime.fromtimestamp(row["q"], tz=timezone.utc).replace(tzinfo=None)


def time_cut_split(
    df: DataFrame,
    ratio: float = 0.75,
    *,
    cut: datetime | str | None = None,
    col_ts: str = C.TS,
) -> tuple[DataFrame, DataFrame]:
    """Pairs first seen before ``cut`` to train, the others to test; ``cut`` (naive: UTC;
    an ISO string or a datetime) defaults to the ``ratio`` quantile of the timestamps
    (``time_cut``), so about ``ratio`` of the pairs train. Test users need not be in
    train: at the cut they are new users."""
    if cut is None:
        cut = time_cut(df, ratio, col_ts=col_ts)
    if isinstance(cut, str):
        cut = datetime.fromisoformat(cut)
    if cut.tzinfo is None:
        cut = cut.replace(tzinfo=timezone.utc)
    # Compared as epoch seconds, so the session time zone cannot shift the cut.
    before = F.col(col_ts).cast("double") < F.lit(cut.timestamp())
    return df.where(before), df.where(~before)


def cold_users_split(
    df: DataFrame,
    cold_share: float = 0.2,
    seed: int = 42,
    *,
    history: int = 2,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_ts: str = C.TS,
) -> tuple[DataFrame, DataFrame]:
    """A seeded ``cold_share`` of the users keep only their earliest ``history`` pairs in
    train (0: none, brand-new users), the rest of their pairs go to test; every other
    user's pairs stay in train."""
    _check_ratio(cold_share)
    if history < 0:
        raise ValueError(f"cold_users: history must be 0 or more, got {history}")
    w = Window.partitionBy(col_user).orderBy(F.col(col_ts), F.col(col_item))
    ranked = df.withColumn("_pos", F.row_number().over(w))
    test = is_cold(seed, cold_share, F.col(col_user)) & (F.col("_pos") > history)
    return ranked.where(~test).drop("_pos"), ranked.where(test).drop("_pos")


def newest_pair(train: DataFrame) -> int | None:
    """The newest train pair's time in epoch microseconds (time-zone free; one value);
    None for pairs without times."""
    if C.TS not in train.columns:
        return None
    return train.agg(F.max(F.unix_micros(C.TS))).first()[0]


def known_by(df: DataFrame, col: str, newest: int | None) -> DataFrame:
    """The rows of ``df`` a model trained up to ``newest`` may know: ``col`` undated or
    not after it. Edges and own posts dated after the newest train pair are future
    information (on Stack Exchange a reply edge or an answer *is* a test interaction)."""
    if newest is None:
        return df
    return df.where(F.col(col).isNull() | (F.unix_micros(col) <= F.lit(newest)))




def split(df: DataFrame, protocol: str, ratio: float = 0.75, seed: int = 42, *, cold_share: float = 0.2,
          cold_history: int = 2, cut: datetime | str | None = None, **cols) -> tuple[DataFrame, DataFrame]:
    """Dispatch on ``evaluation.protocol`` (one of ``PROTOCOLS``)."""
    def only(*names):
        return {k: v for k, v in cols.items() if k in names}

    if protocol == "cold_items":
        return cold_items_split(df, cold_share, seed, **only("col_item"))
    if protocol == "cold_users":
        return cold_users_split(df, cold_share, seed, history=cold_history, **cols)
    if protocol == "stratified":
        return stratified_split(df, ratio, seed, **cols)
    if protocol == "chrono":
        return chrono_split(df, ratio, **cols)
    if protocol == "leave_last":
        return leave_last_split(df, **only("col_user", "col_item", "col_ts"))
    if protocol == "time_cut":
        return time_cut_split(df, ratio, cut=cut, **only("col_ts"))
    if protocol == "random":
        return random_split(df, ratio, seed, **only("col_user", "col_item"))
    raise ValueError(f"evaluation.protocol: unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be between 0 and 1 (exclusive), got {ratio}")
