"""The embed stage: transformer embeddings of the items whose text is new or changed."""

from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import EmbedConfig
from socialrec.core.schemas import ITEM_EMBEDDINGS, ITEMS
from socialrec.core.storage import Storage
from socialrec.features.embed import content_hash, embed_texts, embedding_text, plan

log = logging.getLogger(__name__)


def embed_stage(spark: SparkSession, storage: Storage, *, dataset: str, emb: EmbedConfig) -> dict:
    """Embed item text with the transformer; sync the dataset's ``item_embeddings`` for
    this model, embedding only items whose text (hash) is new or changed."""
    p = plan(emb)  # a bad model folder fails here, before Spark work
    docs = storage.read(spark, ITEMS, dataset).select(
        C.ITEM, embedding_text(emb.fields, html=emb.strip_html).alias("_text"))
    docs = docs.withColumn(C.CONTENT_HASH, content_hash(F.col("_text"), p.max_length))
    existing = storage.read(spark, ITEM_EMBEDDINGS, dataset).where(F.col(C.MODEL) == emb.model)
    kept = existing.join(docs.select(C.ITEM, C.CONTENT_HASH), [C.ITEM, C.CONTENT_HASH], "left_semi")
    todo = docs.join(existing.select(C.ITEM, C.CONTENT_HASH), [C.ITEM, C.CONTENT_HASH], "left_anti")
    n_todo = todo.count()
    sc = spark.sparkContext
    embedded, blank = sc.accumulator(0), sc.accumulator(0)
    new = None
    seconds = 0.0
    if n_todo:
        new = embed_texts(todo, p, dataset=dataset, embedded=embedded, blank=blank)
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
    n_text = n_todo - blank.value  # blank texts get a null vector without the model
    out = {"items": total, "embedded": n_text, "kept": total - n_todo, "no_text": int(nulls or 0),
           "seconds": round(seconds, 2), "texts_per_s": round(n_text / seconds, 1) if seconds and n_text else None}
    if blank.value:
        log.warning("embed: %d of the %d items embedded now have no text (null or blank); their vector is null",
                    blank.value, n_todo)
    log.info("embed: %s: %d items, %d embedded now (%.0f texts/s), %d unchanged kept, %d without text",
             emb.model, total, n_text, out["texts_per_s"] or 0, out["kept"], out["no_text"])
    return out
