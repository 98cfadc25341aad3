"""What the stages read besides their own inputs: a split's parts, the id maps, stored
item vectors, the social graph a model trained on a part may see."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import GraphConfig
from socialrec.core.schemas import EDGES, ID_MAP, ITEM_EMBEDDINGS, ITEM_W2V, ITEMS, NODE_EMBEDDINGS, SPLITS, USERS
from socialrec.core.storage import Storage
from socialrec.data.split import newest_pair
from socialrec.features import graph as G

log = logging.getLogger(__name__)


def read_split(spark: SparkSession, storage: Storage, *, dataset: str, protocol: str, seed: int) -> DataFrame:
    df = storage.read(spark, SPLITS, dataset)
    return df.where((F.col(C.SPLIT) == protocol) & (F.col(C.SEED) == seed))


def train_test(spark, storage, dataset, protocol, seed) -> tuple[DataFrame, DataFrame]:
    s = read_split(spark, storage, dataset=dataset, protocol=protocol, seed=seed)
    train = s.where(F.col(C.PART) == "train")
    test = s.where(F.col(C.PART) == "test")
    if s.limit(1).count() == 0:
        raise RuntimeError(
            f"no split {protocol!r} (seed {seed}) for dataset {dataset!r} in {storage.location(SPLITS)}; "
            "run `socialrec split` (or `socialrec run`) first"
        )
    return train, test


def sync_id_maps(spark: SparkSession, storage: Storage, dataset: str) -> tuple[DataFrame, DataFrame]:
    """The dataset's user and item id maps (id -> int idx for ALS), synced in ``id_map``:
    known ids keep their number, new ids get the next ones, vanished ids lose their row."""
    from socialrec.models.als import new_id_map

    existing = storage.read(spark, ID_MAP, dataset)
    maps = []
    for kind, table, col in (("user", USERS, C.USER), ("item", ITEMS, C.ITEM)):
        ids = storage.read(spark, table, dataset).select(F.col(col).alias("id"))
        fresh = new_id_map(ids, existing.where(F.col("kind") == kind))
        storage.merge(fresh.withColumn(C.DATASET, F.lit(dataset)).withColumn("kind", F.lit(kind)), ID_MAP,
                      scope={C.DATASET: dataset, "kind": kind})
        maps.append(storage.read(spark, ID_MAP, dataset).where(F.col("kind") == kind).select("id", "idx"))
    return maps[0], maps[1]


def stored_vectors(spark, storage, *, dataset, kind, embed_model, w2v_engine, w2v_variant) -> DataFrame:
    """The dataset's stored item vectors of one kind: ``transformer`` (item_embeddings of
    ``embed_model``) or ``w2v`` (item_w2v of the engine and variant)."""
    if kind == "transformer":
        return storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == embed_model)
    return storage.read(spark, ITEM_W2V, dataset).where((F.col("engine") == w2v_engine)
                                                        & (F.col("variant") == w2v_variant))


def bridge_vectors(spark, storage, *, dataset, kinds, embed_model, w2v_engine, w2v_variant):
    """The item vectors the cold-start bridge maps from, one (item, vector) frame per
    configured kind that has stored vectors (None: none)."""
    out = []
    for kind in kinds:
        vecs = stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                              w2v_engine=w2v_engine, w2v_variant=w2v_variant)
        if vecs.where(F.col("vector").isNotNull()).limit(1).count() == 0:
            log.warning("als.bridge: no %s item vectors for dataset %s; the bridge goes without them", kind, dataset)
            continue
        out.append(vecs.select(C.ITEM, "vector"))
    if kinds and not out:
        log.warning("als.bridge: no item vectors at all for dataset %s; items without interactions stay unranked",
                    dataset)
    return out or None


def social_graph(spark, storage, *, dataset: str, train: DataFrame, cfg: GraphConfig, with_nodes: bool = True) -> tuple:
    """The social graph a model trained on ``train`` may see, and node vectors for it:
    (graph (src, dst, weight) or None, node vectors (user_id, vector) or None, info).

    The visible edges are ``socialrec.features.graph.train_edges``: independent edges not dated
    after the newest train pair (undated ones, such as Last.fm's friendships, are kept);
    edges derived from interactions (Stack Exchange's replies) rebuilt from the events
    whose pairs are all in ``train``, so no edge exists because of a test pair. When
    every edge is seen as stored, the stored ``node_embeddings`` (the graph stage) are
    used; otherwise node vectors are trained on the visible graph here and not stored."""
    edges = storage.read(spark, EDGES, dataset)
    # Materialised: counted here, then read by the graph (and the walks).
    visible = G.train_edges(edges, train, newest_pair(train)).localCheckpoint()
    n_all = edges.count()
    seen = visible.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("intact"), 1)).alias("intact")).first()
    info = {"graph.edges": str(n_all), "graph.visible_edges": str(seen["n"])}
    if seen["n"] > seen["intact"]:
        info["graph.thinned_edges"] = str(seen["n"] - seen["intact"])
    if seen["intact"] < n_all:
        log.info("social: %s: %d of %d edges hidden from this train part (dated after it, or derived from pairs "
                 "outside it), %d thinned to the events it holds", dataset, n_all - seen["n"], n_all,
                 seen["n"] - seen["intact"])
    if seen["n"] == 0:
        log.warning("social: dataset %s has no edge visible to the train period; the social signal is empty", dataset)
        return None, None, info
    graph = G.graph_edges(visible, directed=cfg.directed, weighted=cfg.weighted).localCheckpoint()
    if not with_nodes:
        return graph, None, info
    stored = storage.read(spark, NODE_EMBEDDINGS, dataset).select(C.USER, "vector")
    if seen["intact"] == n_all and has_rows(stored):
        nodes, info["graph.nodes"] = stored, "stored"
    else:
        nodes = node_vectors(graph, cfg)
        info["graph.nodes"] = "trained on the visible edges"
    return graph, nodes, info


def node_vectors(graph: DataFrame, cfg: GraphConfig) -> DataFrame:
    return G.node_embeddings(graph, walk_length=cfg.walk_length, walks_per_node=cfg.walks_per_node, p=cfg.p,
                             q=cfg.q, seed=cfg.seed, max_edges=cfg.max_edges, engine=cfg.engine,
                             vector_size=cfg.vector_size, window=cfg.window, max_iter=cfg.max_iter,
                             w2v_partitions=cfg.partitions)


def has_rows(df: DataFrame) -> bool:
    return df.limit(1).count() > 0
