"""Social-graph signals: random-walk node embeddings, neighbour-aggregated profiles and
social candidates.

**The graph** (``graph_edges``): the dataset's ``edges`` (follow, friend, trust,
replied_to, ...) as one weighted edge per (src, dst), weights of several kinds summed.
``directed: false`` adds every edge's reverse (a friendship or a reply tie counts both
ways; the weights of A->B and B->A are summed into both directions); ``weighted: false``
gives every edge weight 1. Self edges never reach ``edges`` (ingest rejects them).

**Walks** (``random_walks``): node2vec (Grover and Leskovec 2016) second-order walks of
``walk_length`` nodes, ``walks_per_node`` from every node with an out-edge. From ``cur``
having come from ``prev``, the next node ``x`` among cur's out-neighbours is drawn with
probability proportional to ``w(cur, x) * b(prev, x)``, with ``b`` = 1/p when x is
prev (return), 1 when prev -> x is an edge (stay close) and 1/q otherwise (move out);
p = q = 1 is DeepWalk's first-order weighted walk. Sampling is vectorised over all walks
of a task: a first-order proposal by inverse CDF over the global cumulative weights, and
the bias by rejection (accept x with b(prev, x) / max b), as in KnightKing. The
adjacency (CSR, ~16 bytes an edge) is broadcast to the executors, which generate the
walks of their share of the start nodes in ``mapInPandas``; ``max_edges`` refuses a
graph larger than that allows, before anything is collected. Randomness is a counter
hash (splitmix64) of (seed, walk id, step, attempt), so the walks depend on the seed
and the graph only, not on how Spark partitions the start nodes. A walk stops early at
a node without out-edges (directed graphs); users without any edge get no walk.

**Node embeddings** (``node_embeddings``): the walks are the sentences of the Word2Vec
stage (``socialrec.features.word2vec``, Spark or gensim engine) with node ids as words:
``(user_id, vector)`` for every node that occurs in a walk.

**Neighbour-aggregated profiles** (``aggregate_profiles``): with e_u a user's own
history profile, h_u^0 = e_u and, per hop, h_u^(l+1) = e_u + sum_v alpha_uv h_v^(l)
over u's out-neighbours v that have a vector, alpha_uv = w_uv / sum_v' w_uv' (edge
weights normalised per user over those neighbours) or, with ``attention`` beta > 0,
alpha_uv proportional to w_uv * exp(beta * cos(e_u, e_v)). A user without history but
with neighbours gets the neighbours' part alone; a user with neither gets no row.

**Social candidates** (``social_items``): for each user, the items their out-neighbours
engaged with (optionally only in the last ``recent_days`` before the newest
interaction), with how many neighbours did (social proof) and how recently, the
user's own items left out; the top ``limit`` per user by count, then recency.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.compat import to_arrow
from socialrec.data.split import known_by

log = logging.getLogger(__name__)

WALK_SCHEMA = "start string, walk int, path array<string>"
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------- the graph


def graph_edges(edges: DataFrame, *, directed: bool = False, weighted: bool = True) -> DataFrame:
    """(src, dst, weight double) with one row per ordered pair; see the module docstring."""
    e = edges.select(F.col(C.SRC).cast("string").alias("src"), F.col(C.DST).cast("string").alias("dst"),
                     (F.col(C.WEIGHT).cast("double") if weighted else F.lit(1.0)).alias("weight"))
    e = e.where(F.col("src") != F.col("dst"))
    if not directed:
        e = e.unionByName(e.select(F.col("dst").alias("src"), F.col("src").alias("dst"), "weight"))
    out = e.groupBy("src", "dst").agg(F.sum("weight").alias("weight"))
    if not weighted:
        out = out.withColumn("weight", F.lit(1.0))
    return out.where(F.col("weight") > 0)


def train_edges(edges: DataFrame, train: DataFrame, newest: int | None = None) -> DataFrame:
    """The edges a model trained on ``train`` (user_id, item_id pairs) may see:
    (src, dst, kind, weight, ts, intact).

    An edge that exists independently of the interactions (``evidence`` null: follows,
    friendships, trust) is kept unless it is dated after ``newest`` (the newest train
    pair, epoch microseconds; an edge formed after the train period must not inform it).
    An edge derived from interactions keeps only the events of its ``evidence`` that are
    not dated after ``newest`` and all of whose (user, item) pairs are in ``train``: its
    weight scaled by the share of events kept, its ``ts`` the latest kept event's; an
    edge with no event kept is left out. So an edge that exists because of a test pair
    (A answered B's question, and that answer is what the test holds) is never seen.
    ``intact``: the edge is seen as stored (all its events kept)."""
    keys = [C.SRC, C.DST, C.KIND, C.WEIGHT]
    own = known_by(edges.where(F.col(C.EVIDENCE).isNull()), C.TS, newest).select(
        *keys, C.TS, F.lit(True).alias("intact"))
    events = (edges.where(F.col(C.EVIDENCE).isNotNull())
              .select(*keys, F.size(C.EVIDENCE).alias("_n"), F.posexplode(C.EVIDENCE).alias("_e", "_ev"))
              .select(*keys, "_n", "_e", F.col(f"_ev.{C.TS}").alias("_ts"), F.explode_outer("_ev.pairs").alias("_p")))
    events = known_by(events, "_ts", newest).select(
        *keys, "_n", "_e", "_ts", F.col(f"_p.{C.USER}").alias("_pu"), F.col(f"_p.{C.ITEM}").alias("_pi"))
    known = train.select(F.col(C.USER).alias("_pu"), F.col(C.ITEM).alias("_pi")).distinct().withColumn("_ok", F.lit(1))
    seen = (events.join(known, ["_pu", "_pi"], "left")
            .groupBy(*keys, "_n", "_e", "_ts")
            .agg(F.bool_and(F.col("_pu").isNull() & F.col("_pi").isNull() | F.col("_ok").isNotNull()).alias("_seen"))
            .where("_seen")
            .groupBy(*keys, "_n").agg(F.count(F.lit(1)).alias("_kept"), F.max("_ts").alias(C.TS)))
    derived = seen.select(C.SRC, C.DST, C.KIND, (F.col(C.WEIGHT) * F.col("_kept") / F.col("_n")).alias(C.WEIGHT),
                          C.TS, (F.col("_kept") == F.col("_n")).alias("intact"))
    return own.unionByName(derived)


class Adjacency:
    """CSR adjacency over sorted node ids: ``indptr``, ``indices`` (sorted within a row),
    ``weights``, the global cumulative weights ``cum`` and sorted edge keys
    ``src * n + dst`` for the membership test of the node2vec bias."""

    def __init__(self, ids: np.ndarray, src: np.ndarray, dst: np.ndarray, weight: np.ndarray):
        self.ids = ids
        n = len(ids)
        order = np.lexsort((dst, src))
        self.src, self.indices, self.weights = src[order], dst[order], weight[order].astype(np.float64)
        self.indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.src, minlength=n), out=self.indptr[1:])
        self.cum = np.cumsum(self.weights)
        self.keys = self.src.astype(np.int64) * n + self.indices.astype(np.int64)  # sorted (lexsort above)

    @property
    def n(self) -> int:
        return len(self.ids)

    def has_edge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = a.astype(np.int64) * self.n + b.astype(np.int64)
        pos = np.searchsorted(self.keys, key)
        return (pos < len(self.keys)) & (self.keys[np.minimum(pos, len(self.keys) - 1)] == key)


def adjacency(graph: DataFrame, max_edges: int = 50_000_000) -> Adjacency:
    """The (src, dst, weight) graph on the driver as CSR, refused above ``max_edges``."""
    n_edges = graph.count()
    if n_edges > max_edges:
        raise ValueError(f"graph: {n_edges:,} edges exceed graph.max_edges ({max_edges:,}), the size whose "
                         "adjacency is broadcast to the executors for the walks; raise it if executors have "
                         f"~{16 * n_edges / 2**30:.1f} GiB to spare")
    table = to_arrow(graph.select("src", "dst", "weight"))  # bounded by the check above
    src = np.array(table.column("src").to_pylist(), dtype=object)
    dst = np.array(table.column("dst").to_pylist(), dtype=object)
    w = table.column("weight").to_numpy()
    ids = np.array(sorted(set(src.tolist()) | set(dst.tolist())), dtype=object)
    lookup = ids.astype(str)
    s = np.searchsorted(lookup, src.astype(str))
    d = np.searchsorted(lookup, dst.astype(str))
    return Adjacency(ids, s.astype(np.int64), d.astype(np.int64), w)


def _uniform(seed: int, walk: np.ndarray, step: int, attempt: int) -> np.ndarray:
    """Uniform [0, 1) doubles from a counter hash (splitmix64) of (seed, walk, step, attempt)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
             ^ walk.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
             ^ np.uint64(step) * np.uint64(0x94D049BB133111EB)
             ^ np.uint64(attempt) * np.uint64(0xD6E8FEB86659FD93))
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def walk_block(adj: Adjacency, starts: np.ndarray, *, walk_length: int, walks_per_node: int, p: float = 1.0,
               q: float = 1.0, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Walks from the node rows ``starts``: (walk ids, paths as a walks x walk_length int
    matrix, -1 after a walk stopped). Walk id = start row * walks_per_node + j."""
    starts = np.asarray(starts, dtype=np.int64)
    wid = (starts[:, None] * walks_per_node + np.arange(walks_per_node)[None, :]).ravel()
    cur = np.repeat(starts, walks_per_node)
    paths = np.full((len(wid), walk_length), -1, dtype=np.int64)
    if len(wid) == 0:
        return wid, paths
    paths[:, 0] = cur
    prev = np.full(len(wid), -1, dtype=np.int64)
    alive = adj.indptr[cur + 1] > adj.indptr[cur]
    biased = p != 1.0 or q != 1.0
    b_return, b_out = 1.0 / p, 1.0 / q
    b_max = max(b_return, 1.0, b_out)
    for step in range(1, walk_length):
        rows = np.flatnonzero(alive)
        if len(rows) == 0:
            break
        chosen = np.full(len(rows), -1, dtype=np.int64)
        todo = np.arange(len(rows))
        attempt = 0
        while len(todo):
            r = rows[todo]
            c = cur[r]
            lo, hi = adj.indptr[c], adj.indptr[c + 1]
            base = np.where(lo > 0, adj.cum[np.maximum(lo - 1, 0)], 0.0)
            target = base + _uniform(seed, wid[r], step, 2 * attempt) * (adj.cum[hi - 1] - base)
            e = np.clip(np.searchsorted(adj.cum, target, side="right"), lo, hi - 1)
            x = adj.indices[e]
            if not biased or step == 1:
                chosen[todo] = x
                break
            pv = prev[r]
            bias = np.where(x == pv, b_return, np.where(adj.has_edge(pv, x), 1.0, b_out))
            accept = _uniform(seed, wid[r], step, 2 * attempt + 1) * b_max < bias
            chosen[todo[accept]] = x[accept]
            todo = todo[~accept]
            attempt += 1
        prev[rows] = cur[rows]
        cur[rows] = chosen
        paths[rows, step] = chosen
        alive[rows] = adj.indptr[chosen + 1] > adj.indptr[chosen]
    return wid, paths


def random_walks(graph: DataFrame, *, walk_length: int = 20, walks_per_node: int = 10, p: float = 1.0,
                 q: float = 1.0, seed: int = 42, max_edges: int = 50_000_000,
                 partitions: int | None = None) -> DataFrame:
    """Walks over ``graph`` (src, dst, weight): rows (start, walk, path); see the module
    docstring. Generated on the executors from a broadcast CSR adjacency."""
    if walk_length < 2 or walks_per_node < 1:
        raise ValueError(f"graph: walk_length ({walk_length}) must be at least 2 and walks_per_node "
                         f"({walks_per_node}) at least 1")
    if p <= 0 or q <= 0:
        raise ValueError(f"graph: p ({p}) and q ({q}) must be positive")
    spark = graph.sparkSession
    adj = adjacency(graph, max_edges)
    b_adj = spark.sparkContext.broadcast(adj)
    has_out = np.flatnonzero(np.diff(adj.indptr) > 0)
    parts = partitions or spark.sparkContext.defaultParallelism
    starts = spark.createDataFrame(pd.DataFrame({"row": has_out.astype(np.int64)})).repartition(max(1, parts))

    def gen(batches):
        a = b_adj.value
        for pdf in batches:
            rows = pdf["row"].to_numpy(dtype=np.int64)
            for i in range(0, len(rows), 4096):
                wid, paths = walk_block(a, rows[i:i + 4096], walk_length=walk_length,
                                        walks_per_node=walks_per_node, p=p, q=q, seed=seed)
                yield pd.DataFrame({
                    "start": a.ids[paths[:, 0]].astype(str),
                    "walk": (wid % walks_per_node).astype(np.int32),
                    "path": [a.ids[pth[pth >= 0]].astype(str).tolist() for pth in paths],
                })

    return starts.mapInPandas(gen, WALK_SCHEMA)


def node_embeddings(graph: DataFrame, *, walk_length: int = 20, walks_per_node: int = 10, p: float = 1.0,
                    q: float = 1.0, seed: int = 42, max_edges: int = 50_000_000, engine: str = "spark",
                    vector_size: int = 64, window: int = 5, max_iter: int = 5, w2v_partitions: int = 1,
                    min_count: int = 1) -> DataFrame:
    """(user_id, vector array<float>): Word2Vec over the walks, node ids as words."""
    from socialrec.features.word2vec import train_word_vectors

    walks = random_walks(graph, walk_length=walk_length, walks_per_node=walks_per_node, p=p, q=q, seed=seed,
                         max_edges=max_edges)
    # Cached: Word2Vec reads the corpus several times (vocabulary, then training).
    walks = walks.select(F.col("path").alias("tokens")).where(F.size("tokens") > 1).cache()
    try:
        vectors = train_word_vectors(walks, engine=engine, vector_size=vector_size, window=window,
                                     min_count=min_count, max_iter=max_iter, partitions=w2v_partitions,
                                     seed=seed, max_sentence_length=max(walk_length, 2))
        out = vectors.select(F.col("word").alias(C.USER), "vector")
        return out.localCheckpoint()  # materialised: the walks it came from are released below
    finally:
        walks.unpersist()


# --------------------------------------------------------------------------- profiles


def _vec(col: str):
    return array_to_vector(F.col(col))


def _arr(col):
    return vector_to_array(col, "float32")


def _unit(col: str):
    norm = F.sqrt(F.aggregate(F.col(col), F.lit(0.0), lambda acc, x: acc + x * x))
    return F.when(norm > 0, F.transform(F.col(col), lambda x: (x / norm).cast("float")))


def history_profiles(pairs: DataFrame, item_vectors: DataFrame) -> DataFrame:
    """(user_id, vector, n_items): each user's history profile e_u, the pair-weighted sum
    of their items' vectors, L2-normalised; users none of whose items has a vector get no row."""
    j = (pairs.select(C.USER, C.ITEM, F.col(C.WEIGHT).cast("double").alias("_w")).where(F.col("_w") > 0)
         .join(item_vectors.where(F.col("vector").isNotNull()).select(C.ITEM, "vector"), C.ITEM))
    s = j.groupBy(C.USER).agg(Summarizer.sum(_vec("vector"), F.col("_w")).alias("_s"),
                              F.count(F.lit(1)).cast("int").alias("n_items"))
    return (s.select(C.USER, _arr(F.col("_s")).alias("_v"), "n_items")
            .select(C.USER, _unit("_v").alias("vector"), "n_items").where(F.col("vector").isNotNull()))


def aggregate_profiles(own: DataFrame, graph: DataFrame, *, hops: int = 1, attention: float = 0.0) -> DataFrame:
    """(user_id, vector, n_neighbours): h_u after ``hops`` rounds of neighbour aggregation
    (module docstring) from ``own`` (user_id, vector) = e_u over ``graph`` (src, dst,
    weight); n_neighbours = u's out-neighbours with a vector in the last hop."""
    if hops < 1:
        raise ValueError(f"graph.hops: {hops} must be at least 1")
    e = own.select(C.USER, F.col("vector").cast("array<double>").alias("e")).where(F.col("e").isNotNull())
    edges = graph.select(F.col("src").alias(C.USER), F.col("dst").alias("_v"), F.col("weight").alias("_w"))
    if attention:
        ev = e.select(F.col(C.USER).alias("_v"), F.col("e").alias("_ev"))
        cos = F.aggregate(F.zip_with("e", "_ev", lambda a, b: a * b), F.lit(0.0), lambda acc, x: acc + x) / (
            F.sqrt(F.aggregate("e", F.lit(0.0), lambda acc, x: acc + x * x))
            * F.sqrt(F.aggregate("_ev", F.lit(0.0), lambda acc, x: acc + x * x)))
        edges = (edges.join(e, C.USER, "left").join(ev, "_v", "left")
                 .withColumn("_w", F.col("_w") * F.exp(F.lit(float(attention)) * F.coalesce(cos, F.lit(0.0))))
                 .select(C.USER, "_v", "_w"))
    h = e.select(C.USER, F.col("e").alias("h"))
    for _ in range(hops):
        nb = edges.join(h.select(F.col(C.USER).alias("_v"), F.col("h").alias("_h")), "_v")
        total = Window.partitionBy(C.USER)
        nb = nb.withColumn("_a", F.col("_w") / F.sum("_w").over(total))
        agg = nb.groupBy(C.USER).agg(Summarizer.sum(_vec("_h"), F.col("_a")).alias("_s"),
                                     F.count(F.lit(1)).cast("int").alias("n_neighbours"))
        agg = agg.select(C.USER, vector_to_array(F.col("_s"), "float64").alias("_s"), "n_neighbours")
        both = agg.join(e, C.USER, "full")
        h = both.select(
            C.USER,
            F.when(F.col("e").isNull(), F.col("_s"))
             .when(F.col("_s").isNull(), F.col("e"))
             .otherwise(F.zip_with("e", "_s", lambda a, b: a + b)).alias("h"),
            F.coalesce("n_neighbours", F.lit(0)).alias("n_neighbours"))
    return h.select(C.USER, F.col("h").cast("array<float>").alias("vector"), "n_neighbours")


# --------------------------------------------------------------------------- social candidates


def social_items(pairs: DataFrame, graph: DataFrame, *, limit: int = 500,
                 recent_days: float | None = None) -> DataFrame:
    """(user_id, item_id, n_people long, last timestamp): the items u's out-neighbours
    engaged with in ``pairs`` (user_id, item_id, ts), u's own items left out, the top
    ``limit`` per user by n_people then recency (then item id). ``recent_days``: only
    neighbours' pairs within that many days before the newest pair."""
    p = pairs.select(C.USER, C.ITEM, C.TS)
    if recent_days is not None:
        newest = p.agg(F.max(F.unix_micros(C.TS))).first()[0]  # one value (microseconds, time-zone free)
        if newest is not None:
            p = p.where(F.unix_micros(C.TS) >= F.lit(newest - int(float(recent_days) * 86400e6)))
    theirs = p.select(F.col(C.USER).alias("_v"), C.ITEM, C.TS)
    e = graph.select(F.col("src").alias(C.USER), F.col("dst").alias("_v"))
    s = (e.join(theirs, "_v")
         .groupBy(C.USER, C.ITEM).agg(F.countDistinct("_v").alias("n_people"), F.max(C.TS).alias("last")))
    s = s.join(pairs.select(C.USER, C.ITEM).distinct(), [C.USER, C.ITEM], "left_anti")
    w = Window.partitionBy(C.USER).orderBy(F.desc("n_people"), F.desc("last"), F.asc(C.ITEM))
    return s.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= limit).drop("_r")


def recommend_social(train: DataFrame, graph: DataFrame, k: int, candidates: DataFrame | None = None) -> DataFrame:
    """Model ``social``: each user's top-k unseen items by how many of the people they
    follow engaged with them in train, then by recency; an explanation per row."""
    s = social_items(train, graph, limit=k if candidates is None else 1 << 30)
    if candidates is not None:
        s = s.join(candidates.select(C.ITEM).distinct(), C.ITEM, "left_semi")
    w = Window.partitionBy(C.USER).orderBy(F.desc("n_people"), F.desc("last"), F.asc(C.ITEM))
    return (s.withColumn(C.RANK, F.row_number().over(w)).where(F.col(C.RANK) <= k)
            .select(C.USER, C.ITEM, C.RANK, F.col("n_people").cast("double").alias(C.SCORE),
                    F.create_map(F.lit("social"), F.col("n_people").cast("double")).alias("components"),
                    F.format_string("%d people you follow engaged with this", "n_people").alias("explanation")))
