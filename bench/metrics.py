"""Ranking metrics and the popularity top-k, each against a peer in the same run.

    make bench-metrics               # or: PYTHONPATH=lib .venv/bin/python -m bench.metrics
    make bench-metrics ARGS="--users 20000"

1. metrics: socialrec's ranking metrics (one Spark job, all metrics and k at once) vs
   Spark's RankingEvaluator (one evaluation per metric and k, on collected arrays),
   on the popularity recommendations of the generated network; values must agree.
2. top-k: the popularity recommender's bounded join (each user meets only the first
   k + n_seen items) vs the naive plan (every user x every item, anti-join seen, rank);
   results must be identical.

Writes bench/results/metrics-<time>.json and .md and prints the table; ``--json PATH``
also hands the suite's rows to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import time

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import Window
from pyspark.sql import functions as F

from bench import compare, emit, machine_label, save
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.session import get_spark
from socialrec.data.ingest import validate
from socialrec.data.sources import load_raw
from socialrec.data.split import stratified_split, to_pairs
from socialrec.evaluation.metrics import ranking_metrics
from socialrec.models.popularity import recommend_popular


def _time(fn, repeat=3):
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def naive_popular(train, users, k):
    """The plan a first attempt writes: users x catalogue, drop seen, rank, keep k."""
    seen = train.select("user_id", "item_id").distinct()
    scores = train.groupBy("item_id").agg(F.countDistinct("user_id").cast("double").alias("score"))
    cand = users.crossJoin(scores).join(seen, ["user_id", "item_id"], "left_anti")
    w = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("item_id"))
    return cand.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k).select(
        "user_id", "item_id", "rank", "score"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.metrics")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--posts", type=int, default=10000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="500 users, 2,000 posts")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.posts = 500, 2000
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"],
                      [f"dataset.synthetic.users={args.users}", f"dataset.synthetic.posts={args.posts}",
                       "dataset.synthetic.corrupt_rate=0", "spark.progress=false"])
    spark = get_spark(cfg.spark, cfg.jars)
    raw = load_raw(spark, cfg.dataset)
    ing = validate(raw, dataset="bench", event_weights=cfg.dataset.event_weights, edge_kinds=cfg.dataset.edge_kinds)
    # Cached on purpose: both contenders must read the same materialised input.
    pairs = to_pairs(ing.interactions).cache()
    n_pairs = pairs.count()
    train, test = stratified_split(pairs, 0.75, 42)
    train, test = train.cache(), test.cache()
    train.count(), test.count()
    users = train.select("user_id").distinct().cache()
    n_users = users.count()
    n_items = train.select("item_id").distinct().count()
    k = args.k
    size = f"{n_users:,} users x {n_items:,} items, {n_pairs:,} pairs"
    rows = []
    # ---------------------------------------------------------------- top-k
    recs = recommend_popular(train, users, k).cache()
    recs.count()
    t_ours, _ = _time(lambda: recommend_popular(train, users, k).count(), repeat=3)
    # The naive plan is slow (users x catalogue rows): timed once, its result kept for the check.
    naive = naive_popular(train, users, k).cache()
    t_naive, n_naive = _time(naive.count, repeat=1)
    cols = ["user_id", "item_id", "rank"]
    same = n_naive == recs.count() and recs.select(cols).exceptAll(naive.select(cols)).count() == 0
    rows.append(compare("top-k", f"popularity top-{k} unseen, {size}", "bounded join (k + n_seen per user)",
                        "users x catalogue crossJoin, anti-join, window rank", "s", t_ours, t_naive,
                        check="identical lists" if same else "LISTS DIFFER", same_result=same))
    naive.unpersist()

    # ---------------------------------------------------------------- metrics
    ks = [5, 10]
    t_ours, ours = _time(lambda: {(r.metric, r.k): r.value for r in ranking_metrics(recs, test, k=ks).collect()})

    def spark_eval():
        pred = recs.groupBy("user_id").agg(
            F.transform(F.array_sort(F.collect_list(F.struct("rank", "item_id"))), lambda s: s["item_id"]).alias("p"))
        lab = test.groupBy("user_id").agg(F.collect_set("item_id").alias("l"))
        # RankingEvaluator needs double ids: hash the item ids (no collisions at this size).
        df = lab.join(pred, "user_id", "left").select(
            F.coalesce(F.col("p"), F.array().cast("array<string>")).alias("p"), "l")
        df = df.select(
            F.transform("p", lambda x: F.xxhash64(x).cast("double")).alias("prediction"),
            F.transform("l", lambda x: F.xxhash64(x).cast("double")).alias("label"),
        ).cache()
        out = {}
        names = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK", "map": "meanAveragePrecisionAtK"}
        for kk in ks:
            for name, metric in names.items():
                out[(name, kk)] = RankingEvaluator(metricName=metric, k=kk).evaluate(df)
        df.unpersist()
        return out

    t_peer, theirs = _time(spark_eval)
    gap = max(abs(ours[key] - v) for key, v in theirs.items())
    agree = gap < 1e-9
    rows.append(compare("metrics", f"ranking metrics, 4 metrics x 2 cut-offs, {n_users:,} users",
                        "socialrec.evaluation.metrics (one job; adds mrr, hit rate)", "pyspark RankingEvaluator (one pass each)",
                        "s", t_ours, t_peer, check=f"values agree within {gap:.1e}", same_result=agree))

    machine = machine_label(spark)
    save("metrics", machine, ["benchmark", "ours", "peer", "ours s", "peer s", "ours vs peer", "check"],
         [[r["benchmark"], r["ours"], r["peer"], f"{r['ours_value']:.2f}", f"{r['peer_value']:.2f}",
           f"{r['advantage']:.2f}x", r["check"]] for r in rows], {"rows": rows, "users": n_users, "pairs": n_pairs})
    emit(args.json, "metrics", machine, rows)
    spark.stop()
    return 0 if all(r["same_result"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
