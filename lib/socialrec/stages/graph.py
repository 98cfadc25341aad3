"""The graph stage: node embeddings of the social graph and the users' profiles."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import GraphConfig
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEM_EMBEDDINGS, NODE_EMBEDDINGS, USER_PROFILES, USERS
from socialrec.core.storage import Storage
from socialrec.data.split import positives, to_pairs
from socialrec.features import graph as G
from socialrec.stages.inputs import has_rows, node_vectors

log = logging.getLogger(__name__)


def graph_stage(spark: SparkSession, storage: Storage, *, dataset: str, cfg: GraphConfig,
                embed_model: str = "all-MiniLM-L6-v2") -> dict:
    """Node embeddings from random walks over the dataset's ``edges``, and user profiles
    (``history``: e_u from all interactions; ``social``: neighbour-aggregated h_u), both
    in the catalogue-centred space of ``embed_model``'s item embeddings; syncs the
    dataset's ``node_embeddings`` and ``user_profiles`` slices (see socialrec.features.graph)."""
    from socialrec.models.retrieval import catalogue, centre, vectors_frame

    edges = storage.read(spark, EDGES, dataset)
    scope = {C.DATASET: dataset}
    if not has_rows(edges):
        log.warning("graph: dataset %s has no edges; no node embeddings and no social profiles", dataset)
        return {"edges": 0, "nodes": 0, "users_without_vector": storage.read(spark, USERS, dataset).count(),
                "profiles": {}}
    now = F.current_timestamp()
    # Materialised: the walks, the degrees and the aggregation all read the graph.
    g = G.graph_edges(edges, directed=cfg.directed, weighted=cfg.weighted).localCheckpoint()
    nodes = node_vectors(g, cfg)
    degree = g.groupBy(F.col("src").alias(C.USER)).agg(F.count(F.lit(1)).cast("int").alias("degree"))
    storage.merge(nodes.join(degree, C.USER, "left").select(F.lit(dataset).alias(C.DATASET), "*",
                                                            now.alias("computed_at")), NODE_EMBEDDINGS, scope=scope)
    stored = storage.read(spark, NODE_EMBEDDINGS, dataset)
    out = {"edges": g.count(), "nodes": stored.count()}
    out["users_without_vector"] = (storage.read(spark, USERS, dataset).select(C.USER)
                                   .join(stored.select(C.USER), C.USER, "left_anti").count())
    emb = storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == embed_model)
    ids, m = catalogue(emb, C.ITEM)
    if not len(ids):
        log.warning("graph: no %s item embeddings for dataset %s; user_profiles not written", embed_model, dataset)
        out["profiles"] = {}
    else:
        items = vectors_frame(spark, ids, centre(m))
        own = G.history_profiles(to_pairs(positives(storage.read(spark, INTERACTIONS, dataset))), items).localCheckpoint()
        social = G.aggregate_profiles(own.select(C.USER, "vector"), g, hops=cfg.hops, attention=cfg.attention)
        rows = own.select(F.lit("history").alias("source"), C.USER, "vector", "n_items",
                          F.lit(None).cast("int").alias("n_neighbours"), F.lit(0).alias("hops")).unionByName(
            social.select(F.lit("social").alias("source"), C.USER, "vector", F.lit(None).cast("int").alias("n_items"),
                          "n_neighbours", F.lit(cfg.hops).alias("hops")))
        storage.merge(rows.select(F.lit(dataset).alias(C.DATASET), F.lit(embed_model).alias(C.MODEL), "*",
                                  now.alias("computed_at")), USER_PROFILES, scope=scope)
        out["profiles"] = {r["source"]: r["n"] for r in storage.read(spark, USER_PROFILES, dataset)
                           .groupBy("source").agg(F.count(F.lit(1)).alias("n")).collect()}
    log.info("graph: %d edges, %d node vectors, %d users without one; profiles %s", out["edges"], out["nodes"],
             out["users_without_vector"], out["profiles"])
    return out
