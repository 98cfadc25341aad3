"""Text benchmarks: tokenisation throughput and Word2Vec, Spark vs gensim.

    make bench-text                     # or: PYTHONPATH=lib .venv/bin/python -m bench.text

1. Tokenisation at three corpus sizes of the generated network: rows/s and tokens/s,
   and the growth exponent of time in corpus size; at the middle size against the same
   rules in one Python process (the ``regex`` module, no Spark), tokens compared post by
   post. On the Spark 3.5 line (``SPARK_LINE=3.5``, where the Spark NLP jar is served)
   the spark-nlp engine is measured at the same sizes in the same session, one ratio row
   per size, with the posts whose tokens the two engines agree on; on 4.1 it is listed
   as not run (no Scala 2.13 Spark NLP jar on Maven Central).
2. Word2Vec on the same tokens (a generated corpus, and MovieLens-100K when present):
   Spark (distributed, 2 partitions) vs gensim (driver, all cores), same vector size,
   window, min count and epochs: words/s, WordSim-353 / analogy scores with coverage,
   and nearest-neighbour agreement (overlap@10 over the 200 most frequent words).

Writes bench/results/text-<time>.json and .md and prints the table; ``--json PATH``
also hands the suite's rows to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import regex
from pyspark.sql import functions as F

from bench import compare, emit, fit_exponent, machine_label
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.jars import jar_set, spark_line
from socialrec.core.session import get_spark
from socialrec.data.sources import load_raw
from socialrec.data.synthetic import generate
from socialrec.features.quality import neighbour_agreement, word_quality
from socialrec.features.tokenize import NO_SPACE_SCRIPTS, TOKEN_SPLIT, URL_PATTERN, tokenize
from socialrec.features.word2vec import train_word_vectors

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


def _spark_nlp_loaded(spark) -> bool:
    """Whether this session carries the Spark NLP jar (the 3.5 line's setup fetches it)."""
    conf = spark.sparkContext.getConf()
    return "spark-nlp" in conf.get("spark.jars", "") + conf.get("spark.jars.packages", "")


class PythonTokenizer:
    """The spark-ml engine's rules in one Python process: the single-machine peer."""

    ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&#x27;", "'"), ("&nbsp;", " "),
                ("&amp;", "&"))

    def __init__(self, stopwords: list[str], min_length: int = 2):
        # Java's \p{IsHan} is the regex module's \p{Han}.
        cjk = NO_SPACE_SCRIPTS.replace("IsHan", "Han").replace("IsHiragana", "Hiragana").replace("IsKatakana",
                                                                                                 "Katakana")
        self.script = regex.compile(r"(?is)<(script|style)[^>]*>.*?</\1>")
        self.tag = regex.compile(r"<[^>]*>")
        self.space = regex.compile(r"\s+")
        self.url = regex.compile(URL_PATTERN)
        self.cjk = regex.compile(cjk)
        self.split = regex.compile(TOKEN_SPLIT)
        self.edge = regex.compile(r"^'+|'+$")
        self.stop = set(stopwords)
        self.min_length = min_length

    def __call__(self, title: str | None, text: str | None) -> list[str]:
        t = ". ".join(x for x in (title, text) if x is not None)
        t = self.tag.sub(" ", self.script.sub(" ", t))
        for entity, char in self.ENTITIES:
            t = t.replace(entity, char)
        t = self.space.sub(" ", t).strip()
        t = self.cjk.sub(r" \1 ", self.url.sub(" ", t).lower())
        out = []
        for w in self.split.split(t):
            w = self.edge.sub("", w)
            if w and (len(w) >= self.min_length or self.cjk.search(w)) and w not in self.stop:
                out.append(w)
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.text")
    ap.add_argument("--sizes", default="50000,200000,800000", help="posts per corpus (tokenisation)")
    ap.add_argument("--w2v-posts", type=int, default=48000, help="posts in the Word2Vec corpus")
    ap.add_argument("--vector-size", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="corpora of 5k, 20k and 60k posts; Word2Vec on 6,000 posts")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.w2v_posts = "5000,20000,60000", 6000
    from pyspark.ml.feature import StopWordsRemover

    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"], ["spark.progress=false"])
    spark = get_spark(cfg.spark, cfg.jars)
    lines = []
    result = {"tokenize": [], "tokenize_spark_nlp": [], "word2vec": []}
    rows = []

    sizes = [int(x) for x in args.sizes.split(",")]
    peer_at = sizes[len(sizes) // 2]
    line = spark_line()
    nlp = _spark_nlp_loaded(spark)
    for n in sizes:
        items = generate(spark, users=max(100, n // 3), posts=n, corrupt_rate=0.0, seed=3).items
        items = items.select("item_id", "title", "text").cache()  # generation is not what is measured
        items.count()
        t, stats = _timed(lambda: tokenize(items).agg(F.count("*").alias("rows"), F.sum("n_tokens").alias("tok")).first())
        result["tokenize"].append({"posts": n, "seconds": t, "rows_per_s": stats.rows / t, "tokens_per_s": stats.tok / t,
                                   "tokens": stats.tok})
        if nlp:
            t_nlp, s_nlp = _timed(lambda: tokenize(items, engine="spark-nlp").agg(
                F.count("*").alias("rows"), F.sum("n_tokens").alias("tok")).first())
            same = None
            if n == peer_at:  # agreement in one join (no collect): posts whose two token lists are equal
                same = (tokenize(items).alias("a").join(tokenize(items, engine="spark-nlp").alias("b"), "item_id")
                        .where(F.col("a.tokens") == F.col("b.tokens")).count())
            result["tokenize_spark_nlp"].append({"posts": n, "seconds": t_nlp, "rows_per_s": s_nlp.rows / t_nlp,
                                                 "tokens_per_s": s_nlp.tok / t_nlp, "tokens": s_nlp.tok,
                                                 "same_tokens_posts": same})
            rows.append(compare("tokenise", f"{n:,} generated posts, Spark {line}", "spark-nlp engine (Spark NLP "
                                "5.5.3 annotators)", "spark-ml engine (same session)", "tokens/s", s_nlp.tok / t_nlp,
                                stats.tok / t, better="higher",
                                check=f"{same:,}/{n:,} posts same tokens" if same is not None else
                                f"{s_nlp.tok:,} vs {stats.tok:,} tokens"))
        if n == peer_at:
            pdf = items.toPandas()  # bounded: the benchmark corpus, handed to the single-process peer
            ours = {r.item_id: list(r.tokens) for r in tokenize(items).toLocalIterator()}
            peer = PythonTokenizer(StopWordsRemover.loadDefaultStopWords("english"))
            start = time.perf_counter()
            theirs = [peer(a, b) for a, b in zip(pdf["title"], pdf["text"])]
            t_peer = time.perf_counter() - start
            n_peer = sum(len(x) for x in theirs)
            same = sum(ours.get(i) == x for i, x in zip(pdf["item_id"], theirs))
            rows.append(compare("tokenise", f"{n:,} generated posts ({stats.tok:,} tokens)",
                                "spark-ml engine (Spark, all cores)", "same rules, one Python process (regex)",
                                "tokens/s", stats.tok / t, n_peer / t_peer, better="higher",
                                check=f"{same:,}/{n:,} posts same tokens"))
            del pdf, ours, theirs
        items.unpersist()
    if not nlp:
        rows.append(compare("tokenise", f"Spark NLP engine, Spark {line}", "spark-nlp engine", "spark-ml engine",
                            "tokens/s", None, None, better="higher",
                            check=f"not run: {', '.join(jar_set(line).spark_nlp)} not on the classpath"
                                  + (" (not on Maven Central; SPARK_LINE=3.5 runs it)" if line == "4.1" else "")))
    w2v_items = generate(spark, users=max(100, args.w2v_posts // 3), posts=args.w2v_posts, corrupt_rate=0.0,
                         seed=3).items
    largest = tokenize(w2v_items.select("item_id", "title", "text")).cache()  # both engines read it
    largest.count()
    result["tokenize_exponent"] = fit_exponent([r["posts"] for r in result["tokenize"]],
                                               [r["seconds"] for r in result["tokenize"]])

    corpora = [("generated", largest)]
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
        sp, gs = row["spark"], row["gensim"]
        rows.append(compare("word2vec", f"{name}: {n_tokens:,} tokens, vector {args.vector_size}, {args.epochs} epochs",
                            "Spark Word2Vec (2 partitions)", "gensim (driver, all cores)", "words/s",
                            sp["words_per_s"], gs["words_per_s"], better="higher",
                            check=f"vocab {sp['vocab']:,} vs {gs['vocab']:,}; nearest-neighbour overlap@10 "
                                  f"{row['nn_overlap_at_10']:.2f}"))
        if sp["wordsim353_oov_ratio"] > 0.9:  # a handful of pairs: no figure worth a row
            continue
        rows.append(compare("word2vec", f"{name}: WordSim-353 Spearman rho", "Spark Word2Vec", "gensim", "rho",
                            sp["wordsim353_spearman"], gs["wordsim353_spearman"], better="higher",
                            check=f"{sp['wordsim353_oov_ratio']:.0%} of pairs out of vocabulary: not a quality "
                                  "figure on this corpus" if sp["wordsim353_oov_ratio"] > 0.5 else
                                  f"{sp['wordsim353_oov_ratio']:.0%} of pairs out of vocabulary"))

    machine = machine_label(spark)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines += [f"# socialrec text bench {stamp}", "", machine, f"Spark line {line}", "", "## Tokenisation", "",
              "| engine | posts | tokens | seconds | rows/s | tokens/s | same tokens as spark-ml |",
              "|---|---|---|---|---|---|---|"]
    for engine, key in (("spark-ml", "tokenize"), ("spark-nlp", "tokenize_spark_nlp")):
        for r in result[key]:
            same = f"{r['same_tokens_posts']:,}/{r['posts']:,}" if r.get("same_tokens_posts") is not None else "-"
            lines.append(f"| {engine} | {r['posts']:,} | {r['tokens']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} "
                         f"| {r['tokens_per_s']:,.0f} | {same} |")
    if result["tokenize_exponent"] is not None:
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
    (OUT / f"text-{stamp}.json").write_text(json.dumps({"machine": machine, **result, "rows": rows}, indent=2,
                                                       default=float))
    (OUT / f"text-{stamp}.md").write_text(md)
    print(md)
    emit(args.json, "text", machine, rows, {"tokenize": result["tokenize"],
                                            "tokenize_spark_nlp": result["tokenize_spark_nlp"],
                                            "tokenize_exponent": result["tokenize_exponent"]})
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
