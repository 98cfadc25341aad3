"""ALS benchmarks on real data, each against a peer in the same run.

    make bench-als                         # or: PYTHONPATH=lib .venv/bin/python -m bench.als
    make bench-als ARGS="--dataset movielens-latest"

On the dataset's stratified 75/25 split (seed 42), k = 10, seen items removed:

1. quality and fit time: socialrec's ``als`` (Spark ALS, implicit, blockwise top-k) at its
   configured values vs the ``implicit`` library's CPU ALS (the single-machine reference
   the issue names), each tuned the same way: a grid scored by nDCG@10 on a validation
   split carved from train (stratified 80/20, seed 42), then refitted on all of train and
   scored once on test. Both lists are scored by the same Spark metric code.
2. top-k with seen items removed, from the same Spark ALS model: socialrec's blockwise
   retrieval (item factors broadcast, users scored block by block, seen masked before
   the top-k) vs Spark's ``recommendForAllUsers(k + max seen)`` then filtering the seen
   pairs out, the plan Spark's API leaves; the two must give the same lists.

Also the peer at literally Spark's values (the same rank, regularisation, alpha and
iterations; the two scale regularisation differently: Spark multiplies it by each
user's and item's number of pairs). ``--quick`` skips both tunings (both at the
configured values).

Writes bench/results/als-<time>.json and .md and prints the table; ``--json PATH``
also hands the suite's rows to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from pyspark.sql import Window
from pyspark.sql import functions as F

from bench import compare, emit, fmt, machine_label, same_top_k, save, timed_cache
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.session import get_spark
from socialrec.data.ingest import validate
from socialrec.data.sources import load_raw
from socialrec.data.split import stratified_split, to_pairs
from socialrec.evaluation.metrics import ranking_metrics
from socialrec.models import als as A

IMPLICIT_GRID = {"regularization": [0.1, 1.0, 3.0, 10.0, 30.0, 100.0], "alpha": [0.3, 1.0, 3.0]}


def _how(points: int) -> str:
    return f"tuned over {points} points" if points > 1 else "untuned"


def _ndcg(recs, truth, k):
    return float(ranking_metrics(recs, truth, k=[k], metrics=["ndcg"]).first()["value"])


def implicit_fit_recommend(train_pdf: pd.DataFrame, users: list, items: list, *, factors: int, regularization: float,
                           alpha: float, iterations: int, k: int, seed: int = 42) -> pd.DataFrame:
    """The implicit library's ALS on (user_id, item_id, weight): top-k unseen per user."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    ui = {u: i for i, u in enumerate(users)}
    ii = {x: i for i, x in enumerate(items)}
    rows = train_pdf["user_id"].map(ui).to_numpy()
    cols = train_pdf["item_id"].map(ii).to_numpy()
    m = sp.csr_matrix((train_pdf["weight"].to_numpy(dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    with threadpool_limits(1, "blas"):  # implicit's own advice: its threads, not BLAS's
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                        iterations=iterations, random_state=seed)
        model.fit(m, show_progress=False)
        who = np.unique(rows)
        ids, scores = model.recommend(who, m[who], N=k, filter_already_liked_items=True)
    out = [(users[u], items[j], r + 1) for u, row in zip(who, ids) for r, j in enumerate(row) if j >= 0]
    return pd.DataFrame(out, columns=["user_id", "item_id", "rank"])


def spark_recommend_for_all(model, train_idx, users_map, items_map, k):
    """Spark's own API: recommendForAllUsers(k + max seen), drop seen, keep k."""
    depth = train_idx.groupBy("uidx").count().agg(F.max("count")).first()[0] + k
    recs = model.recommendForAllUsers(int(depth)).select("uidx", F.posexplode("recommendations").alias("p", "rec"))
    recs = recs.select("uidx", F.col("rec.iidx").alias("iidx"), F.col("rec.rating").alias("score"), "p")
    unseen = recs.join(train_idx.select("uidx", "iidx"), ["uidx", "iidx"], "left_anti")
    w = Window.partitionBy("uidx").orderBy(F.desc("score"), "iidx")
    top = unseen.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k)
    return (top.join(users_map.select(F.col("idx").alias("uidx"), F.col("id").alias("user_id")), "uidx")
            .join(items_map.select(F.col("idx").alias("iidx"), F.col("id").alias("item_id")), "iidx")
            .select("user_id", "item_id", "rank"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.als")
    ap.add_argument("--dataset", default="movielens-100k")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="no tuning: both at the configured values")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    k = args.k
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"],
                      ["spark.progress=false", f"dataset.name={args.dataset}"])
    spark = get_spark(cfg.spark, cfg.jars)
    out = validate(load_raw(spark, cfg.dataset), dataset=cfg.dataset.name, event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds)
    pairs = to_pairs(out.interactions).select("user_id", "item_id", "weight", "ts").cache()
    pairs.count()
    out.release()
    train, test = stratified_split(pairs, 0.75, 42)
    train, test = train.cache(), test.cache()
    fit_part, val = stratified_split(train, cfg.als.val_ratio, cfg.als.seed)
    fit_part, val = fit_part.cache(), val.cache()
    users_map = A.new_id_map(pairs.select(F.col("user_id").alias("id"))).cache()
    items_map = A.new_id_map(pairs.select(F.col("item_id").alias("id"))).cache()
    rows = []

    # ---------------------------------------------------------------- 1. quality: Spark ALS vs implicit
    base = A.ALSParams(rank=cfg.als.rank, reg=cfg.als.reg, alpha=cfg.als.alpha, max_iter=cfg.als.max_iter)
    start = time.perf_counter()
    grid_ours = A.grid_points(cfg.als.grid, base) if not args.quick else [base]
    scores = A.tune(train, users_map, items_map, grid_ours, k=k, val_ratio=cfg.als.val_ratio, blocks=cfg.als.blocks,
                    seed=cfg.als.seed, confidence=cfg.als.confidence, log_epsilon=cfg.als.log_epsilon) \
        if len(grid_ours) > 1 else [(base, None)]
    t_tune_ours = time.perf_counter() - start
    chosen = scores[0][0]
    start = time.perf_counter()
    recs, uvec, ivec = A.train_and_recommend(train, users_map, items_map, chosen, k, confidence=cfg.als.confidence,
                                             log_epsilon=cfg.als.log_epsilon, seed=cfg.als.seed,
                                             blocks=cfg.als.blocks)
    recs = recs.cache()
    recs.count()
    t_ours = time.perf_counter() - start
    ndcg_ours = _ndcg(recs, test, k)

    users = sorted(r.id for r in users_map.collect())  # bounded: the dataset's users
    items = sorted(r.id for r in items_map.collect())
    fit_pdf = fit_part.select("user_id", "item_id", "weight").toPandas()
    train_pdf = train.select("user_id", "item_id", "weight").toPandas()
    grid = [(r, a) for r in IMPLICIT_GRID["regularization"] for a in IMPLICIT_GRID["alpha"]]
    if args.quick:
        grid = [(chosen.reg, chosen.alpha)]
    start = time.perf_counter()
    val_scores = []
    for reg, alpha in grid if len(grid) > 1 else []:
        pdf = implicit_fit_recommend(fit_pdf, users, items, factors=chosen.rank, regularization=reg, alpha=alpha,
                                     iterations=chosen.max_iter, k=k)
        val_scores.append((_ndcg(spark.createDataFrame(pdf), val, k), reg, alpha))
    t_tune_peer = time.perf_counter() - start
    best = max(val_scores, key=lambda t: t[0]) if val_scores else (None, *grid[0])
    start = time.perf_counter()
    peer_pdf = implicit_fit_recommend(train_pdf, users, items, factors=chosen.rank, regularization=best[1],
                                      alpha=best[2], iterations=chosen.max_iter, k=k)
    t_peer = time.perf_counter() - start
    ndcg_peer = _ndcg(spark.createDataFrame(peer_pdf), test, k)
    rows.append({"benchmark": f"{args.dataset} nDCG@{k} (stratified 75/25, seed 42)",
                 "ours": f"Spark ALS {chosen.label()} ({_how(len(scores))})",
                 "peer": f"implicit ALS factors {chosen.rank}, reg {best[1]:g}, alpha {best[2]:g} "
                         f"({_how(len(grid))})",
                 "ours_value": ndcg_ours, "peer_value": ndcg_peer, "ratio": ndcg_ours / ndcg_peer,
                 "check": "same split, same metric code"})
    rows.append({"benchmark": f"{args.dataset} fit + top-{k} on train (s)", "ours": "Spark ALS + blockwise top-k",
                 "peer": "implicit ALS + recommend", "ours_value": t_ours, "peer_value": t_peer,
                 "ratio": t_peer / t_ours,
                 "check": f"tuning: {t_tune_ours:.0f} s vs {t_tune_peer:.0f} s" if len(grid) > 1 else "untuned"})
    if len(grid) > 1:  # untuned, the first row already has both at the same values
        same_pdf = implicit_fit_recommend(train_pdf, users, items, factors=chosen.rank, regularization=chosen.reg,
                                          alpha=chosen.alpha, iterations=chosen.max_iter, k=k)
        ndcg_same = _ndcg(spark.createDataFrame(same_pdf), test, k)
        rows.append({"benchmark": f"{args.dataset} nDCG@{k}, the peer at Spark's exact values",
                     "ours": f"Spark ALS {chosen.label()}",
                     "peer": f"implicit ALS factors {chosen.rank}, reg {chosen.reg:g}, alpha {chosen.alpha:g}, "
                             f"{chosen.max_iter} iterations",
                     "ours_value": ndcg_ours, "peer_value": ndcg_same, "ratio": ndcg_ours / ndcg_same,
                     "check": "regularisation scales differently (Spark: x pairs per user/item)"})

    # ---------------------------------------------------------------- 2. top-k: blockwise vs recommendForAllUsers
    data = A.indexed(train, users_map, items_map, confidence=cfg.als.confidence,
                     log_epsilon=cfg.als.log_epsilon).cache()
    data.count()
    model = A.fit(data, chosen, seed=cfg.als.seed, blocks=cfg.als.blocks)
    uvec = A.factors_by_id(model.userFactors, users_map, "user_id").cache()
    ivec = A.factors_by_id(model.itemFactors, items_map, "item_id").cache()
    uvec.count(), ivec.count()
    ours, t_blk, peak_ours = timed_cache(
        A.recommend_from_factors(uvec, ivec, train, k).select("user_id", "item_id", "rank"))
    peer, t_rfa, peak_peer = timed_cache(spark_recommend_for_all(model, data, users_map, items_map, k))
    n_users, n_same = same_top_k(ours, peer)
    rows.append({"benchmark": f"{args.dataset} top-{k} unseen from one ALS model (s)",
                 "ours": "blockwise (mapInPandas)", "peer": "recommendForAllUsers(k + max seen) + filter",
                 "ours_value": t_blk, "peer_value": t_rfa, "ratio": t_rfa / t_blk,
                 "ours_peak_gib": peak_ours, "peer_peak_gib": peak_peer,
                 "check": f"{n_same:,}/{n_users:,} users same top-{k}"})

    machine = machine_label(spark)
    header = ["benchmark", "ours", "peer", "ours", "peer", "ratio", "ours peak GiB", "peer peak GiB", "check"]
    table = [[r["benchmark"], r["ours"], r["peer"], fmt(r["ours_value"], ".4f"), fmt(r["peer_value"], ".4f"),
              fmt(r["ratio"], ".2f") + "x", fmt(r.get("ours_peak_gib"), ".2f"), fmt(r.get("peer_peak_gib"), ".2f"),
              r["check"]] for r in rows]
    save("als", machine, header, table, {"rows": rows, "implicit_validation": val_scores})
    suite = []
    for r in rows:
        timing = r["benchmark"].endswith("(s)")
        suite.append(compare("als" if "unseen" not in r["benchmark"] else "top-k", r["benchmark"].replace(" (s)", ""),
                             r["ours"], r["peer"], "s" if timing else f"nDCG@{k}", r["ours_value"], r["peer_value"],
                             better="lower" if timing else "higher", check=r["check"],
                             **{x: r[x] for x in ("ours_peak_gib", "peer_peak_gib") if x in r}))
    emit(args.json, "als", machine, suite)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
