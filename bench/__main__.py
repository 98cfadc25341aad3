"""Benchmarks of the foundation, each against a peer in the same run.

    make bench                       # or: PYTHONPATH=lib .venv/bin/python -m bench
    make bench ARGS="--users 20000"

1. metrics: socialrec's ranking metrics (one Spark job, all metrics and k at once) vs
   Spark's RankingEvaluator (one evaluation per metric and k, on collected arrays),
   on the popularity recommendations of the generated network; values must agree.
2. top-k: the popularity recommender's bounded join (each user meets only the first
   k + n_seen items) vs the naive plan (every user x every item, anti-join seen, rank);
   results must be identical.

Writes bench/results/<timestamp>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import Window
from pyspark.sql import functions as F

from socialrec.config import CONF_DIR, load_config
from socialrec.ingest import validate
from socialrec.metrics import ranking_metrics
from socialrec.popularity import recommend_popular
from socialrec.session import get_spark
from socialrec.sources import load_raw
from socialrec.split import stratified_split, to_pairs

OUT = Path(__file__).resolve().parent / "results"


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
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)
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
    k = args.k

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
    rows.append({"benchmark": "popularity top-k", "ours": "bounded join (k + n_seen per user)",
                 "peer": "users x catalogue, anti-join, rank", "ours_s": t_ours, "peer_s": t_naive,
                 "speedup": t_naive / t_ours, "same_result": same})

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
    agree = all(abs(ours[key] - v) < 1e-9 for key, v in theirs.items())
    rows.append({"benchmark": "ranking metrics (4 metrics x 2 k; ours adds mrr, hit rate)",
                 "ours": "socialrec.metrics (one job)", "peer": "pyspark RankingEvaluator",
                 "ours_s": t_ours, "peer_s": t_peer, "speedup": t_peer / t_ours, "same_result": agree})

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Spark {spark.version} {spark.sparkContext.master}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    meta = {"when": stamp, "machine": machine, "users": n_users, "pairs": n_pairs, "k": k}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# socialrec bench {stamp}", "", f"{machine}; generated network: {n_users:,} users, "
             f"{n_pairs:,} user-item pairs, k={k}", "",
             "| benchmark | ours | peer | ours s | peer s | peer/ours | same result |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['ours']} | {r['peer']} | {r['ours_s']:.2f} | {r['peer_s']:.2f} | "
                     f"{r['speedup']:.2f}x | {r['same_result']} |")
    md = "\n".join(lines) + "\n"
    (OUT / f"{stamp}.md").write_text(md)
    print(md)
    return 0 if all(r["same_result"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
