"""Streaming latency: from a post's commit to ``items`` to its rows in ``fresh_recommendations``.

    make bench-stream                      # or: PYTHONPATH=lib:. .venv/bin/python -m bench.stream
    make bench-stream ARGS="--users 2000 --rounds 10 --per-round 50"

Setup (not timed): the generated network at ``--users`` ingested into a fresh warehouse,
its posts embedded and the user profiles built (``ingest``, ``embed``, ``graph``). Then
``socialrec stream`` runs continuously (a micro-batch every ``--interval``) in this process
while a producer appends ``--rounds`` commits of ``--per-round`` new posts (the texts of
existing posts under new ids, posted now), one commit every ``--gap`` seconds.

Per post, from what the tables record: **visible** = the commit time of the
``fresh_recommendations`` version that first holds the post's rows minus the commit time
of the post in ``items`` (``arrived_at``); **scored** = ``scored_at - arrived_at`` (the
MERGE's start). Median, 95th percentile and maximum over the posts that reached a feed.

Peers in the same run, on the same new posts and the same profiles:
* the compute floor: plain sentence-transformers encoding plus numpy scoring of every
  profile in one process (no Spark, no Delta, no checkpoint), seconds per commit;
* the batch path: the incremental ``embed`` stage on the commit's posts (Spark batch job;
  a nightly run would still have to rebuild profiles and rankings after it), seconds.

Writes bench/results/stream-<time>.json and .md; ``--json PATH`` hands the suite's rows
to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone

import numpy as np
from pyspark.sql import functions as F

from bench import compare, emit, machine_label, rows_table, save
from socialrec.core import columns as C
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.schemas import FRESH_RECOMMENDATIONS, ITEMS
from socialrec.core.session import get_spark
from socialrec.core.storage import Storage
from socialrec.stages.embed import embed_stage
from socialrec.stages.graph import graph_stage
from socialrec.stages.ingest import ingest_stage
from socialrec.stream import run_stream


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def floor_seconds(texts: list[list[str]], profiles: np.ndarray, mean: np.ndarray | None, model_path: str,
                  per_user: int) -> list[float]:
    """Seconds per commit for plain sentence-transformers + numpy: encode, centre, score
    every profile, keep the top ``per_user`` per user."""
    import torch
    from sentence_transformers import SentenceTransformer

    from socialrec.models.retrieval import centre

    torch.set_num_threads(2)
    model = SentenceTransformer(model_path, device="cpu")
    model.encode(["warm up"])
    out = []
    for batch in texts:
        t0 = time.perf_counter()
        v = model.encode(batch, batch_size=64, normalize_embeddings=True)
        S = profiles @ centre(v, mean).T
        k = min(per_user, S.shape[1])
        np.argpartition(-S, k - 1, axis=1)[:, :k]
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stream")
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=6, help="commits of new posts")
    ap.add_argument("--per-round", type=int, default=20, help="new posts per commit")
    ap.add_argument("--gap", type=float, default=20.0, help="seconds between commits")
    ap.add_argument("--interval", default="2 seconds", help="stream.interval")
    ap.add_argument("--quick", action="store_true", help="300 users, 3 commits")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.rounds = 300, 3
    root = tempfile.mkdtemp(prefix="socialrec-bench-stream-")
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"],
                      ["spark.progress=false", f"storage.root={root}/warehouse", f"dataset.synthetic.users={args.users}",
                       f"dataset.synthetic.posts={args.users * 3}", "stream.trigger=continuous",
                       f"stream.interval={args.interval}"])
    spark = get_spark(cfg.spark, cfg.jars)
    storage = Storage(cfg.storage.root)
    ds = cfg.dataset.name
    t0 = time.perf_counter()
    ingest_stage(spark, storage, cfg.dataset)
    embed_stage(spark, storage, dataset=ds, emb=cfg.embed)
    graph_stage(spark, storage, dataset=ds, cfg=cfg.graph, embed_model=cfg.embed.model)
    setup_s = time.perf_counter() - t0
    print(f"setup (ingest, embed, graph) at {args.users} users: {setup_s:.0f} s")
    pool = [r.text for r in storage.read(spark, ITEMS, ds).where(F.col(C.TEXT).isNotNull())
            .orderBy(F.xxhash64(C.ITEM)).limit(args.rounds * args.per_round).collect()]  # bounded by the rounds
    authors = [r.user_id for r in storage.read(spark, "users", ds).orderBy(C.USER).limit(50).collect()]
    batches = [pool[i * args.per_round:(i + 1) * args.per_round] for i in range(args.rounds)]
    # fresh_recommendations' change feed tells when each row first became visible
    storage.ensure(spark, FRESH_RECOMMENDATIONS)
    storage.enable_change_feed(spark, FRESH_RECOMMENDATIONS)
    feed_from = storage.version(spark, FRESH_RECOMMENDATIONS)

    st = dataclasses.replace(cfg.stream, run_for=args.rounds * args.gap + 90.0)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(stats=run_stream(
        spark, storage, dataset=ds, stream=st, emb=cfg.embed, event_weights=cfg.dataset.event_weights,
        max_weight=cfg.dataset.max_weight, directed=cfg.graph.directed)))
    runner.start()
    time.sleep(15)  # the queries start (and wait for their first commit)
    new_ids = []
    for r, texts in enumerate(batches):
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = [(ds, f"stream-{r}-{j}", authors[(r + j) % len(authors)], None, t, None, "post", None, now, None)
                for j, t in enumerate(texts)]
        new_ids += [x[1] for x in rows]
        storage.append(spark.createDataFrame(rows, ITEMS.schema), ITEMS)
        time.sleep(args.gap)
    runner.join()
    stats = result.get("stats")

    loc = storage.location(FRESH_RECOMMENDATIONS)
    first_seen = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", feed_from + 1)
                  .load(loc).where(F.col("_change_type") == "insert")
                  .groupBy(C.ITEM).agg(F.min("_commit_timestamp").alias("seen")))
    fresh = storage.read(spark, FRESH_RECOMMENDATIONS, ds).groupBy(C.ITEM).agg(
        F.min("arrived_at").alias("arrived"), F.min("scored_at").alias("scored"), F.count(F.lit(1)).alias("rows"))
    lat = fresh.join(first_seen, C.ITEM).select(
        C.ITEM, "rows", (F.unix_micros("seen") - F.unix_micros("arrived")).alias("visible_us"),
        (F.unix_micros("scored") - F.unix_micros("arrived")).alias("scored_us")).collect()  # one row per new post
    visible = [r.visible_us / 1e6 for r in lat]
    scored = [r.scored_us / 1e6 for r in lat]
    reached = len(lat)

    # peers on the same posts and profiles
    prof = storage.read(spark, "user_profiles", ds).where(F.col("source") == "history").select("vector").collect()
    P = np.array([r.vector for r in prof], dtype=np.float32)
    from socialrec.features.encoder import default_model_path

    fc = storage.read(spark, "item_embeddings", ds).where(F.col("vector").isNotNull()).select("vector").collect()
    cat = np.array([r.vector for r in fc], dtype=np.float64)
    mean = (cat / np.linalg.norm(cat, axis=1, keepdims=True)).mean(axis=0)
    floor = floor_seconds(batches, P, mean, cfg.embed.model_path or default_model_path(), cfg.stream.per_user)
    # the batch path's first step: the embed stage on one more commit of the same size
    extra = [(ds, f"batch-{j}", authors[j % len(authors)], None, t, None, "post", None,
              datetime.now(timezone.utc).replace(tzinfo=None), None) for j, t in enumerate(batches[0])]
    storage.append(spark.createDataFrame(extra, ITEMS.schema), ITEMS)
    t1 = time.perf_counter()
    embed_stage(spark, storage, dataset=ds, emb=cfg.embed)
    batch_embed_s = time.perf_counter() - t1

    machine = machine_label(spark)
    med_visible, med_floor = _pct(visible, 50), _pct(floor, 50)
    n_b = max(stats.batches["fresh"], 1) if stats is not None else 1
    per_batch = ", ".join(f"{k} {v / n_b:.1f}" for k, v in (stats.phases.items() if stats is not None else []))
    print(f"fresh micro-batches: {n_b}; seconds per batch by phase: {per_batch}")
    rows = [
        compare("stream", f"new post -> visible in fresh_recommendations, median of {reached} posts "
                          f"({args.per_round} a commit, trigger {args.interval})",
                "socialrec stream (continuous)", "sentence-transformers + numpy, one process (compute floor)", "s",
                med_visible, med_floor, better="lower",
                check=f"p95 {_pct(visible, 95) or 0:.1f} s, max {max(visible) if visible else 0:.1f} s; "
                      f"{reached}/{len(new_ids)} posts reached a feed"),
        compare("stream", "new post -> scored (MERGE starts), median", "socialrec stream (continuous)",
                "sentence-transformers + numpy, one process (compute floor)", "s", _pct(scored, 50), med_floor,
                better="lower", check=f"p95 {_pct(scored, 95) or 0:.1f} s"),
        compare("stream", f"one commit of {args.per_round} posts: stream latency vs the batch embed stage alone",
                "socialrec stream (continuous), median visible", "embed stage (Spark batch, incremental)", "s",
                med_visible, batch_embed_s, better="lower",
                check="the batch path still needs profiles and rankings after it"),
    ]
    header = ["benchmark", "ours", "peer", "ours", "peer", "check"]
    table = [[r["benchmark"], r["ours"], r["peer"], f"{r['ours_value'] or 0:.2f} s", f"{r['peer_value'] or 0:.2f} s",
              r["check"]] for r in rows]
    payload = {"rows": rows, "users": args.users, "rounds": args.rounds, "per_round": args.per_round, "gap": args.gap,
               "interval": args.interval, "setup_s": setup_s, "visible_s": visible, "scored_s": scored,
               "floor_s": floor, "batch_embed_s": batch_embed_s,
               "stats": dataclasses.asdict(stats) if stats is not None else None}
    save("stream", machine, header, table, payload)
    print("\n".join(rows_table(rows)))
    emit(args.json, "stream", machine, rows, {"setup_s": setup_s})
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
