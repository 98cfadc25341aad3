"""The stages and the whole pipeline: ingest -> split -> recommend -> evaluate.

Each stage reads its inputs from Delta, writes its outputs to Delta with MERGE (so a
rerun leaves the same rows) and returns a small dict of what it did for logs and the
summary. Stages take the values they need, not the whole config; ``run_stage`` maps the
config onto them and records the run in ``runs``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import (
    HYBRID_SIGNALS,
    RUN_ID,
    RUN_ID_RULE,
    SEGMENT_NAMES,
    ALSConfig,
    Config,
    ConfigError,
    ContentConfig,
    DatasetConfig,
    EmbedConfig,
    ExplainConfig,
    GraphConfig,
    HybridConfig,
    TokenizeConfig,
    Word2VecConfig,
)
from socialrec.core.runs import Timer, max_heap_mib, new_run_id, record_run
from socialrec.core.schemas import (
    EDGES,
    ID_MAP,
    INTERACTIONS,
    ITEM_EMBEDDINGS,
    ITEM_W2V,
    ITEMS,
    METRICS,
    NODE_EMBEDDINGS,
    RECOMMENDATIONS,
    REJECTS,
    RUNS,
    SPLITS,
    TOKENS,
    USER_PROFILES,
    USERS,
    WORD_VECTORS,
)
from socialrec.core.session import ensure_checkpoint_dir
from socialrec.core.storage import Storage
from socialrec.data.ingest import validate
from socialrec.data.readers import SourceError, read_failure
from socialrec.data.sources import load_raw
from socialrec.data.split import known_by, newest_pair, split, to_pairs
from socialrec.evaluation.metrics import ranking_metrics
from socialrec.features import graph as G
from socialrec.features.embed import EmbedSettings, content_hash, embedding_column, embedding_text
from socialrec.features.tokenize import tokenize
from socialrec.features.word2vec import item_vectors, train_word_vectors
from socialrec.models.content import recommend_by_content
from socialrec.models.popularity import recommend_popular

log = logging.getLogger(__name__)

FEATURE_STAGES = ("ingest", "tokenize", "word2vec", "embed", "graph")
STAGES = (*FEATURE_STAGES, "split", "recommend", "evaluate", "explain")


# --------------------------------------------------------------------------- stages


def ingest_stage(spark: SparkSession, storage: Storage, dataset: DatasetConfig) -> dict:
    """Load the dataset's raw rows, validate them, sync the canonical tables and rejects."""
    raw = load_raw(spark, dataset)
    out = validate(raw, dataset=dataset.name, event_weights=dataset.event_weights, edge_kinds=dataset.edge_kinds,
                   max_weight=dataset.max_weight)
    try:
        return _write_ingested(spark, storage, dataset.name, out)
    except Exception as exc:  # a source file Spark could not decode: name it, not a JVM trace
        failure = read_failure(exc)
        if failure is None:
            raise
        raise SourceError(f"dataset {dataset.name}: cannot read {failure}") from None
    finally:
        out.release()


def _write_ingested(spark: SparkSession, storage: Storage, dataset_name: str, out) -> dict:
    scope = {C.DATASET: dataset_name}
    # One row per (table, source file): read = accepted + rejected, for the run summary.
    files = [r.asDict() for r in out.stats.orderBy("table", "source").collect()]
    for f in files:
        log.info("ingest: %s from %s: %d read, %d accepted, %d rejected",
                 f["table"], f["source"], f["read"], f["accepted"], f["rejected"])
    # Nothing to recommend from: stop before any table is touched, naming the sources.
    for table in (USERS.name, ITEMS.name, INTERACTIONS.name):
        if not any(f["table"] == table and f["accepted"] for f in files):
            seen = [f"{f['source']}: {f['read']} read, {f['rejected']} rejected" for f in files if f["table"] == table]
            why = "; ".join(seen) if seen else "no rows read (empty sources)"
            top = out.rejects.where(F.col("table") == table).groupBy("reason").count() \
                .orderBy(F.desc("count"), "reason").limit(1).collect()
            hint = f"; most common reason: {top[0].reason}" if top else ""
            raise SourceError(f"dataset {dataset_name}: no {table} accepted ({why}{hint})")
    counts: dict[str, int] = {}
    for table, df in (
        (USERS, out.users),
        (ITEMS, out.items),
        (INTERACTIONS, out.interactions),
        (EDGES, out.edges),
        (REJECTS, out.rejects),
    ):
        storage.merge(df, table, scope=scope)
        counts[table.name] = storage.read(spark, table, dataset_name).count()
        log.info("ingest: %s has %d rows for dataset %s", table.name, counts[table.name], dataset_name)
    return {"tables": counts, "files": files}


def tokenize_stage(spark: SparkSession, storage: Storage, *, dataset: str, tok: TokenizeConfig) -> dict[str, int]:
    """Tokenise every item's title and text; sync the dataset's ``tokens`` slice."""
    items = storage.read(spark, ITEMS, dataset)
    toks = tokenize(items, engine=tok.engine, lowercase=tok.lowercase, strip_html=tok.strip_html,
                    strip_urls=tok.strip_urls, stopwords=tok.stopwords, min_token_length=tok.min_token_length)
    toks = toks.withColumn(C.DATASET, F.lit(dataset)).withColumn("engine", F.lit(tok.engine))
    storage.merge(toks, TOKENS, scope={C.DATASET: dataset})
    row = storage.read(spark, TOKENS, dataset).agg(
        F.count(F.lit(1)).alias("items"), F.sum("n_tokens").alias("tokens"),
        F.sum(F.when(F.col("n_tokens") == 0, 1).otherwise(0)).alias("empty")).first()
    out = {"items": row["items"], "tokens": int(row["tokens"] or 0), "empty": int(row["empty"] or 0)}
    log.info("tokenize: %d items, %d tokens; %d items have no token (empty, emoji or stop words only)",
             out["items"], out["tokens"], out["empty"])
    return out


def word2vec_stage(spark: SparkSession, storage: Storage, *, dataset: str, w2v: Word2VecConfig,
                   run_id: str | None = None) -> dict:
    """Train word vectors on the dataset's tokens; sync ``word_vectors`` and ``item_w2v``
    (variants mean and sif) for this engine."""
    toks = storage.read(spark, TOKENS, dataset)
    if toks.limit(1).count() == 0:
        raise RuntimeError(f"no tokens for dataset {dataset!r}; run `socialrec tokenize` (or `socialrec run`) first")
    words = train_word_vectors(
        toks, engine=w2v.engine, vector_size=w2v.vector_size, window=w2v.window, min_count=w2v.min_count,
        max_iter=w2v.max_iter, partitions=w2v.partitions, step_size=w2v.step_size,
        max_sentence_length=w2v.max_sentence_length, seed=w2v.seed, max_driver_tokens=w2v.max_driver_tokens)
    scope = {C.DATASET: dataset, "engine": w2v.engine}
    storage.merge(words.withColumn(C.DATASET, F.lit(dataset)).withColumn("engine", F.lit(w2v.engine)),
                  WORD_VECTORS, scope=scope)
    stored = storage.read(spark, WORD_VECTORS, dataset).where(F.col("engine") == w2v.engine)
    vecs = None
    for variant in ("mean", "sif"):
        v = item_vectors(toks, stored, variant=variant, sif_a=w2v.sif_a).withColumn("variant", F.lit(variant))
        vecs = v if vecs is None else vecs.unionByName(v)
    storage.merge(vecs.withColumn(C.DATASET, F.lit(dataset)).withColumn("engine", F.lit(w2v.engine)),
                  ITEM_W2V, scope=scope)
    out = {"words": stored.count(),
           "items": storage.read(spark, ITEM_W2V, dataset).where(
               (F.col("engine") == w2v.engine) & (F.col("variant") == "mean")).count()}
    log.info("word2vec: %d word vectors, %d item vectors (%s engine)", out["words"], out["items"], w2v.engine)
    if run_id is not None:
        out["quality"] = _word_quality_metrics(spark, storage, stored, run_id=run_id, dataset=dataset,
                                               engine=w2v.engine)
    return out


def _word_quality_metrics(spark, storage, word_vectors: DataFrame, *, run_id, dataset, engine) -> dict:
    """WordSim-353 and analogy scores of the word vectors, as rows of ``metrics``."""
    import numpy as np

    from socialrec.features.quality import word_quality

    rows = word_vectors.orderBy(F.desc("count")).limit(200_000).select("word", "vector").collect()  # bounded
    q = word_quality([r.word for r in rows], np.array([r.vector for r in rows], dtype=np.float32))
    recs = [
        (run_id, dataset, "word2vec", f"w2v-{engine}", "words", name, 0, float(value),
         int(q["analogy_questions"]) if name.startswith("analogy") else None, None, None, None)
        for name, value in q.items()
        if name != "analogy_questions" and not np.isnan(value)  # no coverage: no score, only the OOV row
    ]
    df = spark.createDataFrame(recs, METRICS.schema)
    storage.merge(df, METRICS)
    log.info("word2vec quality: %s", ", ".join(f"{k} {v:.3f}" for k, v in q.items()))
    return q


def embed_stage(spark: SparkSession, storage: Storage, *, dataset: str, emb: EmbedConfig) -> dict:
    """Embed item text with the transformer; sync the dataset's ``item_embeddings`` for
    this model, embedding only items whose text (hash) is new or changed."""
    from socialrec.features.encoder import default_model_path, inspect_model

    info = inspect_model(emb.model_path or default_model_path())  # a bad model folder fails here, before Spark work
    max_length = min(emb.max_length or info.max_seq_length, info.max_seq_length)
    docs = storage.read(spark, ITEMS, dataset).select(C.ITEM, embedding_text(emb.fields, html=emb.strip_html).alias("_text"))
    docs = docs.withColumn(C.CONTENT_HASH, content_hash(F.col("_text"), max_length))
    existing = storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == emb.model)
    kept = existing.join(docs.select(C.ITEM, C.CONTENT_HASH), [C.ITEM, C.CONTENT_HASH], "left_semi")
    todo = docs.join(existing.select(C.ITEM, C.CONTENT_HASH), [C.ITEM, C.CONTENT_HASH], "left_anti")
    n_todo = todo.count()
    # model_path None travels as None: executors resolve the packaged model in their own
    # environment, whose site-packages path need not be the driver's.
    settings = EmbedSettings(model_path=emb.model_path, device=emb.device, dtype=emb.dtype, batch_size=emb.batch_size,
                             max_length=max_length, threads=emb.threads)
    sc = spark.sparkContext
    embedded, blank = sc.accumulator(0), sc.accumulator(0)
    new = None
    seconds = 0.0
    if n_todo:
        parts = emb.partitions or sc.defaultParallelism
        new = (todo.repartition(parts, C.ITEM)  # spread the texts over every core; hash: the same rows per task
               .select(F.lit(dataset).alias(C.DATASET), C.ITEM, F.lit(emb.model).alias(C.MODEL),
                       F.lit(info.dim).alias("dim"),
                       embedding_column(F.col("_text"), settings, embedded=embedded, blank=blank).alias("vector"),
                       C.CONTENT_HASH, F.current_timestamp().alias("computed_at")))
        # Cached because the texts must be embedded once: the count below materialises
        # it, and the MERGE then reads it (Delta reads a MERGE source twice).
        new = new.persist()
        previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(emb.arrow_batch))
        try:
            start = time.perf_counter()
            new.count()
            seconds = time.perf_counter() - start
        finally:
            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    try:
        rows = kept if new is None else kept.unionByName(new)
        storage.merge(rows, ITEM_EMBEDDINGS, scope={C.DATASET: dataset, C.MODEL: emb.model})
    finally:
        if new is not None:
            new.unpersist()
    stored = storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == emb.model)
    total, nulls = stored.agg(F.count(F.lit(1)), F.sum(F.when(F.col("vector").isNull(), 1).otherwise(0))).first()
    out = {"items": total, "embedded": n_todo, "kept": total - n_todo, "no_text": int(nulls or 0),
           "seconds": round(seconds, 2), "texts_per_s": round(n_todo / seconds, 1) if seconds else None}
    if blank.value:
        log.warning("embed: %d of the %d items embedded now have no text (null or blank); their vector is null",
                    blank.value, n_todo)
    log.info("embed: %s: %d items, %d embedded now (%.0f texts/s), %d unchanged kept, %d without text",
             emb.model, total, n_todo, out["texts_per_s"] or 0, out["kept"], out["no_text"])
    return out


def graph_stage(spark: SparkSession, storage: Storage, *, dataset: str, cfg: GraphConfig,
                embed_model: str = "all-MiniLM-L6-v2") -> dict:
    """Node embeddings from random walks over the dataset's ``edges``, and user profiles
    (``history``: e_u from all interactions; ``social``: neighbour-aggregated h_u), both
    in the catalogue-centred space of ``embed_model``'s item embeddings; syncs the
    dataset's ``node_embeddings`` and ``user_profiles`` slices (see socialrec.features.graph)."""
    from socialrec.models.retrieval import catalogue, centre, vectors_frame

    edges = storage.read(spark, EDGES, dataset)
    scope = {C.DATASET: dataset}
    if not _has_rows(edges):
        log.warning("graph: dataset %s has no edges; no node embeddings and no social profiles", dataset)
        return {"edges": 0, "nodes": 0, "users_without_vector": storage.read(spark, USERS, dataset).count(),
                "profiles": {}}
    now = F.current_timestamp()
    # Materialised: the walks, the degrees and the aggregation all read the graph.
    g = G.graph_edges(edges, directed=cfg.directed, weighted=cfg.weighted).localCheckpoint()
    nodes = _node_vectors(g, cfg)
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
        own = G.history_profiles(to_pairs(storage.read(spark, INTERACTIONS, dataset)), items).localCheckpoint()
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


def split_stage(
    spark: SparkSession, storage: Storage, *, dataset: str, protocol: str, ratio: float, seed: int,
    cold_share: float = 0.2, cold_history: int = 2, cut: str | None = None,
) -> dict[str, int]:
    """Split the dataset's (user, item) pairs into train and test; sync the ``splits`` slice."""
    pairs = to_pairs(storage.read(spark, INTERACTIONS, dataset))
    train, test = split(pairs, protocol, ratio, seed, cold_share=cold_share, cold_history=cold_history, cut=cut)
    both = train.withColumn(C.PART, F.lit("train")).unionByName(test.withColumn(C.PART, F.lit("test")))
    both = both.withColumn(C.DATASET, F.lit(dataset)).withColumn(C.SPLIT, F.lit(protocol)).withColumn(
        C.SEED, F.lit(seed)
    )
    storage.merge(both, SPLITS, scope={C.DATASET: dataset, C.SPLIT: protocol, C.SEED: seed})
    parts = {
        r[C.PART]: r["n"]
        for r in read_split(spark, storage, dataset=dataset, protocol=protocol, seed=seed)
        .groupBy(C.PART)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    log.info("split: %s seed %d: %d train / %d test pairs", protocol, seed, parts.get("train", 0), parts.get("test", 0))
    return {"train": parts.get("train", 0), "test": parts.get("test", 0)}


def read_split(spark: SparkSession, storage: Storage, *, dataset: str, protocol: str, seed: int) -> DataFrame:
    df = storage.read(spark, SPLITS, dataset)
    return df.where((F.col(C.SPLIT) == protocol) & (F.col(C.SEED) == seed))


def _train_test(spark, storage, dataset, protocol, seed) -> tuple[DataFrame, DataFrame]:
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


def _als_params(cfg: ALSConfig, chosen: dict | None = None):
    from socialrec.models.als import ALSParams

    chosen = chosen or {}
    return ALSParams(rank=int(chosen.get("als.rank", cfg.rank)), reg=float(chosen.get("als.reg", cfg.reg)),
                     alpha=float(chosen.get("als.alpha", cfg.alpha)), max_iter=int(chosen.get("als.max_iter", cfg.max_iter)))


class ALSFits:
    """ALS factors fitted once per (training part, parameters) and shared by the models
    of one recommend stage: ``als`` and every hybrid variant fit the same parts with the
    same values (the hybrid's serving fit is ALS's final fit; its ranker's fit is the same
    for ``hybrid``, ``hybrid-social`` and ``hybrid-no-*``, and, when its validation split
    is the stratified one ALS tunes on, ALS's tuning fit of the chosen point). A part is
    named by what it is computed from (``stratified_part``). ``release`` unpersists them."""

    def __init__(self) -> None:
        self._fits: dict = {}
        self.fitted = 0  # ALS fits made (runs.params als.fits)

    def get(self, part_key: tuple, part: DataFrame, users_map, items_map, params, cfg: ALSConfig):
        from socialrec.models import als as A

        key = (part_key, params, cfg.confidence, cfg.log_epsilon, cfg.seed, cfg.blocks)
        if key not in self._fits:
            self.fitted += 1
            self._fits[key] = A.fit_factors(part, users_map, items_map, params, confidence=cfg.confidence,
                                            log_epsilon=cfg.log_epsilon, seed=cfg.seed, blocks=cfg.blocks)
        else:
            log.info("als: reusing the factors fitted on %s with %s", part_key[0], params.label())
        return self._fits[key]

    def keep_only(self, part_key: tuple, params) -> None:
        """Unpersist the fits of ``part_key`` other than those with ``params`` (the grid
        points tuning did not choose)."""
        for key in [key for key in self._fits if key[0] == part_key and key[1] != params]:
            for frame in self._fits.pop(key):
                frame.unpersist()

    def release(self) -> None:
        for uvec, ivec in self._fits.values():
            uvec.unpersist(), ivec.unpersist()
        self._fits.clear()


def stratified_part(val_ratio: float, seed: int) -> tuple:
    """The ``ALSFits`` key of ``split.stratified_split(train, val_ratio, seed)``'s fitting
    part: the same for ALS's tuning and the hybrid's ranker when their ratio and seed agree."""
    return ("stratified", float(val_ratio), int(seed))


def _als(spark, storage, *, dataset, train, cfg: ALSConfig, k, run_id, protocol, seed=None, depth=None, users=None,
         bridge_vecs=None, own=None, edges=None, candidates=None, fits: ALSFits):
    """ALS recommendations, tuned on a validation split of train when configured; the
    validation scores go to ``metrics`` (split ``<protocol>-validation``, one segment per
    grid point) and the chosen values are returned for ``runs.params``. Items without
    factors get them through the cold-start bridge from ``bridge_vecs``; ``users`` without
    history get theirs from their own posts (``own``) and the people they follow
    (``edges``); own posts are never recommended back."""
    from socialrec.models import als as A

    users_map, items_map = sync_id_maps(spark, storage, dataset)
    users_map, items_map = users_map.cache(), items_map.cache()  # joined in every fit below
    chosen = A.ALSParams(rank=cfg.rank, reg=cfg.reg, alpha=cfg.alpha, max_iter=cfg.max_iter)
    points = A.grid_points(cfg.grid, chosen) if cfg.tune else [chosen]
    if len(points) > 1:
        tuning_part = stratified_part(cfg.val_ratio, cfg.seed)
        scores = A.tune(train, users_map, items_map, points, k=k, val_ratio=cfg.val_ratio, seed=cfg.seed,
                        confidence=cfg.confidence, log_epsilon=cfg.log_epsilon,
                        factors=lambda part, p: fits.get(tuning_part, part, users_map, items_map, p, cfg))
        chosen = scores[0][0]
        fits.keep_only(tuning_part, chosen)  # the hybrid's ranker may fit the same part with it
        split_name = f"{protocol}-validation"
        rows = [(run_id, dataset, split_name, "als", p.label(), "ndcg", k, v, None, seed, None, None)
                for p, v in scores]
        scope = {C.RUN_ID: run_id, C.SPLIT: split_name, C.MODEL: "als"} | ({C.SEED: seed} if seed is not None else {})
        storage.merge(spark.createDataFrame(rows, METRICS.schema), METRICS, scope=scope)
        log.info("als: chose %s (validation nDCG@%d %.4f)", chosen.label(), k, scores[0][1])
    uvec, ivec = fits.get(("train",), train, users_map, items_map, chosen, cfg)
    release = [users_map, items_map]
    params = {"als.rank": str(chosen.rank), "als.reg": f"{chosen.reg:g}", "als.alpha": f"{chosen.alpha:g}",
              "als.max_iter": str(chosen.max_iter), "als.tuned": str(len(points) > 1).lower()}
    items_all, users_all = ivec, uvec
    if bridge_vecs is not None:
        items_all, stats = A.bridge(ivec, bridge_vecs, reg=cfg.bridge_reg)
        # Cached: the bridged factors are read by the cold users' fold-in and the retrieval.
        items_all = items_all.cache()
        release.append(items_all)
        params["als.bridged_items"] = str(stats["bridged"])
    if users is not None and (own is not None or edges is not None):
        cold = A.cold_user_vectors(users, uvec, items_all, params=chosen, own_items=own, edges=edges).cache()
        release.append(cold)
        n_cold = cold.count()
        params["als.cold_users"] = str(n_cold)
        if n_cold:
            users_all = uvec.unionByName(cold)
            log.info("als: %d users without history served from their own posts or the people they follow", n_cold)
    seen = train.select(C.USER, C.ITEM) if own is None else train.select(C.USER, C.ITEM).unionByName(own)
    recs = A.recommend_from_factors(users_all, items_all, seen, depth or k, candidates=candidates)
    return recs, params, release


def _stored_vectors(spark, storage, *, dataset, kind, embed_model, w2v_engine, w2v_variant) -> DataFrame:
    """The dataset's stored item vectors of one kind: ``transformer`` (item_embeddings of
    ``embed_model``) or ``w2v`` (item_w2v of the engine and variant)."""
    if kind == "transformer":
        return storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == embed_model)
    return storage.read(spark, ITEM_W2V, dataset).where((F.col("engine") == w2v_engine)
                                                       & (F.col("variant") == w2v_variant))


def _bridge_vectors(spark, storage, *, dataset, kinds, embed_model, w2v_engine, w2v_variant):
    """The item vectors the cold-start bridge maps from, one (item, vector) frame per
    configured kind that has stored vectors (None: none)."""
    out = []
    for kind in kinds:
        vecs = _stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                               w2v_engine=w2v_engine, w2v_variant=w2v_variant)
        if vecs.limit(1).count() == 0:
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
    if seen["intact"] == n_all and _has_rows(stored):
        nodes, info["graph.nodes"] = stored, "stored"
    else:
        nodes = _node_vectors(graph, cfg)
        info["graph.nodes"] = "trained on the visible edges"
    return graph, nodes, info


def _node_vectors(graph: DataFrame, cfg: GraphConfig) -> DataFrame:
    return G.node_embeddings(graph, walk_length=cfg.walk_length, walks_per_node=cfg.walks_per_node, p=cfg.p,
                             q=cfg.q, seed=cfg.seed, max_edges=cfg.max_edges, engine=cfg.engine,
                             vector_size=cfg.vector_size, window=cfg.window, max_iter=cfg.max_iter,
                             w2v_partitions=cfg.partitions)


def _hybrid(spark, storage, *, dataset, train, cfg: HybridConfig, als_cfg: ALSConfig, als_params, k,
            w2v_engine, w2v_variant, embed_model, fits: ALSFits, depth=None, drop=frozenset(), candidates=None,
            cold_share=None, graph_cfg: GraphConfig | None = None, protocol: str | None = None, cold_history: int = 2):
    """Hybrid recommendations: ranker trained on a validation split of train, then applied
    to candidates from components refitted on all of train (see socialrec.models.hybrid).

    ``k``: the cut-off the blend is tuned for; ``depth``: the list length written.
    ``drop``: signals left out everywhere (candidates, features, the bridge): the
    ablation models ``hybrid-no-<signal>``. ``candidates``/``cold_share``: the cold-start
    protocol: only these items are ranked, and the ranker's validation split moves a
    ``cold_share`` of train's items out whole, like the test split, so that the ranker
    learns how far to trust the bridged ALS factors on items ALS never saw. Under
    ``protocol`` time_cut the validation split is a time cut of train as well, under
    cold_users a cold-users split of train (other users, same ``cold_history``). Unless
    ``social`` is dropped, the social signal (``social_graph``, ``hybrid.social_inputs``)
    adds friends' items, node-embedding and neighbour-profile candidates and features."""
    from socialrec.data.split import cold_items_split, cold_users_split, stratified_split, time_cut_split
    from socialrec.models import als as A
    from socialrec.models import hybrid as H

    items = storage.read(spark, ITEMS, dataset)
    content = {}
    for kind in ("transformer", "w2v"):
        vecs = _stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                               w2v_engine=w2v_engine, w2v_variant=w2v_variant)
        if kind not in drop and vecs.limit(1).count():
            content[kind] = vecs
    bridge_vecs = None
    if "als" not in drop:
        bridge_vecs = _bridge_vectors(spark, storage, dataset=dataset,
                                      kinds=[b for b in als_cfg.bridge if b not in drop], embed_model=embed_model,
                                      w2v_engine=w2v_engine, w2v_variant=w2v_variant)
    users_map, items_map = sync_id_maps(spark, storage, dataset)
    if candidates is None and protocol == "time_cut":
        # Validation after training in time too: the ranker then learns how much signals
        # (and the edges visible to them) tell about the future, as the test asks.
        fit_part, val = time_cut_split(train, cfg.val_ratio)
        val_items, n_per_source = None, cfg.candidates
    elif candidates is None and protocol == "cold_users":
        # Validated on users made cold the same way (seed + 1: other users), so the blend
        # is tuned for users with `cold_history` pairs, the users the test holds.
        fit_part, val = cold_users_split(train, cold_share, cfg.seed + 1, history=cold_history)
        val_items, n_per_source = None, cfg.candidates
    elif candidates is None:
        fit_part, val = stratified_split(train, cfg.val_ratio, cfg.seed)
        val_items, n_per_source = None, cfg.candidates
        part_key = stratified_part(cfg.val_ratio, cfg.seed)
    else:
        # seed + 1: the test draw's own seed would find no cold item left in train.
        fit_part, val = cold_items_split(train, cold_share, cfg.seed + 1)
        val_items = [r[0] for r in val.select(C.ITEM).distinct().collect()]  # bounded by the catalogue
        n_per_source = max(cfg.candidates, depth or k)  # the whole list AUC reads, from every source
    if candidates is not None or protocol in ("time_cut", "cold_users"):
        # The ranker's fitting part, as a key for the shared ALS fits: what the split above depends on.
        part_key = ("ranker", protocol if candidates is None else "cold_items", cfg.val_ratio, cfg.seed, cold_share,
                    cold_history)
    val = val.cache()  # the ranker's truth, read when its lists are packed
    release = []
    models = {}
    info: dict[str, str] = {}
    graph_cfg = graph_cfg or GraphConfig()
    for name, part, truth, allowed in (("ranker", fit_part, val, val_items), ("serve", train, None, candidates)):
        graph = nodes = None
        if "social" not in drop:  # the edges visible to this part (see social_graph)
            graph, nodes, seen_info = social_graph(spark, storage, dataset=dataset, train=part, cfg=graph_cfg)
            info.update({(k if name == "serve" else f"{k}.ranker"): v for k, v in seen_info.items()})
        uvec = ivec = None
        if "als" not in drop:
            uvec, ivec = fits.get(part_key if name == "ranker" else ("train",), part, users_map, items_map,
                                  als_params, als_cfg)
            if bridge_vecs is not None:
                ivec, _ = A.bridge(ivec, bridge_vecs, reg=als_cfg.bridge_reg)
        cat = H.build_catalogue(part, items, als_items=ivec, content=content, allowed=allowed,
                                popular="popular" not in drop, trend_hours=cfg.trend_hours)
        social = None
        if graph is not None:
            social = H.social_inputs(part, graph, cat, nodes=nodes, hops=graph_cfg.hops,
                                     attention=graph_cfg.attention, limit=graph_cfg.social_candidates,
                                     recent_days=graph_cfg.recent_days)
        cands = H.candidates(part, cat, als_users=uvec, n_per_source=n_per_source, truth=truth, social=social)
        # Cached: the logistic rankers read their training rows many times (LR iterations);
        # the serving candidates are read once by the ranking, and must not be regenerated
        # per action. The listwise ranker reads its rows once, to pack them per user.
        if name == "serve" or cfg.objective != "listwise":
            cands = cands.cache()
            release.append(cands)
        models[name] = cands
    release.append(val)
    blend = tuple(f for f in cfg.blend if H.SIGNAL_OF.get(f) not in drop)
    if cfg.trend_hours and "trending_z" not in blend:  # the trending signal is searched when it is on
        blend += ("trending_z",)
    if cfg.objective == "listwise":
        if not blend:
            raise ValueError(f"hybrid.blend: every feature of {list(cfg.blend)} belongs to a left-out signal "
                             f"({', '.join(sorted(drop))})")
        start = "als_z" if "als_z" in blend else blend[0]
        coef, _ = H.coordinate_ascent(models["ranker"], val, k=k, features=blend, start=start, min_gain=cfg.min_gain)
    else:
        coef = H.train_ranker(models["ranker"], objective=cfg.objective, reg=cfg.reg, seed=cfg.seed)
    log.info("hybrid ranker weights: %s", ", ".join(f"{f} {v:+.3f}" for f, v in coef.items() if v))
    recs = H.rank_with(coef, models["serve"], depth or k)
    return recs, release, {**info, **{f"weight.{f}": f"{v:.4g}" for f, v in coef.items() if v}}


@dataclasses.dataclass
class RecommendContext:
    """What a model's builder reads in the recommend stage: the split (``train``,
    ``test``, ``users``: everyone in either), ``newest`` (the newest train pair, epoch
    microseconds), the users' own posts known by then (``own``; None when there are
    none), the cold-start protocol's item list (``cold_items``; None otherwise), the
    list length ``depth`` and the cut-off ``k`` tuning optimises, the content models'
    arguments (``by_content``), the sections of the configuration, and the ALS fits the
    models share. ``chosen_als``: the values ALS was tuned to in this stage, which the
    hybrids reuse (set by the ``als`` builder)."""

    spark: SparkSession
    storage: Storage
    run_id: str
    dataset: str
    protocol: str
    seed: int
    k: int
    depth: int
    train: DataFrame
    test: DataFrame
    users: DataFrame
    newest: int | None
    own: DataFrame | None
    cold_items: list[str] | None
    by_content: dict
    content: ContentConfig
    als: ALSConfig
    hybrid: HybridConfig
    graph: GraphConfig | None
    embed_model: str
    w2v_engine: str
    cold_share: float
    cold_history: int
    fits: ALSFits
    chosen_als: object = None


# A builder: (context, model name) -> (recommendations (user, item, rank, score,
# explanation, components map), values for runs.params, frames to unpersist once the
# recommendations are written).
Built = tuple[DataFrame, dict, list]


def _build_popularity(ctx: RecommendContext, model: str) -> Built:
    cand_df = None if ctx.cold_items is None else ctx.test.select(C.ITEM)
    recs = recommend_popular(ctx.train, ctx.users, ctx.depth, candidates=cand_df, tie_seed=ctx.seed)
    return recs.withColumn("components", F.create_map(F.lit("popularity"), F.col(C.SCORE))), {}, []


def _build_content(ctx: RecommendContext, model: str) -> Built:
    kind = "w2v" if model == "w2v_content" else "transformer"
    vecs = _stored_vectors(ctx.spark, ctx.storage, dataset=ctx.dataset, kind=kind, embed_model=ctx.embed_model,
                           w2v_engine=ctx.w2v_engine, w2v_variant=ctx.content.variant)
    if vecs.limit(1).count() == 0:
        if kind == "w2v":
            raise RuntimeError(f"w2v_content: no {ctx.content.variant} item vectors from the {ctx.w2v_engine} engine "
                               f"for dataset {ctx.dataset!r}; run `socialrec word2vec` first")
        raise RuntimeError(f"transformer_content: no {ctx.embed_model} embeddings for dataset {ctx.dataset!r}; "
                           "run `socialrec embed` first")
    recs = recommend_by_content(ctx.train, vecs, **ctx.by_content)
    signal = "w2v_cosine" if kind == "w2v" else "transformer_cosine"
    return recs.withColumn("components", F.create_map(F.lit(signal), F.col(C.SCORE))), {}, []


def _build_als(ctx: RecommendContext, model: str) -> Built:
    bridge_vecs = _bridge_vectors(ctx.spark, ctx.storage, dataset=ctx.dataset, kinds=ctx.als.bridge,
                                  embed_model=ctx.embed_model, w2v_engine=ctx.w2v_engine,
                                  w2v_variant=ctx.content.variant)
    edges = G.train_edges(ctx.storage.read(ctx.spark, EDGES, ctx.dataset), ctx.train, ctx.newest)
    recs, params, release = _als(ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=ctx.als, k=ctx.k,
                                 depth=ctx.depth, run_id=ctx.run_id, protocol=ctx.protocol, seed=ctx.seed,
                                 users=ctx.users, bridge_vecs=bridge_vecs, own=ctx.own,
                                 edges=edges if edges.limit(1).count() else None, candidates=ctx.cold_items,
                                 fits=ctx.fits)
    ctx.chosen_als = _als_params(ctx.als, params)
    return recs.withColumn("components", F.create_map(F.lit("als"), F.col(C.SCORE))), params, release


def _build_social(ctx: RecommendContext, model: str) -> Built:
    from socialrec.features.graph import recommend_social

    g, _, _ = social_graph(ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=ctx.graph or GraphConfig(),
                           with_nodes=False)
    if g is None:
        raise RuntimeError(f"social: dataset {ctx.dataset!r} has no edges visible to the train period")
    cands = None if ctx.cold_items is None else ctx.test.select(C.ITEM)
    return recommend_social(ctx.train, g, ctx.depth, candidates=cands), {}, []


def _build_hybrid(ctx: RecommendContext, model: str) -> Built:
    """``hybrid`` and ``hybrid-no-<signal>`` leave the social signal out (and the named
    one); ``hybrid-social`` has every signal."""
    drop = frozenset() if model == "hybrid-social" else frozenset(
        ["social"] + ([model[len("hybrid-no-"):]] if model.startswith("hybrid-no-") else []))
    recs, release, params = _hybrid(ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=ctx.hybrid,
                                    als_cfg=ctx.als, als_params=ctx.chosen_als or _als_params(ctx.als), k=ctx.k,
                                    depth=ctx.depth, w2v_engine=ctx.w2v_engine, w2v_variant=ctx.content.variant,
                                    embed_model=ctx.embed_model, drop=drop, fits=ctx.fits, candidates=ctx.cold_items,
                                    cold_share=ctx.cold_share, graph_cfg=ctx.graph, protocol=ctx.protocol,
                                    cold_history=ctx.cold_history)
    return recs, {f"{model}.{key}": v for key, v in params.items()}, release


# The models `evaluation.models` may name (config.MODELS lists the same names; a test
# holds them equal): adding a model is a builder and its entry here.
MODEL_BUILDERS: dict = {
    "popularity": _build_popularity,
    "w2v_content": _build_content,
    "transformer_content": _build_content,
    "als": _build_als,
    "social": _build_social,
    "hybrid": _build_hybrid,
    "hybrid-social": _build_hybrid,
    **{f"hybrid-no-{signal}": _build_hybrid for signal in HYBRID_SIGNALS},
}


def recommend_stage(
    spark: SparkSession,
    storage: Storage,
    *,
    run_id: str,
    dataset: str,
    protocol: str,
    seed: int,
    models: list[str],
    k: int,
    w2v_engine: str = "spark",
    content: ContentConfig | None = None,
    embed_model: str = "all-MiniLM-L6-v2",
    als: ALSConfig | None = None,
    hybrid: HybridConfig | None = None,
    graph: GraphConfig | None = None,
    chosen_params: dict | None = None,
    cold_share: float = 0.2,
    cold_history: int = 2,
    auc_depth: int = 1000,
    depth: int | None = None,
) -> dict[str, int]:
    """Top-``depth`` per user for each model (default k), trained on the split's train
    part; ``k`` is the cut-off that tuning and the hybrid's ranker optimise.

    Under ``cold_items`` every model ranks only the cold items (those of the test part),
    ``min(auc_depth, cold items)`` of them per user (at least ``depth``), so that AUC sees
    the whole list."""
    train, test = _train_test(spark, storage, dataset, protocol, seed)
    users = train.select(C.USER).unionByName(test.select(C.USER)).distinct()
    content = content or ContentConfig()
    als_cfg = als or ALSConfig()
    newest = newest_pair(train)
    # A user's own posts and edges inform their profile only if they existed by the end
    # of train (a post or reply tie dated later is future information).
    own = (known_by(storage.read(spark, ITEMS, dataset), C.CREATED_AT, newest).where(F.col(C.AUTHOR).isNotNull())
           .select(F.col(C.AUTHOR).alias(C.USER), C.ITEM))
    has_own = own.limit(1).count() > 0
    depth = max(k, depth or k)  # list length written; k stays the cut-off that tuning and the ranker optimise
    by_content = dict(k=depth, half_life_days=content.half_life_days,
                      own_items=own if content.own_posts_weight > 0 else None, own_weight=content.own_posts_weight,
                      center=content.center)
    cold_items = None
    if protocol == "cold_items":
        cold_items = sorted(r[0] for r in test.select(C.ITEM).distinct().collect())  # bounded by the catalogue
        depth = max(depth, min(auc_depth, len(cold_items)))
        by_content.update(k=depth, candidates=cold_items)
        log.info("recommend: cold_items: ranking %d cold items, %d per user", len(cold_items), depth)
    counts = {}
    ctx = RecommendContext(
        spark=spark, storage=storage, run_id=run_id, dataset=dataset, protocol=protocol, seed=seed, k=k, depth=depth,
        train=train, test=test, users=users, newest=newest, own=own if has_own else None, cold_items=cold_items,
        by_content=by_content, content=content, als=als_cfg, hybrid=hybrid or HybridConfig(), graph=graph,
        embed_model=embed_model, w2v_engine=w2v_engine, cold_share=cold_share, cold_history=cold_history,
        fits=ALSFits())  # each part fitted once per parameters, shared by als and the hybrids
    fits = ctx.fits
    try:
        for model in models:
            build = MODEL_BUILDERS.get(model)
            if build is None:  # validated by config; a new model is one entry in MODEL_BUILDERS
                raise ValueError(f"evaluation.models: unknown model {model!r}")
            recs, params, release = build(ctx, model)
            if chosen_params is not None:
                chosen_params.update(params)
            recs = (
                recs.withColumn(C.RUN_ID, F.lit(run_id))
                .withColumn(C.DATASET, F.lit(dataset))
                .withColumn(C.SPLIT, F.lit(protocol))
                .withColumn(C.MODEL, F.lit(model))
            )
            # The same rows again (a rerun) keep the explain stage's explanation and reasons.
            storage.merge(recs, RECOMMENDATIONS, scope={C.RUN_ID: run_id, C.MODEL: model},
                          owned_elsewhere=("explanation", "explained_by", "reasons"))
            for df in release:
                df.unpersist()
            counts[model] = (
                storage.read(spark, RECOMMENDATIONS)
                .where((F.col(C.RUN_ID) == run_id) & (F.col(C.MODEL) == model))
                .count()
            )
            log.info("recommend: %s wrote %d recommendations", model, counts[model])
    finally:
        fits.release()
    if chosen_params is not None and fits.fitted:
        chosen_params["als.fits"] = str(fits.fitted)  # tuning's grid, the final fit, the ranker's (if not shared)
    return counts


def explain_stage(spark: SparkSession, storage: Storage, *, run_id: str, dataset: str, protocol: str, seed: int,
                  cfg: ExplainConfig, graph: GraphConfig | None = None, embed_model: str = "all-MiniLM-L6-v2",
                  w2v_engine: str = "spark", w2v_variant: str = "mean") -> dict:
    """Reasons and an explanation for every ``recommendations`` row of the run (all its
    models; ``socialrec.explain``): the template, or for each user's top ``cfg.top`` a
    sentence generated by ``cfg.model_path`` that passed the guardrails. The reasons come
    from the split (``protocol``, ``seed``) the recommendations were trained on."""
    from socialrec import explain as X

    if cfg.model_path:
        from socialrec.explain.generator import inspect_causal_model

        inspect_causal_model(cfg.model_path)  # a bad model folder fails here, before Spark work
    recs = storage.read(spark, RECOMMENDATIONS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == protocol))
    if recs.limit(1).count() == 0:
        raise RuntimeError(f"explain: run {run_id!r} has no {protocol} recommendations; run `socialrec recommend` "
                           "(or `socialrec run`) with this run id first")
    train, _ = _train_test(spark, storage, dataset, protocol, seed)
    g, _, _ = social_graph(spark, storage, dataset=dataset, train=train, cfg=graph or GraphConfig(), with_nodes=False)
    vectors = None
    for kind in ("transformer", "w2v"):  # the space "similar" is measured in: the transformer's, else Word2Vec's
        v = _stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                            w2v_engine=w2v_engine, w2v_variant=w2v_variant)
        if _has_rows(v):
            vectors = v.select(C.ITEM, "vector")
            break
    out, generated = X.explain(recs, train=train, items=storage.read(spark, ITEMS, dataset),
                               users=storage.read(spark, USERS, dataset), graph=g, vectors=vectors, cfg=cfg,
                               partitions=cfg.partitions)
    try:
        n_gen, seconds = X.timed(generated)
        storage.merge(out, RECOMMENDATIONS)
    finally:
        if generated is not None:
            generated.unpersist()
    stored = storage.read(spark, RECOMMENDATIONS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == protocol))
    by = {r.explained_by: r["count"] for r in stored.groupBy("explained_by").count().collect()}  # a few values
    result = X.ExplainResult(rows=sum(by.values()), generated=n_gen, by=by, seconds=seconds).as_dict()
    result["examples"] = X.examples(stored)
    log.info("explain: %d rows explained (%s)%s", result["rows"], ", ".join(f"{k} {v}" for k, v in sorted(by.items())),
             f"; {n_gen} generated at {result['explanations_per_s']}/s" if n_gen else "")
    return result


def evaluation_segments(spark: SparkSession, storage: Storage, *, dataset: str, train: DataFrame, test: DataFrame,
                        segments: list[str], light_share: float = 0.25) -> tuple[DataFrame, dict[str, str]]:
    """The test pairs of each segment, rows (segment, user, item), and what defined them:

    * ``all`` — every test pair;
    * ``cold_items`` — test pairs of items without a train pair;
    * ``light_users`` — test pairs of the ``light_share`` of test users with the fewest
      train pairs (every user at or below that quantile of the train-pair counts);
    * ``with_friends`` — test pairs of users with an outgoing edge (follow, friend, ...)
      that the models trained on ``train`` see;
    * ``light_with_friends`` — both: few train pairs but some friends, where the social
      signal has the most to add."""
    parts = []

    def seg(name: str, df: DataFrame) -> DataFrame:
        return df.select(F.lit(name).alias(C.SEGMENT), C.USER, C.ITEM)

    info: dict[str, str] = {}
    found: dict[str, DataFrame | None] = {}

    def light() -> DataFrame | None:
        if "light" not in found:
            counts = (test.select(C.USER).distinct()
                      .join(train.groupBy(C.USER).agg(F.count(F.lit(1)).alias("_n")), C.USER, "left")
                      .fillna(0, ["_n"]))
            cut = counts.agg(F.percentile_approx("_n", light_share, 100_000)).first()[0]
            found["light"] = None if cut is None else counts.where(F.col("_n") <= cut).select(C.USER)
            if cut is not None:
                info["light_users.max_train_pairs"] = str(cut)
        return found["light"]

    def social() -> DataFrame:  # the edges the models saw (see social_graph)
        edges = G.train_edges(storage.read(spark, EDGES, dataset), train, newest_pair(train))
        return edges.select(F.col(C.SRC).alias(C.USER)).distinct()

    for name in segments:
        if name == "all":
            parts.append(seg(name, test))
        elif name == "cold_items":
            parts.append(seg(name, test.join(train.select(C.ITEM).distinct(), C.ITEM, "left_anti")))
        elif name == "light_users":
            if light() is None:  # no test users
                continue
            parts.append(seg(name, test.join(light(), C.USER, "left_semi")))
        elif name == "with_friends":
            parts.append(seg(name, test.join(social(), C.USER, "left_semi")))
        elif name == "light_with_friends":
            if light() is None:
                continue
            parts.append(seg(name, test.join(light(), C.USER, "left_semi").join(social(), C.USER, "left_semi")))
        else:
            raise ValueError(f"evaluation.segments: unknown segment {name!r}; known: {', '.join(SEGMENT_NAMES)}")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out, info


def evaluate_stage(
    spark: SparkSession,
    storage: Storage,
    *,
    run_id: str,
    dataset: str,
    protocol: str,
    seed: int,
    models: list[str],
    ks: list[int],
    metrics: list[str],
    segments: list[str] = ("all",),
    light_share: float = 0.25,
    embed_model: str = "all-MiniLM-L6-v2",
    w2v_engine: str = "spark",
) -> tuple[DataFrame, dict[str, str]]:
    """Metrics of each model's recommendations against the split's test part, per
    segment (``evaluation_segments``): the ranking metrics, AUC under ``cold_items`` (over
    the cold items every list ranks), and catalogue coverage, novelty and intra-list
    diversity (transformer item embeddings, else Word2Vec item vectors). Each model's rows
    are synced as one slice of ``metrics`` (run, model, protocol, seed)."""
    from socialrec.evaluation.metrics import BEYOND, beyond_accuracy

    train, test = _train_test(spark, storage, dataset, protocol, seed)
    recs_all = storage.read(spark, RECOMMENDATIONS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == protocol))
    accuracy = [m for m in metrics if m not in BEYOND]
    beyond = [m for m in metrics if m in BEYOND]
    n_candidates = None
    if protocol == "cold_items":
        n_candidates = test.select(C.ITEM).distinct().count()
        accuracy = [*[m for m in accuracy if m != "auc"], "auc"]
    truth, info = evaluation_segments(spark, storage, dataset=dataset, train=train, test=test,
                                      segments=list(segments), light_share=light_share)
    # Cached: every model's metrics read the segments' truth (and its users) again.
    truth = truth.cache()
    release = [truth]
    seg_users = truth.select(C.SEGMENT, C.USER).distinct()
    extra = {}
    if beyond:
        n_catalogue = n_candidates or storage.read(spark, ITEMS, dataset).count()
        item_users = train.groupBy(C.ITEM).agg(F.count_distinct(C.USER).alias("n")).cache()  # read per model
        release.append(item_users)
        vectors = None
        if "diversity" in beyond:
            for kind in ("transformer", "w2v"):
                v = _stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                                    w2v_engine=w2v_engine, w2v_variant="mean").select(C.ITEM, "vector")
                if v.where(F.col("vector").isNotNull()).limit(1).count():
                    vectors = v.where(F.col("vector").isNotNull()).cache()  # joined once per model
                    release.append(vectors)
                    info["diversity.vectors"] = embed_model if kind == "transformer" else f"w2v-{w2v_engine}-mean"
                    break
            else:
                log.warning("evaluate: no item vectors for dataset %s; diversity is not computed", dataset)
        extra = dict(n_catalogue=n_catalogue, item_train_users=item_users,
                     n_train_users=train.select(C.USER).distinct().count(), item_vectors=vectors)
        info["coverage.catalogue"] = str(n_catalogue)
    try:
        for model in models:  # each model's metrics computed once and synced as its own slice
            recs = recs_all.where(F.col(C.MODEL) == model)
            m = ranking_metrics(recs, truth, k=ks, metrics=accuracy, n_candidates=n_candidates, by=[C.SEGMENT])
            if beyond:
                m = m.unionByName(beyond_accuracy(recs, k=ks, metrics=beyond, users=seg_users, by=[C.SEGMENT],
                                                  **extra))
            m = (
                m.withColumn(C.MODEL, F.lit(model))
                .withColumn(C.RUN_ID, F.lit(run_id))
                .withColumn(C.DATASET, F.lit(dataset))
                .withColumn(C.SPLIT, F.lit(protocol))
                .withColumn(C.SEED, F.lit(seed))
            )
            # Collected (segments x metrics x k rows): Delta's MERGE scans its source twice,
            # and this source is the whole metric computation.
            m = spark.createDataFrame(m.collect(), m.schema)
            storage.merge(m, METRICS, scope={C.RUN_ID: run_id, C.MODEL: model, C.SPLIT: protocol, C.SEED: seed})
    finally:
        for df in release:
            df.unpersist()
    out = storage.read(spark, METRICS).where((F.col(C.RUN_ID) == run_id) & F.col(C.MODEL).isin(*models)
                                             & (F.col(C.SPLIT) == protocol) & (F.col(C.SEED) == seed))
    return out, info


def summarise_seeds(spark: SparkSession, storage: Storage, *, run_id: str, protocol: str, seeds: list[int],
                    models: list[str]) -> None:
    """Summary rows over the seeds of a run (seed null): the mean as ``value``, the
    sample standard deviation as ``std``, ``n_seeds``, and the mean number of users."""
    rows = storage.read(spark, METRICS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == protocol)
                                              & F.col(C.SEED).isin(*seeds) & F.col(C.MODEL).isin(*models))
    summary = rows.groupBy(C.DATASET, C.MODEL, C.SEGMENT, C.METRIC, C.K).agg(
        F.avg(C.VALUE).alias(C.VALUE), F.stddev_samp(C.VALUE).alias("std"),
        F.count(F.lit(1)).cast("int").alias("n_seeds"), F.round(F.avg("n_users")).cast("long").alias("n_users"))
    summary = summary.select("*", F.lit(run_id).alias(C.RUN_ID), F.lit(protocol).alias(C.SPLIT),
                             F.lit(None).cast("int").alias(C.SEED))
    storage.merge(summary, METRICS)


# --------------------------------------------------------------------------- runner


def format_summary(rows: list[dict], segment: str = "all") -> str:
    """A plain-text table for one segment: one line per model and k, one column per
    metric (auc, which has no k, repeated on each of the model's lines); with repeats
    over seeds, mean ± standard deviation. Then, for the other segments, nDCG per model."""
    from socialrec.evaluation.report import shown_rows

    rows = shown_rows(rows)
    seg_rows = [r for r in rows if r.get("segment", "all") == segment]
    if not seg_rows:
        return "(no metrics)"
    order = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage", "novelty", "diversity")
    metric_names = [m for m in order if any(r["metric"] == m for r in seg_rows)]
    keys = sorted({(r["model"], r["k"]) for r in seg_rows if r["metric"] != "auc"})
    val = {(r["model"], r["k"], r["metric"]): r for r in seg_rows if r["metric"] != "auc"}
    val.update({(r["model"], k, "auc"): r for r in seg_rows if r["metric"] == "auc"
                for model, k in keys if model == r["model"]})
    users = {(r["model"], r["k"]): r.get("n_users") for r in seg_rows if r["metric"] in order[:6]}
    spread = any(r.get("std") is not None for r in seg_rows)
    cw = 17 if spread else 11

    def cell(r):
        if r is None:
            return f"{'-':>{cw}}"
        text = f"{r['value']:.4f}" + (f"±{r['std']:.4f}" if spread and r.get("std") is not None else "")
        return f"{text:>{cw}}"

    width = max(14, 2 + max(len(r["model"]) for r in seg_rows))
    header = f"{'model':<{width}}{'k':>4}" + "".join(f"{m:>{cw}}" for m in metric_names) + f"{'users':>8}"
    n_seeds = max((r.get("n_seeds") or 1) for r in seg_rows)
    lines = [f"segment {segment}" + (f", mean ± std over {n_seeds} seeds" if spread else ""), header,
             "-" * len(header)]
    for model, k in keys:
        cells = "".join(cell(val.get((model, k, m))) for m in metric_names)
        lines.append(f"{model:<{width}}{k:>4}{cells}{users.get((model, k)) or 0:>8}")
    others = sorted({r.get("segment") for r in rows if r.get("segment") not in (None, segment)})
    ks = sorted({r["k"] for r in rows if r["metric"] == "ndcg"})
    if others and ks:
        k = 10 if 10 in ks else ks[-1]
        nd = {(r["model"], r["segment"]): r for r in rows if r["metric"] == "ndcg" and r["k"] == k}
        models = sorted({m for m, _ in nd})
        lines += ["", f"nDCG@{k} by segment (users)", f"{'model':<{width}}" + "".join(f"{s:>22}" for s in [segment, *others])]
        for model in models:
            cells = ""
            for sname in [segment, *others]:
                r = nd.get((model, sname))
                cells += f"{'-':>22}" if r is None else f"{r['value']:>14.4f} ({r.get('n_users') or 0:>5})"
            lines.append(f"{model:<{width}}{cells}")
    return "\n".join(lines)


def _has_rows(df: DataFrame) -> bool:
    return df.limit(1).count() > 0


def missing_features(spark: SparkSession, storage: Storage, cfg: Config) -> list[str]:
    """The feature stages ``evaluate`` must run first: ingest when the dataset has no
    interactions, tokenize/word2vec when a model needs Word2Vec item vectors that are not
    there, embed when a model needs transformer embeddings of items that lack one."""
    ds = cfg.dataset.name
    needed = []
    if not _has_rows(storage.read(spark, INTERACTIONS, ds)):
        return ["ingest", "tokenize", "word2vec", *(["embed"] if _needs(cfg, "transformer") else []),
                *(["graph"] if _needs(cfg, "graph") else [])]
    if _needs(cfg, "w2v"):
        w2v = storage.read(spark, ITEM_W2V, ds).where(F.col("engine") == cfg.word2vec.engine)
        if not _has_rows(w2v):
            needed += ["tokenize", "word2vec"] if not _has_rows(storage.read(spark, TOKENS, ds)) else ["word2vec"]
    if _needs(cfg, "transformer"):
        emb = storage.read(spark, ITEM_EMBEDDINGS, ds).where(F.col(C.MODEL) == cfg.embed.model)
        missing = storage.read(spark, ITEMS, ds).select(C.ITEM).join(emb.select(C.ITEM), C.ITEM, "left_anti")
        if _has_rows(missing):
            needed.append("embed")
    if _needs(cfg, "graph") and (not _has_rows(storage.read(spark, NODE_EMBEDDINGS, ds))
                                 or "embed" in needed) and _has_rows(storage.read(spark, EDGES, ds)):
        needed.append("graph")  # after embed: its profiles read the embeddings
    return needed


def _needs(cfg: Config, kind: str) -> bool:
    """Whether any listed model (or the ALS bridge) reads ``kind`` item vectors (or, for
    ``graph``, the node embeddings)."""
    ms = cfg.evaluation.models
    if kind == "graph":
        return "hybrid-social" in ms
    hybrid = any(m in ("hybrid", "hybrid-social") or (m.startswith("hybrid-no-") and m != f"hybrid-no-{kind}")
                 for m in ms)
    content = "transformer_content" if kind == "transformer" else "w2v_content"
    return content in ms or hybrid or ("als" in ms and kind in cfg.als.bridge)


def report_dir(cfg: Config, run_id: str) -> Path:
    """Where a run's report goes: ``report.dir``/<run_id>, else next to the tables
    (``<storage.root>/reports/<run_id>``) when the root is a local folder, else
    ``./reports/<run_id>``."""
    if cfg.report.dir:
        return Path(cfg.report.dir) / run_id
    root = cfg.storage.root
    if not cfg.storage.catalog and (root.startswith("file:") or "://" not in root):
        return Path(root.removeprefix("file://").removeprefix("file:")) / "reports" / run_id
    return Path("reports") / run_id


@dataclasses.dataclass
class StageCall:
    """What a stage runner reads: the session, storage and configuration, the run, the
    seed it runs for (``offset``: its index among the run's ``seeds``), the list length
    ``depth`` and the run's ``params`` (values chosen at run time, for ``runs.params``)."""

    spark: SparkSession
    storage: Storage
    cfg: Config
    run_id: str
    seed: int
    offset: int
    depth: int
    params: dict
    seeds: int

    def record(self, values: dict) -> None:
        """Values chosen at run time into ``params``, per seed when the run has several."""
        self.params.update(values if self.seeds == 1 else {f"seed{self.seed}.{k}": v for k, v in values.items()})


def _run_recommend(c: StageCall) -> dict:
    ev, chosen = c.cfg.evaluation, {}
    out = recommend_stage(
        c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=ev.protocol, seed=c.seed,
        models=ev.models, k=c.cfg.recommend.k, depth=c.depth, w2v_engine=c.cfg.word2vec.engine, content=c.cfg.content,
        embed_model=c.cfg.embed.model, als=dataclasses.replace(c.cfg.als, seed=c.cfg.als.seed + c.offset),
        hybrid=dataclasses.replace(c.cfg.hybrid, seed=c.cfg.hybrid.seed + c.offset), graph=c.cfg.graph,
        chosen_params=chosen, cold_share=ev.cold_share, cold_history=ev.cold_history, auc_depth=ev.auc_depth)
    c.record(chosen)
    return out


def _run_evaluate(c: StageCall) -> None:
    ev = c.cfg.evaluation
    _, info = evaluate_stage(c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=ev.protocol,
                             seed=c.seed, models=ev.models, ks=ev.k, metrics=ev.metrics, segments=ev.segments,
                             light_share=ev.light_users, embed_model=c.cfg.embed.model,
                             w2v_engine=c.cfg.word2vec.engine)
    c.record(info)


# Each stage of `socialrec run` (STAGES, in order) and the function that runs it; its
# return value is the stage's entry in the run's result (None: no entry). Adding a stage
# is a runner here and its place in STAGES.
STAGE_RUNNERS: dict = {
    "ingest": lambda c: ingest_stage(c.spark, c.storage, c.cfg.dataset),
    "tokenize": lambda c: tokenize_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, tok=c.cfg.tokenize),
    "word2vec": lambda c: word2vec_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, w2v=c.cfg.word2vec,
                                         run_id=c.run_id),
    "embed": lambda c: embed_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, emb=c.cfg.embed),
    "graph": lambda c: graph_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, cfg=c.cfg.graph,
                                   embed_model=c.cfg.embed.model),
    "split": lambda c: split_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, protocol=c.cfg.evaluation.protocol,
                                   ratio=c.cfg.evaluation.ratio, seed=c.seed, cold_share=c.cfg.evaluation.cold_share,
                                   cold_history=c.cfg.evaluation.cold_history, cut=c.cfg.evaluation.time_cut),
    "recommend": _run_recommend,
    "evaluate": _run_evaluate,
    "explain": lambda c: explain_stage(
        c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=c.cfg.evaluation.protocol,
        seed=c.seed, cfg=c.cfg.explain, graph=c.cfg.graph, embed_model=c.cfg.embed.model,
        w2v_engine=c.cfg.word2vec.engine, w2v_variant=c.cfg.content.variant),
}


def run_stage(spark: SparkSession, cfg: Config, command: str, run_id: str | None = None) -> dict:
    """Run one stage, ``run`` (all of them) or ``evaluate`` (the ablation runner), as
    configured, recorded in ``runs``.

    ``run`` and ``evaluate`` end with the evaluation loop: for each of
    ``evaluation.repeats`` seeds (``evaluation.seed`` + 0, 1, ...; the models' seeds move
    with it) split, train and recommend every listed model on that same split, and
    write the metrics; then summary rows over the seeds, the report and, when
    ``tracking.mlflow`` is set, the MLflow run. ``evaluate`` first runs only the feature
    stages whose outputs are missing (``missing_features``)."""
    storage = Storage(cfg.storage.root, cfg.storage.catalog)
    ensure_checkpoint_dir(spark, cfg.spark.checkpoint_dir, cfg.storage.root)
    run_id = run_id or cfg.run.id or new_run_id()
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(f"run id: {RUN_ID_RULE}, got {run_id!r}")
    ev = cfg.evaluation
    if command == "run":
        stages = [s for s in FEATURE_STAGES if (s != "embed" or _needs(cfg, "transformer"))
                  and (s != "graph" or _needs(cfg, "graph"))]
    elif command == "evaluate":
        stages = missing_features(spark, storage, cfg)
    elif command == "metrics":  # the metrics of this run's split and recommendations (stage by stage use)
        stages = ["evaluate"]
    else:
        stages = [command]
    loop = command in ("run", "evaluate")
    seeds = [ev.seed + i for i in range(ev.repeats)] if loop else [ev.seed]
    depth = max(cfg.recommend.k, *ev.k)
    timer = Timer(spark)
    started = datetime.now(timezone.utc)
    params: dict[str, str] = {}  # values chosen while running (tuned ALS, segment cuts), recorded in runs
    # Stages called one at a time under one run id (a notebook, a scheduler's tasks) make
    # one run: the command lists the stages in call order, timings and params add up,
    # started_at is the first call's. The same command again replaces the row.
    recorded = command
    prior = storage.read(spark, RUNS).where(F.col(C.RUN_ID) == run_id).first()
    if prior is not None and prior.command and prior.command != command:
        called = prior.command.split(",")
        recorded = ",".join(called + ([command] if command not in called else []))
        started = prior.started_at.replace(tzinfo=timezone.utc) if prior.started_at else started
        timer.timings.update(prior.timings or {})
        params.update(prior.params or {})
        timer.jobs.update({key[len("jobs."):]: int(v) for key, v in params.items() if key.startswith("jobs.")})
        timer.heap_mib.update({key[len("heap_mib."):]: int(v) for key, v in params.items()
                               if key.startswith("heap_mib.")})
    max_heap = max_heap_mib(spark)
    record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="running",
               started_at=started, finished_at=None, config_json=cfg.to_json(), timings=timer.timings, params=params)
    result: dict = {"run_id": run_id}

    def one(stage: str, seed: int, offset: int) -> None:
        log.info("stage %s: starting (run %s, seed %d)", stage, run_id, seed)
        runner = STAGE_RUNNERS.get(stage)
        if runner is None:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}, run")
        with timer.stage(stage):
            out = runner(StageCall(spark=spark, storage=storage, cfg=cfg, run_id=run_id, seed=seed, offset=offset,
                                   depth=depth, params=params, seeds=len(seeds)))
            if out is not None:
                result[stage] = out
        params[f"jobs.{stage}"] = str(timer.jobs[stage])  # Spark jobs, all seeds together
        heap = ""
        if stage in timer.heap_mib:  # the highest over the seeds
            params[f"heap_mib.{stage}"] = str(timer.heap_mib[stage])
            heap = f", peak heap {timer.heap_mib[stage]:,} of {max_heap:,} MiB" if max_heap else ""
        log.info("stage %s: done in %.1f s, %d Spark jobs%s", stage, timer.timings[stage], timer.jobs[stage], heap)

    try:
        for stage in stages:
            one(stage, ev.seed, 0)
        if loop:
            for offset, seed in enumerate(seeds):
                for stage in ("split", "recommend", "evaluate"):
                    one(stage, seed, offset)
            if len(seeds) > 1:
                summarise_seeds(spark, storage, run_id=run_id, protocol=ev.protocol, seeds=seeds, models=ev.models)
            if cfg.explain.enabled:  # the recommendations that stay are the last seed's
                one("explain", seeds[-1], len(seeds) - 1)
        if loop or command == "metrics":
            rows = storage.read(spark, METRICS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == ev.protocol)
                                                      & F.col(C.MODEL).isin(*ev.models))
            result["metrics"] = [r.asDict() for r in rows.collect()]  # models x segments x metrics x k (x seeds)
            if cfg.report.enabled:
                from socialrec.evaluation.report import write_report

                with timer.stage("report"):
                    result["report"] = str(write_report(
                        spark, storage, cfg, run_id=run_id, rows=result["metrics"], params=params,
                        timings=timer.timings, out=report_dir(cfg, run_id)))
            if cfg.tracking.mlflow:
                from socialrec.evaluation.tracking import log_to_mlflow

                with timer.stage("tracking"):
                    result["mlflow_run"] = log_to_mlflow(cfg, run_id=run_id, rows=result["metrics"], params=params,
                                                         timings=timer.timings, report=result.get("report"))
    except Exception as exc:
        record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="failed",
                   started_at=started, finished_at=datetime.now(timezone.utc), config_json=cfg.to_json(),
                   timings=timer.timings, error="".join(traceback.format_exception(exc)), params=params)
        raise
    record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="succeeded",
               started_at=started, finished_at=datetime.now(timezone.utc), config_json=cfg.to_json(),
               timings=timer.timings, params=params)
    result["timings"] = timer.timings
    result["jobs"] = timer.jobs
    result["heap_mib"] = timer.heap_mib
    result["params"] = params
    return result
