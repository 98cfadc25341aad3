"""Text benchmarks: tokenisation throughput and Word2Vec, Spark vs gensim.

    make bench-text                     # or: PYTHONPATH=lib .venv/bin/python -m bench.text

1. Tokenisation (spark-ml engine) at three corpus sizes of the generated network:
   rows/s and tokens/s, and the growth exponent of time in corpus size. (The Spark NLP
   engine is not measured: its jar is not served by Maven Central here.)
2. Word2Vec on the same tokens (a generated corpus, and MovieLens-100K when present):
   Spark (distributed, 2 partitions) vs gensim (driver, all cores), same vector size,
   window, min count and epochs: words/s, WordSim-353 / analogy scores with coverage,
   and nearest-neighbour agreement (overlap@10 over the 200 most frequent words).

Writes bench/results/text-<time>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pyspark.sql import functions as F

from socialrec.config import CONF_DIR, load_config
from socialrec.quality import neighbour_agreement, word_quality
from socialrec.session import get_spark
from socialrec.sources import load_raw
from socialrec.synthetic import generate
from socialrec.tokenize import tokenize
from socialrec.word2vec import train_word_vectors

OUT = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _w2v(tokens, engine, **kw):
    t, wv = _timed(lambda: {r.word: (np.array(r.vector), r["count"]) for r in
                            train_word_vectors(tokens, engine=engine, **kw).collect()})
    return t, wv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.text")
    ap.add_argument("--sizes", default="50000,200000,800000", help="posts per corpus (tokenisation)")
    ap.add_argument("--w2v-posts", type=int, default=48000, help="posts in the Word2Vec corpus")
    ap.add_argument("--vector-size", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"], ["spark.progress=false"])
    spark = get_spark(cfg.spark, cfg.jars)
    lines = []
    result = {"tokenize": [], "word2vec": []}

    sizes = [int(x) for x in args.sizes.split(",")]
    largest = None
    for n in sizes:
        items = generate(spark, users=max(100, n // 3), posts=n, corrupt_rate=0.0, seed=3).items
        items = items.select("item_id", "title", "text").cache()  # generation is not what is measured
        items.count()
        t, stats = _timed(lambda: tokenize(items).agg(F.count("*").alias("rows"), F.sum("n_tokens").alias("tok")).first())
        result["tokenize"].append({"posts": n, "seconds": t, "rows_per_s": stats.rows / t, "tokens_per_s": stats.tok / t,
                                   "tokens": stats.tok})
        items.unpersist()
    w2v_items = generate(spark, users=max(100, args.w2v_posts // 3), posts=args.w2v_posts, corrupt_rate=0.0,
                         seed=3).items
    largest = tokenize(w2v_items.select("item_id", "title", "text")).cache()  # both engines read it
    largest.count()
    if len(sizes) > 1:
        xs = [math.log(r["posts"]) for r in result["tokenize"]]
        ys = [math.log(r["seconds"]) for r in result["tokenize"]]
        result["tokenize_exponent"] = float(np.polyfit(xs, ys, 1)[0])

    corpora = [("synthetic", largest)]
    if (SHARED / "movielens-100k").is_dir():
        mcfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / "movielens-100k.yaml"],
                           [f"dataset.path={SHARED / 'movielens-100k'}"])
        corpora.append(("movielens-100k", tokenize(load_raw(spark, mcfg.dataset).items).cache()))
    kw = dict(vector_size=args.vector_size, window=5, min_count=2, max_iter=args.epochs, partitions=2, seed=1)
    for name, toks in corpora:
        n_tokens = toks.agg(F.sum("n_tokens")).first()[0]
        row = {"corpus": name, "tokens": n_tokens}
        vecs = {}
        for engine in ("spark", "gensim"):
            t, wv = _w2v(toks, engine, **kw)
            q = word_quality(list(wv), np.stack([v for v, _ in wv.values()]))
            vecs[engine] = wv
            row[engine] = {"seconds": t, "words_per_s": n_tokens * args.epochs / t, "vocab": len(wv), **q}
        top = [w for w, _ in sorted(vecs["spark"].items(), key=lambda kv: -kv[1][1])[:200]]
        row["nn_overlap_at_10"] = neighbour_agreement({w: v for w, (v, _) in vecs["spark"].items()},
                                                      {w: v for w, (v, _) in vecs["gensim"].items()}, top)
        result["word2vec"].append(row)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Spark {spark.version} {spark.sparkContext.master}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines += [f"# socialrec text bench {stamp}", "", machine, "", "## Tokenisation (spark-ml engine)", "",
              "| posts | tokens | seconds | rows/s | tokens/s |", "|---|---|---|---|---|"]
    for r in result["tokenize"]:
        lines.append(f"| {r['posts']:,} | {r['tokens']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | "
                     f"{r['tokens_per_s']:,.0f} |")
    if "tokenize_exponent" in result:
        lines += ["", f"time grows as size^{result['tokenize_exponent']:.2f}"]
    lines += ["", f"## Word2Vec, Spark vs gensim (vector {args.vector_size}, window 5, min count 2, "
                  f"{args.epochs} epochs, skip-gram + hierarchical softmax)", "",
              "| corpus | tokens | engine | seconds | words/s | gensim/spark speed | vocab | WordSim-353 rho (OOV) "
              "| analogy acc (questions) | NN overlap@10 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["word2vec"]:
        ratio = r["gensim"]["words_per_s"] / r["spark"]["words_per_s"]
        for engine in ("spark", "gensim"):
            e = r[engine]
            lines.append(
                f"| {r['corpus']} | {r['tokens']:,} | {engine} | {e['seconds']:.1f} | {e['words_per_s']:,.0f} | "
                f"{ratio:.2f}x | {e['vocab']:,} | {e['wordsim353_spearman']:.3f} ({e['wordsim353_oov_ratio']:.0%}) | "
                f"{e['analogy_accuracy']:.3f} ({int(e['analogy_questions'])}) | {r['nn_overlap_at_10']:.2f} |")
    md = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"text-{stamp}.json").write_text(json.dumps({"machine": machine, **result}, indent=2, default=float))
    (OUT / f"text-{stamp}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
