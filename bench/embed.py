"""Transformer stage benchmarks on this machine, each against a peer in the same run.

    make bench-embed                         # or: PYTHONPATH=lib .venv/bin/python -m bench.embed
    make bench-embed ARGS="--quick"          # a couple of minutes

1. embedding: the Spark stage (iterator pandas UDF, one engine per Python worker,
   ``spark.task.cpus`` torch threads each) vs plain sentence-transformers ``encode`` in
   one process with torch's default threads, over the same post-like texts; vectors
   must agree (cosine).
2. top-k retrieval (transformer_content): blockwise products in ``mapInPandas`` vs
   the plan a first attempt writes in Spark (users x items crossJoin, dot product with
   built-in higher-order functions, drop seen, window rank), on the same profiles'
   inputs; results must agree; peak memory of the whole process tree (driver, JVM,
   Python workers) sampled from /proc.
3. top-k retrieval at scale: the blockwise path alone at ``--big`` users x items.
4. the engine the UDF calls (bench/gpu_embed.py: worker processes sharing a device,
   tokenisation overlapped with the forward pass) end to end vs the model's forward
   pass alone on pre-tokenised input (the ceiling), on the GPU when torch sees one,
   else on the CPU (and the row says so).

Writes bench/results/embed-<time>.json and .md and prints the table; ``--json PATH``
also hands the suite's rows to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from pyspark.sql import Window
from pyspark.sql import functions as F

from bench import PeakRSS, _gib, compare, emit, fmt, machine_label, same_top_k, save, timed_cache
from bench.gpu_embed import post_texts
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.session import get_spark
from socialrec.features.embed import EmbedSettings, embedding_column
from socialrec.features.encoder import default_model_path
from socialrec.models.content import recommend_by_content


def crossjoin_topk(train, items, k):
    """Users x items in Spark: weighted-mean profile, dot products with built-ins, rank."""
    unit = items.select("item_id", F.transform(
        "vector", lambda x: x / F.sqrt(F.aggregate("vector", F.lit(0.0), lambda a, y: a + y * y))).alias("v"))
    dim = len(items.first()["vector"])
    prof = train.join(unit, "item_id").select("user_id", "weight", F.posexplode("v").alias("d", "x"))
    prof = prof.groupBy("user_id", "d").agg(F.sum(F.col("weight") * F.col("x")).alias("x"))
    prof = prof.groupBy("user_id").agg(F.array_sort(F.collect_list(F.struct("d", "x"))).alias("s"))
    prof = prof.select("user_id", F.transform("s", lambda e: e["x"]).alias("p"))
    prof = prof.select("user_id", F.transform("p", lambda x: x / F.sqrt(F.aggregate("p", F.lit(0.0), lambda a, y: a + y * y))).alias("p"))
    cand = prof.crossJoin(unit).join(train.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti")
    cand = cand.select("user_id", "item_id", F.aggregate(F.zip_with("p", "v", lambda a, b: a * b), F.lit(0.0),
                                                         lambda a, b: a + b).alias("score"))
    w = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("item_id"))
    assert dim > 0
    return cand.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k)


def retrieval_inputs(spark, n_users, n_items, dim, per_user, seed=0):
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n_items, dim)).astype(np.float32)
    items = spark.createDataFrame([(f"i{i:07d}", vecs[i].tolist()) for i in range(n_items)],
                                  "item_id string, vector array<float>")
    train = (spark.range(n_users * per_user)
             .select((F.col("id") % n_users).alias("u"),
                     (F.abs(F.xxhash64("id", F.lit(seed))) % n_items).alias("i"),
                     (1 + F.abs(F.xxhash64("id", F.lit(seed + 1))) % 4).cast("double").alias("weight"))
             .select(F.format_string("u%07d", "u").alias("user_id"), F.format_string("i%07d", "i").alias("item_id"),
                     "weight")
             .dropDuplicates(["user_id", "item_id"]))
    return train, items


def engine_vs_ceiling(texts: int | None, quick: bool = False) -> dict:
    """The embedding engine end to end (bench/gpu_embed.py) vs its model's forward pass
    alone: on the GPU when torch sees one, else on the CPU with one worker per core."""
    import json
    import tempfile
    from pathlib import Path

    import torch

    from bench import gpu_embed

    gpu = torch.cuda.is_available()
    n = texts or ((20_000 if quick else 200_000) if gpu else (500 if quick else 2000))
    workers = max(1, (os.cpu_count() or 2) - 2) if gpu else (os.cpu_count() or 2)
    argv = ["--texts", str(n), "--workers", str(workers), "--check", str(min(n, 500))]
    argv += ["--device", "cuda"] if gpu else ["--device", "cpu", "--batch-size", "64", "--chunk", "256"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "engine.json")
        gpu_embed.main(argv + ["--out", out])
        got = json.loads(Path(out).read_text())
    where = f"GPU {got['machine']['gpu']}" if gpu else "CPU (no GPU on this machine)"
    return compare("embeddings", f"engine vs its forward-only ceiling, {n:,} texts, {where}",
                   f"socialrec engine, {workers} worker processes",
                   "model forward pass alone on pre-tokenised batches, 1 process", "texts/s",
                   got["e2e_sentences_per_s"], got["forward_own_lengths"], better="higher",
                   check=f"{got['e2e_sentences_per_s'] / got['forward_own_lengths']:.0%} of the ceiling; cosine vs "
                         f"fp32 CPU min {got['cosine_vs_fp32_cpu_min']:.4f}; {got['mean_tokens']:.0f} tokens a text",
                   engine=got)


def suite_row(r: dict) -> dict:
    """This module's table rows as the suite's common rows."""
    if r.get("stage"):
        return r
    if "ours_rate" in r:
        return compare("embeddings", r["benchmark"], r["ours"], r["peer"], "texts/s", r["ours_rate"], r["peer_rate"],
                       better="higher", check=r["same_result"])
    return compare("top-k", r["benchmark"], r["ours"], r["peer"], "s", r["ours_s"], r["peer_s"],
                   check=r["same_result"], ours_peak_gib=r.get("ours_peak_gib"), peer_peak_gib=r.get("peer_peak_gib"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.embed")
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--small", type=int, default=5000, help="users = items for blockwise vs crossJoin")
    ap.add_argument("--small-dim", type=int, default=64)
    ap.add_argument("--big", type=int, default=100_000, help="users = items for the blockwise path alone")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--engine-texts", type=int, default=None, help="texts for the engine vs ceiling row "
                    "(default 200,000 on a GPU, 2,000 on CPU)")
    ap.add_argument("--quick", action="store_true", help="600 texts, 1,000 x 1,000 and 10,000 x 10,000")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.texts, args.small, args.big = 600, 1000, 10_000
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"], ["spark.progress=false"])
    spark = get_spark(cfg.spark, cfg.jars)
    sc = spark.sparkContext
    rows = []

    # ---------------------------------------------------------------- 1. embedding
    from sentence_transformers import SentenceTransformer

    texts = post_texts(args.texts, seed=1)
    model = default_model_path()
    settings = EmbedSettings(model_path=model, device="cpu", batch_size=64)
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string").repartition(
        sc.defaultParallelism, "id").cache()  # both timings read the same materialised input
    df.count()
    warm = df.limit(8 * sc.defaultParallelism).repartition(sc.defaultParallelism)
    warm.select(embedding_column(F.col("text"), settings).alias("v")).write.format("noop").mode("overwrite").save()
    start = time.perf_counter()
    got = df.select("id", embedding_column(F.col("text"), settings).alias("v")).collect()
    t_spark = time.perf_counter() - start
    st = SentenceTransformer(model, device="cpu", local_files_only=True)
    st.encode(texts[:16])
    start = time.perf_counter()
    ref = st.encode(texts, batch_size=64, normalize_embeddings=True)
    t_st = time.perf_counter() - start
    ours = np.stack([np.asarray(r.v, dtype=np.float32) for r in sorted(got, key=lambda r: r.id)])
    cos = float((ours * ref).sum(axis=1).min())
    rows.append({"benchmark": f"embed {len(texts):,} post texts (MiniLM, CPU)",
                 "ours": f"Spark pandas UDF, {sc.defaultParallelism} workers x 1 thread",
                 "peer": "sentence-transformers encode, 1 process", "ours_s": t_spark, "peer_s": t_st,
                 "ours_rate": len(texts) / t_spark, "peer_rate": len(texts) / t_st, "speedup": t_st / t_spark,
                 "same_result": f"min cosine {cos:.6f}"})
    df.unpersist()

    # ---------------------------------------------------------------- 2. blockwise vs crossJoin
    k = args.k
    train, items = retrieval_inputs(spark, args.small, args.small, args.small_dim, per_user=20)
    train, items = train.cache(), items.cache()
    train.count(), items.count()
    ours_recs, t_ours, peak_ours = timed_cache(
        recommend_by_content(train, items, k=k, center=False).select("user_id", "item_id", "rank"))
    peer_recs, t_peer, peak_peer = timed_cache(crossjoin_topk(train, items, k).select("user_id", "item_id", "rank"))
    # Same items per user (ranks may swap where float32 and float64 scores tie differently).
    n_users, n_same = same_top_k(ours_recs, peer_recs)
    rows.append({"benchmark": f"top-{k} retrieval {args.small:,} users x {args.small:,} items, dim {args.small_dim}",
                 "ours": "blockwise matrix products (mapInPandas)", "peer": "crossJoin + dot + window rank",
                 "ours_s": t_ours, "peer_s": t_peer, "speedup": t_peer / t_ours,
                 "ours_peak_gib": peak_ours, "peer_peak_gib": peak_peer,
                 "same_result": f"{n_same:,}/{n_users:,} users same top-{k}"})
    for d in (ours_recs, peer_recs, train, items):
        d.unpersist()

    # ---------------------------------------------------------------- 3. blockwise at scale
    train, items = retrieval_inputs(spark, args.big, args.big, args.dim, per_user=20, seed=5)
    train, items = train.cache(), items.cache()
    n_train = train.count()
    items.count()
    with PeakRSS() as mem:
        start = time.perf_counter()
        recommend_by_content(train, items, k=k).write.format("noop").mode("overwrite").save()
        t_big = time.perf_counter() - start
    rows.append({"benchmark": f"top-{k} retrieval {args.big:,} users x {args.big:,} items, dim {args.dim} "
                              f"({n_train:,} train rows)",
                 "ours": "blockwise matrix products (mapInPandas)", "peer": "(none: crossJoin is "
                 f"{args.big ** 2:,} rows)", "ours_s": t_big, "peer_s": None, "speedup": None,
                 "ours_peak_gib": _gib(mem.peak), "peer_peak_gib": None,
                 "same_result": f"{args.big * args.big * args.dim * 2 / t_big / 1e9:.0f} GFLOP/s effective"})

    # ---------------------------------------------------------------- 4. engine vs forward-only ceiling
    engine = engine_vs_ceiling(args.engine_texts, quick=args.quick)
    rows.append(engine)

    machine = machine_label(spark)
    header = ["benchmark", "ours", "peer", "ours s", "peer s", "peer/ours", "ours peak GiB", "peer peak GiB", "check"]
    table = []
    for r in rows[:-1]:
        rate = f" ({r['ours_rate']:.0f}/s vs {r['peer_rate']:.0f}/s)" if "ours_rate" in r else ""
        table.append([f"{r['benchmark']}{rate}", r["ours"], r["peer"], fmt(r["ours_s"], ".1f"), fmt(r["peer_s"], ".1f"),
                      fmt(r["speedup"], ".2f") + ("x" if r["speedup"] else ""), fmt(r.get("ours_peak_gib"), ".2f"),
                      fmt(r.get("peer_peak_gib"), ".2f"), r["same_result"]])
    table.append([engine["benchmark"] + f" ({engine['ours_value']:.0f}/s vs {engine['peer_value']:.0f}/s)",
                  engine["ours"], engine["peer"], "-", "-", "-", "-", "-", engine["check"]])
    save("embed", machine, header, table, {"rows": rows})
    emit(args.json, "embed", machine, [suite_row(r) for r in rows])
    spark.stop()
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
