"""Graph benchmarks, each against a peer in the same run.

    make bench-graph                       # or: PYTHONPATH=lib .venv/bin/python -m bench.graph
    make bench-graph ARGS="--users 20000"

On the Last.fm HetRec friend graph (real; ../shared/data) and the generated network at
``--users``:

1. node2vec walks (p = 0.5, q = 2, 10 walks of 20 nodes per node): socialrec's walker
   (broadcast CSR, vectorised numpy in Spark tasks) vs the textbook single-process
   walker (per walk, per step: neighbours' biased weights, ``random.choices``), the
   shape of the reference implementation. Steps per second; the check compares the
   share of steps that return to the previous node (the p bias) between the two.
2. node embeddings: Word2Vec over the same walks, Spark vs gensim (seconds), and their
   quality as link-prediction AUC: 10% of the friendships are held out before the walks;
   AUC = P(cos of a held-out pair > cos of a random non-adjacent pair).

Writes bench/results/graph-<time>.json and .md and prints the table; ``--json PATH``
also hands the suite's rows to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from pyspark.sql import functions as F

from bench import compare, emit, fmt, machine_label, save
from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.session import get_spark
from socialrec.data.ingest import validate
from socialrec.data.sources import load_raw
from socialrec.features import graph as G

P, Q, LENGTH, WALKS = 0.5, 2.0, 20, 10


def reference_walks(adj: G.Adjacency, *, walks: int, length: int, p: float, q: float, seed: int = 0) -> list:
    """The textbook node2vec walker, one walk and one step at a time."""
    rnd = random.Random(seed)
    nbrs = [adj.indices[adj.indptr[i]:adj.indptr[i + 1]].tolist() for i in range(adj.n)]
    wts = [adj.weights[adj.indptr[i]:adj.indptr[i + 1]].tolist() for i in range(adj.n)]
    sets = [set(x) for x in nbrs]
    out = []
    for _ in range(walks):
        for start in range(adj.n):
            if not nbrs[start]:
                continue
            path = [start]
            while len(path) < length:
                cur = path[-1]
                if not nbrs[cur]:
                    break
                if len(path) == 1:
                    path.append(rnd.choices(nbrs[cur], wts[cur])[0])
                    continue
                prev = path[-2]
                w = [wt / p if x == prev else (wt if x in sets[prev] else wt / q) for x, wt in zip(nbrs[cur], wts[cur])]
                path.append(rnd.choices(nbrs[cur], w)[0])
            out.append(path)
    return out


def return_share(paths) -> float:
    ret = tot = 0
    for pth in paths:
        for a, c in zip(pth, pth[2:]):
            ret += a == c
            tot += 1
    return ret / max(tot, 1)


def link_auc(vec: dict, held: list, nodes: list, edges: set, seed: int = 0) -> float:
    rnd = random.Random(seed)

    def cos(a, b):
        va, vb = vec.get(a), vec.get(b)
        if va is None or vb is None:
            return 0.0
        return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-12))

    pos = [cos(a, b) for a, b in held]
    neg = []
    while len(neg) < len(pos):
        a, b = rnd.choice(nodes), rnd.choice(nodes)
        if a != b and (a, b) not in edges:
            neg.append(cos(a, b))
    pos, neg = np.array(pos), np.array(neg)
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def one_graph(spark, name: str, edges, rows: list) -> None:
    und = G.graph_edges(edges, directed=False)
    pairs = sorted({tuple(sorted((r.src, r.dst))) for r in und.select("src", "dst").collect()})  # bounded: bench graph
    rnd = random.Random(42)
    rnd.shuffle(pairs)
    n_held = len(pairs) // 10
    held, kept = pairs[:n_held], pairs[n_held:]
    graph = spark.createDataFrame([(a, b, 1.0) for a, b in kept] + [(b, a, 1.0) for a, b in kept],
                                  "src string, dst string, weight double").cache()
    graph.count()
    adj = G.adjacency(graph)
    n_steps = None

    # 1. walks
    start = time.perf_counter()
    walks = G.random_walks(graph, walk_length=LENGTH, walks_per_node=WALKS, p=P, q=Q, seed=42).cache()
    n_steps = walks.agg(F.sum(F.size("path") - 1)).first()[0]
    t_ours = time.perf_counter() - start
    sample = [list(r.path) for r in walks.limit(20_000).collect()]
    start = time.perf_counter()
    ref = reference_walks(adj, walks=WALKS, length=LENGTH, p=P, q=Q)
    t_ref = time.perf_counter() - start
    ref_steps = sum(len(x) - 1 for x in ref)
    rows.append({"benchmark": f"{name}: node2vec walks, {adj.n:,} nodes, {len(adj.indices):,} arcs (steps/s)",
                 "ours": "socialrec random_walks (Spark, vectorised)", "peer": "textbook walker (1 process)",
                 "ours_value": n_steps / t_ours, "peer_value": ref_steps / t_ref,
                 "ratio": (n_steps / t_ours) / (ref_steps / t_ref),
                 "check": f"return share {return_share(sample):.3f} vs {return_share(ref[:20_000]):.3f}"})

    # 2. Word2Vec over the walks: Spark vs gensim, and link prediction
    nodes = [str(x) for x in adj.ids]
    edge_set = set(kept) | {(b, a) for a, b in kept} | set(held) | {(b, a) for a, b in held}
    tokens = walks.select(F.col("path").alias("tokens")).cache()
    tokens.count()
    results = {}
    for engine in ("spark", "gensim"):
        from socialrec.features.word2vec import train_word_vectors

        start = time.perf_counter()
        vecs = train_word_vectors(tokens, engine=engine, vector_size=64, window=5, min_count=1, max_iter=5,
                                  partitions=1, seed=42, max_sentence_length=LENGTH)
        vec = {r.word: np.array(r.vector) for r in vecs.collect()}  # bounded: one vector per node
        results[engine] = (time.perf_counter() - start, link_auc(vec, held, nodes, edge_set))
    rows.append({"benchmark": f"{name}: Word2Vec over {n_steps + walks.count():,} walk tokens (s)",
                 "ours": "Spark Word2Vec (graph.engine spark)", "peer": "gensim (graph.engine gensim)",
                 "ours_value": results["spark"][0], "peer_value": results["gensim"][0],
                 "ratio": results["gensim"][0] / results["spark"][0], "check": "same walks"})
    rows.append({"benchmark": f"{name}: link-prediction AUC, {n_held:,} held-out ties",
                 "ours": "Spark Word2Vec node vectors", "peer": "gensim node vectors",
                 "ours_value": results["spark"][1], "peer_value": results["gensim"][1],
                 "ratio": results["spark"][1] / results["gensim"][1], "check": "0.5 = chance"})
    walks.unpersist(), tokens.unpersist(), graph.unpersist()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.graph")
    ap.add_argument("--users", type=int, default=0, help="also the generated network at this size (0: skip)")
    ap.add_argument("--quick", action="store_true", help="the Last.fm graph only (the default)")
    ap.add_argument("--json", default=None, help="write the suite's rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.users = 0
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"],
                      ["spark.progress=false", "dataset.name=lastfm-hetrec"])
    spark = get_spark(cfg.spark, cfg.jars)
    rows: list[dict] = []
    out = validate(load_raw(spark, cfg.dataset), dataset="lastfm-hetrec", event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds)
    one_graph(spark, "Last.fm friends", out.edges.cache(), rows)
    out.release()
    if args.users:
        syn = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "local.yaml"],
                          ["spark.progress=false", f"dataset.synthetic.users={args.users}",
                           f"dataset.synthetic.posts={args.users * 3}", "dataset.synthetic.corrupt_rate=0"])
        out = validate(load_raw(spark, syn.dataset), dataset="synthetic", event_weights=syn.dataset.event_weights,
                       edge_kinds=syn.dataset.edge_kinds)
        one_graph(spark, f"generated, {args.users:,} users", out.edges.cache(), rows)
        out.release()
    machine = machine_label(spark)
    header = ["benchmark", "ours", "peer", "ours", "peer", "ratio", "check"]
    table = [[r["benchmark"], r["ours"], r["peer"], fmt(r["ours_value"], ",.4g"), fmt(r["peer_value"], ",.4g"),
              fmt(r["ratio"], ".2f") + "x", r["check"]] for r in rows]
    save("graph", machine, header, table, {"rows": rows, "p": P, "q": Q, "walk_length": LENGTH, "walks": WALKS})
    units = {"steps/s": ("steps/s", "higher"), "(s)": ("s", "lower"), "AUC": ("AUC", "higher")}
    suite = []
    for r in rows:
        unit, better = next(v for key, v in units.items() if key in r["benchmark"])
        suite.append(compare("graph", r["benchmark"].replace(" (steps/s)", "").replace(" (s)", ""), r["ours"], r["peer"],
                             unit, r["ours_value"], r["peer_value"], better=better, check=r["check"]))
    emit(args.json, "graph", machine, suite)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
