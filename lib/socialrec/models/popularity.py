"""The popularity recommender: the baseline every other model must beat.

Items score by how many distinct users engaged with them in train; each user gets the
``k`` most popular items they have not seen, exactly ``k`` unless the catalogue runs
out. Instead of ranking the whole catalogue for every user, each user is joined only
with the first ``k + n_seen(user)`` items of the popularity order (enough to find ``k``
unseen ones), so the work is ``users * k + |train|`` rows, not ``users * items``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C


def popularity_scores(train: DataFrame, *, col_user: str = C.USER, col_item: str = C.ITEM) -> DataFrame:
    """(item, score): distinct users per item in ``train``."""
    return train.groupBy(col_item).agg(F.countDistinct(col_user).cast("double").alias(C.SCORE))


def recommend_popular(
    train: DataFrame,
    users: DataFrame,
    k: int = 10,
    *,
    candidates: DataFrame | None = None,
    tie_seed: int = 42,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
) -> DataFrame:
    """Top-``k`` unseen popular items for each user in ``users``.

    Returns (user, item, rank, score, explanation); rank 1 is the best; ties in score
    are broken by item id so the result is deterministic. ``candidates`` (one column,
    the item): rank only these items, those without train users scoring 0 (under the
    cold-start protocol every candidate does, and ties go to a seeded hash of the item
    instead of its id, whose order can carry popularity (MovieLens numbers its famous
    films first): a random baseline).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen = train.select(col_user, col_item).distinct()
    n_seen = seen.groupBy(col_user).agg(F.count(F.lit(1)).alias("_seen"))
    targets = users.select(col_user).distinct().join(n_seen, on=col_user, how="left").fillna(0, ["_seen"])
    # One small aggregate tells how deep into the popularity order any user must look.
    depth = targets.agg(F.max("_seen")).first()[0] or 0
    scores = popularity_scores(train, col_user=col_user, col_item=col_item).withColumn("_tie", F.lit(0))
    if candidates is not None:
        scores = (candidates.select(F.col(candidates.columns[0]).alias(col_item)).distinct()
                  .join(scores.drop("_tie"), col_item, "left").fillna(0.0, [C.SCORE])
                  .withColumn("_tie", F.xxhash64(F.lit(tie_seed), F.col(col_item).cast("string"))))
    order = [F.desc(C.SCORE), F.asc("_tie"), F.asc(col_item)]
    top = (
        scores
        .orderBy(*order)
        .limit(int(k + depth))
        # k + depth rows at most (the limit above): numbering them in one partition is cheap.
        .withColumn("_pos", F.row_number().over(Window.partitionBy(F.lit(0)).orderBy(*order)))
    )
    candidates = targets.join(F.broadcast(top), F.col("_pos") <= F.col("_seen") + F.lit(k), "inner")
    unseen = candidates.join(seen, on=[col_user, col_item], how="left_anti")
    ranked = unseen.withColumn(C.RANK, F.row_number().over(Window.partitionBy(col_user).orderBy("_pos")))
    return ranked.where(F.col(C.RANK) <= k).select(
        col_user,
        col_item,
        F.col(C.RANK).cast("int").alias(C.RANK),
        F.col(C.SCORE),
        F.concat(F.lit("popular: "), F.col(C.SCORE).cast("long").cast("string"), F.lit(" people engaged with this")).alias(
            "explanation"
        ),
    )
