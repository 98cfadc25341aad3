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

Beyond accuracy (``beyond_accuracy``), over the users who have a list, with ``L_k(u)`` the
top k of user u, ``I`` the catalogue the lists draw from, ``U`` the train users and
``n_i`` the train users of item i:

* coverage@k  = |union of L_k(u)| / |I|
* novelty@k   = mean_u mean_{i in L_k(u)} -log2((n_i + 1) / (|U| + 1))   (self-information, smoothed)
* diversity@k = mean_u mean_{i<j in L_k(u)} (1 - cos(v_i, v_j))   (intra-list, item embeddings;
  users with fewer than two embedded items in L_k(u) are left out)

``by`` (e.g. ``["segment"]``) computes every metric per group of a column carried by the
truth (a user may be in several groups): one row per group, metric and k.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C

METRICS_AT_K = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
BEYOND = ("coverage", "novelty", "diversity")
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
    by: Iterable[str] = (),
) -> DataFrame:
    """Long-format metrics: one row (*by, metric, k, value, n_users) per group, metric and
    k (auc: one row with k = 0, which needs ``n_candidates``, the items every user's list
    ranks). ``by``: columns of ``truth`` to group by (see the module docstring)."""
    by = list(by)
    group = [*by, col_user]
    ks = sorted(set(int(x) for x in k))
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not ks or ks[0] < 1:
        raise ValueError(f"ranking_metrics: bad metrics {unknown} or k {ks}")
    auc = None
    if "auc" in metrics:
        if not n_candidates:
            raise ValueError("ranking_metrics: auc needs n_candidates, the number of items each list ranks")
        auc = _auc(recs, truth, n_candidates, col_user, col_item, col_rank, by)
        metrics = [m for m in metrics if m != "auc"]
        if not metrics:
            return auc
    kmax = ks[-1]
    rel = truth.select(*by, col_user, col_item).distinct()
    n_rel = rel.groupBy(*group).agg(F.count(F.lit(1)).alias("_n"))
    hits = (
        recs.where(F.col(col_rank) <= kmax)
        .select(col_user, col_item, F.col(col_rank).cast("int").alias("_r"))
        .join(rel, on=[col_user, col_item], how="inner")
        .withColumn("_c", F.row_number().over(Window.partitionBy(*group).orderBy("_r")))
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
    per_hit = hits.groupBy(*group).agg(*aggs)
    per_user = n_rel.join(per_hit, on=group, how="left")
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
    wide = per_user.groupBy(*by).agg(*values, F.count(F.lit(1)).alias("_users"))
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
    out = wide.select(*by, stack, F.col("_users").alias("n_users")).select(*by, "_m.*", "n_users")
    return out if auc is None else out.unionByName(auc)


def _auc(recs: DataFrame, truth: DataFrame, n: int, col_user: str, col_item: str, col_rank: str,
         by: list[str]) -> DataFrame:
    """One row (auc, 0, value, n_users): the mean per-user AUC of the whole lists.

    With p relevant items, N = n - p irrelevant ones, a list of m items holding h of the
    relevant ones: a relevant item at rank r with c relevant items at ranks <= r has
    r - c irrelevant items above it and N - (r - c) below; an unlisted relevant item ties
    with the N - (m - h) unlisted irrelevant ones (half a pair each)."""
    group = [*by, col_user]
    rel = truth.select(*by, col_user, col_item).distinct()
    n_rel = rel.groupBy(*group).agg(F.count(F.lit(1)).alias("_p"))
    lists = recs.groupBy(col_user).agg(F.count(F.lit(1)).alias("_m"))
    hits = (recs.select(col_user, col_item, F.col(col_rank).cast("long").alias("_r"))
            .join(rel, [col_user, col_item], "inner")
            .withColumn("_c", F.row_number().over(Window.partitionBy(*group).orderBy("_r"))))
    per_hit = hits.groupBy(*group).agg(F.count(F.lit(1)).alias("_h"), F.sum(F.col("_r") - F.col("_c")).alias("_above"))
    neg = F.lit(float(n)) - F.col("_p")
    h = F.coalesce(F.col("_h"), F.lit(0))
    m = F.coalesce(F.col("_m"), F.lit(0))
    right = h * neg - F.coalesce(F.col("_above"), F.lit(0)) + (F.col("_p") - h) * 0.5 * (neg - (m - h))
    per_user = (n_rel.join(per_hit, group, "left").join(lists, col_user, "left")
                .where(neg > 0).select(*by, (right / (F.col("_p") * neg)).alias("_auc")))
    return per_user.groupBy(*by).agg(F.lit("auc").alias(C.METRIC), F.lit(0).alias(C.K),
                        F.coalesce(F.avg("_auc"), F.lit(0.0)).alias(C.VALUE),
                        F.count(F.lit(1)).alias("n_users"))


def beyond_accuracy(
    recs: DataFrame,
    *,
    k: Iterable[int] = (10,),
    metrics: Iterable[str] = BEYOND,
    n_catalogue: int,
    item_train_users: DataFrame | None = None,
    n_train_users: int | None = None,
    item_vectors: DataFrame | None = None,
    users: DataFrame | None = None,
    by: Iterable[str] = (),
    col_user: str = C.USER,
    col_item: str = C.ITEM,
    col_rank: str = C.RANK,
) -> DataFrame:
    """Coverage, novelty and intra-list diversity at each k (module docstring), rows
    (*by, metric, k, value, n_users) like ``ranking_metrics``.

    ``users`` (*by, user) picks the users of each group (default: every user with a list,
    one group); ``item_train_users`` (item, n) counts each item's train users (novelty,
    with ``n_train_users``); ``item_vectors`` (item, vector) embeds items (diversity).
    Per-user values are computed once and then averaged per group."""
    ks = sorted(set(int(x) for x in k))
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in BEYOND]
    if unknown or not ks or ks[0] < 1:
        raise ValueError(f"beyond_accuracy: bad metrics {unknown} or k {ks}")
    if "novelty" in metrics and (item_train_users is None or not n_train_users):
        raise ValueError("beyond_accuracy: novelty needs item_train_users and n_train_users")
    if n_catalogue < 1:
        raise ValueError(f"beyond_accuracy: the catalogue must have items, got {n_catalogue}")
    by = list(by)
    kmax = ks[-1]
    top = recs.where(F.col(col_rank) <= kmax).select(col_user, col_item, F.col(col_rank).cast("int").alias("_r"))
    if users is None:
        users = top.select(col_user).distinct()
    users = users.select(*by, col_user).distinct()
    per_user = top.select(col_user).distinct()
    if "novelty" in metrics:
        info = -F.log2((F.coalesce(F.col("_n"), F.lit(0)) + 1.0) / F.lit(float(n_train_users + 1)))
        nov = (top.join(item_train_users.select(col_item, F.col(item_train_users.columns[1]).alias("_n")),
                        col_item, "left")
               .groupBy(col_user)
               .agg(*[F.avg(F.when(F.col("_r") <= kk, info)).alias(f"_nov{kk}") for kk in ks]))
        per_user = per_user.join(nov, col_user, "left")
    if "diversity" in metrics and item_vectors is not None:
        norm = F.sqrt(F.aggregate(F.col("_v"), F.lit(0.0), lambda acc, x: acc + x * x))
        vecs = (item_vectors.select(col_item, F.col(item_vectors.columns[1]).cast("array<double>").alias("_v"))
                .where(F.col("_v").isNotNull()).withColumn("_norm", norm).where(F.col("_norm") > 0))
        # For unit vectors u, sum_{i<j} cos(u_i, u_j) = (|S|^2 - n) / 2 with S their sum, so
        # the mean pairwise cosine of a list needs only the per-user sums S at each k
        # (n * dim work per user, not n^2 / 2 * dim over the pairs): Spark ML's weighted
        # vector sum per user, weight 1 within k, no row per dimension.
        from pyspark.ml.functions import array_to_vector, vector_to_array
        from pyspark.ml.stat import Summarizer

        lists = top.join(vecs.select(col_item, array_to_vector("_v").alias("_x"), "_norm"), col_item, "inner")
        within = {kk: F.col("_r") <= kk for kk in ks}
        sums = lists.groupBy(col_user).agg(  # weight 1/norm: the sum of the unit vectors
            *[Summarizer.sum(F.col("_x"), F.when(within[kk], 1.0 / F.col("_norm")).otherwise(0.0)).alias(f"_s{kk}")
              for kk in ks],
            *[F.sum(F.when(within[kk], 1).otherwise(0)).alias(f"_c{kk}") for kk in ks])
        n = sums.select(col_user, *[F.col(f"_c{kk}") for kk in ks], *[
            F.aggregate(vector_to_array(F.col(f"_s{kk}")), F.lit(0.0), lambda acc, x: acc + x * x).alias(f"_q{kk}")
            for kk in ks])
        div = n.select(col_user, *[
            F.when(F.col(f"_c{kk}") >= 2, 1.0 - (F.col(f"_q{kk}") - F.col(f"_c{kk}"))
                   / (F.col(f"_c{kk}") * (F.col(f"_c{kk}") - 1))).alias(f"_div{kk}") for kk in ks])
        per_user = per_user.join(div, col_user, "left")
    grouped = users.join(top, col_user, "inner")  # (group, user, item, rank): coverage
    user_level = users.join(per_user, col_user, "inner")  # (group, user, per-user values)
    aggs, names = [], []
    for kk in ks:
        if "coverage" in metrics:
            aggs.append((F.count_distinct(F.when(F.col("_r") <= kk, F.col(col_item))) / F.lit(float(n_catalogue)))
                        .alias(f"coverage@{kk}"))
            names.append(("coverage", kk, "_users"))
    cov = grouped.groupBy(*by).agg(*aggs, F.count_distinct(col_user).alias("_users")) if aggs else None
    uaggs = []
    for kk in ks:
        if "novelty" in metrics:
            uaggs += [F.avg(f"_nov{kk}").alias(f"novelty@{kk}"), F.count(f"_nov{kk}").alias(f"_nn{kk}")]
            names.append(("novelty", kk, f"_nn{kk}"))
        if "diversity" in metrics and item_vectors is not None:
            uaggs += [F.avg(f"_div{kk}").alias(f"diversity@{kk}"), F.count(f"_div{kk}").alias(f"_nd{kk}")]
            names.append(("diversity", kk, f"_nd{kk}"))
    ua = user_level.groupBy(*by).agg(*uaggs) if uaggs else None
    if cov is None and ua is None:
        raise ValueError("beyond_accuracy: nothing to compute (diversity needs item_vectors)")
    if cov is None or ua is None:
        wide = cov if ua is None else ua
    else:  # one row per group on each side (a single row each without groups)
        wide = cov.join(ua, by, "full") if by else cov.crossJoin(ua)
    stack = F.explode(F.array(*[
        F.struct(F.lit(name).alias(C.METRIC), F.lit(kk).alias(C.K),
                 F.col(f"`{name}@{kk}`").alias(C.VALUE), F.col(n).cast("long").alias("n_users"))
        for name, kk, n in names])).alias("_m")
    return wide.select(*by, stack).select(*by, "_m.*").where(F.col(C.VALUE).isNotNull())
