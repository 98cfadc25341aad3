"""Ranking metrics at k, computed with Spark built-ins.

Inputs: ``recs`` (user, item, rank) with rank 1 the best, seen-in-train items already
removed; ``truth`` (user, item), the relevant test items. Users are those with at least
one relevant item; a user without recommendations scores 0. With ``R`` the relevant set
of a user, ``hit(i)`` whether the item at rank i is relevant, and ``n = |R|``:

* precision@k = |hits in top k| / k   (k, not the list length: short lists are penalised)
* recall@k    = |hits in top k| / n
* ndcg@k      = sum_{i<=k} hit(i)/log2(i+1)  /  sum_{i<=min(n,k)} 1/log2(i+1)
* map@k       = sum_{i<=k} hit(i) * precision@i  /  min(n, k)
* mrr@k       = 1 / rank of the first hit within k (0 if none)
* hit_rate@k  = 1 if any hit within k else 0

each averaged over users. ``auc`` (cold-start protocol, reported with k = 0) is the
per-user area under the ROC curve of the whole ranked list over ``n_candidates`` items:
the share of (relevant, irrelevant) pairs ranked in the right order, candidates absent
from the list tied below every listed one (exact when the list covers the candidates; a
user without recommendations scores 0.5). These equal Spark's ``RankingEvaluator`` (precisionAtK,
recallAtK, ndcgAtK, meanAveragePrecisionAtK) where both define the metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec import columns as C

METRICS_AT_K = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
METRICS = (*METRICS_AT_K, "auc")


def ranking_metrics(
    recs: DataFrame,
    truth: DataFrame,
    *,
    k: Iterable[int] = (10,),
    metrics: Iterable[str] = METRICS_AT_K,
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_rank: str = C.RANK,
    n_candidates: int | None = None,
) -> DataFrame:
    """Long-format metrics: one row (metric, k, value, n_users) per metric and k (auc:
    one row with k = 0, which needs ``n_candidates``, the items every user's list ranks)."""
    ks = sorted(set(int(x) for x in k))
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not ks or ks[0] < 1:
        raise ValueError(f"ranking_metrics: bad metrics {unknown} or k {ks}")
    auc = None
    if "auc" in metrics:
        if not n_candidates:
            raise ValueError("ranking_metrics: auc needs n_candidates, the number of items each list ranks")
        auc = _auc(recs, truth, n_candidates, col_user, col_item, col_rank)
        metrics = [m for m in metrics if m != "auc"]
        if not metrics:
            return auc
    kmax = ks[-1]
    rel = truth.select(col_user, col_item).distinct()
    n_rel = rel.groupBy(col_user).agg(F.count(F.lit(1)).alias("_n"))
    hits = (
        recs.where(F.col(col_rank) <= kmax)
        .select(col_user, col_item, F.col(col_rank).cast("int").alias("_r"))
        .join(rel, on=[col_user, col_item], how="inner")
        .withColumn("_c", F.row_number().over(Window.partitionBy(col_user).orderBy("_r")))
    )
    aggs = []
    for kk in ks:
        within = F.col("_r") <= kk
        aggs += [
            F.sum(F.when(within, 1).otherwise(0)).alias(f"_h{kk}"),
            F.sum(F.when(within, 1.0 / F.log2(F.col("_r") + 1)).otherwise(0.0)).alias(f"_dcg{kk}"),
            F.sum(F.when(within, F.col("_c") / F.col("_r")).otherwise(0.0)).alias(f"_ap{kk}"),
            F.min(F.when(within, F.col("_r"))).alias(f"_first{kk}"),
        ]
    per_hit = hits.groupBy(col_user).agg(*aggs)
    per_user = n_rel.join(per_hit, on=col_user, how="left")
    values = []
    for kk in ks:
        h = F.coalesce(F.col(f"_h{kk}"), F.lit(0))
        m = F.least(F.col("_n"), F.lit(kk))
        idcg = F.aggregate(
            F.sequence(F.lit(1), m), F.lit(0.0), lambda acc, i: acc + 1.0 / F.log2(i + 1)
        )
        per = {
            "precision": h / F.lit(float(kk)),
            "recall": h / F.col("_n"),
            "ndcg": F.coalesce(F.col(f"_dcg{kk}"), F.lit(0.0)) / idcg,
            "map": F.coalesce(F.col(f"_ap{kk}"), F.lit(0.0)) / m,
            "mrr": F.coalesce(1.0 / F.col(f"_first{kk}"), F.lit(0.0)),
            "hit_rate": F.when(h > 0, 1.0).otherwise(0.0),
        }
        values += [F.avg(per[name]).alias(f"{name}@{kk}") for name in metrics]
    wide = per_user.agg(*values, F.count(F.lit(1)).alias("_users"))
    stack = F.explode(
        F.array(
            *[
                F.struct(
                    F.lit(name).alias(C.METRIC),
                    F.lit(kk).alias(C.K),
                    F.coalesce(F.col(f"`{name}@{kk}`"), F.lit(0.0)).alias(C.VALUE),
                )
                for kk in ks
                for name in metrics
            ]
        )
    ).alias("_m")
    out = wide.select(stack, F.col("_users").alias("n_users")).select("_m.*", "n_users")
    return out if auc is None else out.unionByName(auc)


def _auc(recs: DataFrame, truth: DataFrame, n: int, col_user: str, col_item: str, col_rank: str) -> DataFrame:
    """One row (auc, 0, value, n_users): the mean per-user AUC of the whole lists.

    With p relevant items, N = n - p irrelevant ones, a list of m items holding h of the
    relevant ones: a relevant item at rank r with c relevant items at ranks <= r has
    r - c irrelevant items above it and N - (r - c) below; an unlisted relevant item ties
    with the N - (m - h) unlisted irrelevant ones (half a pair each)."""
    rel = truth.select(col_user, col_item).distinct()
    n_rel = rel.groupBy(col_user).agg(F.count(F.lit(1)).alias("_p"))
    lists = recs.groupBy(col_user).agg(F.count(F.lit(1)).alias("_m"))
    hits = (recs.select(col_user, col_item, F.col(col_rank).cast("long").alias("_r"))
            .join(rel, [col_user, col_item], "inner")
            .withColumn("_c", F.row_number().over(Window.partitionBy(col_user).orderBy("_r"))))
    per_hit = hits.groupBy(col_user).agg(F.count(F.lit(1)).alias("_h"), F.sum(F.col("_r") - F.col("_c")).alias("_above"))
    neg = F.lit(float(n)) - F.col("_p")
    h = F.coalesce(F.col("_h"), F.lit(0))
    m = F.coalesce(F.col("_m"), F.lit(0))
    right = h * neg - F.coalesce(F.col("_above"), F.lit(0)) + (F.col("_p") - h) * 0.5 * (neg - (m - h))
    per_user = (n_rel.join(per_hit, col_user, "left").join(lists, col_user, "left")
                .where(neg > 0).select((right / (F.col("_p") * neg)).alias("_auc")))
    return per_user.agg(F.lit("auc").alias(C.METRIC), F.lit(0).alias(C.K),
                        F.coalesce(F.avg("_auc"), F.lit(0.0)).alias(C.VALUE),
                        F.count(F.lit(1)).alias("n_users"))
