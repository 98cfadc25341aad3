"""The evaluate stage: every model's metrics per segment, synced into ``metrics``; and
the summary rows over a run's seeds."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.schemas import ITEMS, METRICS, RECOMMENDATIONS
from socialrec.core.storage import Storage
from socialrec.evaluation.metrics import ranking_metrics
from socialrec.evaluation.segments import evaluation_segments
from socialrec.stages.inputs import stored_vectors, train_test

log = logging.getLogger(__name__)


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

    train, test = train_test(spark, storage, dataset, protocol, seed)
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
                v = stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
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
            if recs.limit(1).count() == 0:  # e.g. a content model on a catalogue without text
                info[f"{model}.not_evaluated"] = "no recommendations"
                log.warning("evaluate: %s wrote no recommendations; no metrics for it", model)
                storage.delete(spark, METRICS, {C.RUN_ID: run_id, C.MODEL: model, C.SPLIT: protocol, C.SEED: seed})
                continue
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
