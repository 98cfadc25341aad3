"""The word2vec stage: word vectors, item vectors (mean, SIF) and their quality metrics."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import Word2VecConfig
from socialrec.core.schemas import ITEM_W2V, ITEMS, METRICS, TOKENS, WORD_VECTORS
from socialrec.core.storage import Storage
from socialrec.features.tokenize import has_text
from socialrec.features.word2vec import item_vectors, train_word_vectors

log = logging.getLogger(__name__)


def word2vec_stage(spark: SparkSession, storage: Storage, *, dataset: str, w2v: Word2VecConfig,
                   run_id: str | None = None) -> dict:
    """Train word vectors on the dataset's tokens; sync ``word_vectors`` and ``item_w2v``
    (variants mean and sif) for this engine."""
    toks = storage.read(spark, TOKENS, dataset)
    if toks.limit(1).count() == 0 and storage.read(spark, ITEMS, dataset).where(has_text()).limit(1).count():
        raise RuntimeError(f"no tokens for dataset {dataset!r}; run `socialrec tokenize` (or `socialrec run`) first")
    if toks.where(F.col("n_tokens") > 0).limit(1).count() == 0:  # a catalogue without text
        why = f"no item of dataset {dataset!r} has a token (no title or text): no word vectors"
        log.warning("word2vec: %s; the Word2Vec content model recommends nothing", why)
        for table in (WORD_VECTORS, ITEM_W2V):  # the slice is recomputed whole: now it is empty
            storage.delete(spark, table, {C.DATASET: dataset, "engine": w2v.engine})
        return {"words": 0, "items": 0, "skipped": why}
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
    q = word_quality([r.word for r in rows], np.array([r.vector for r in rows], dtype=np.float32)) if rows else \
        {"wordsim353_spearman": float("nan"), "wordsim353_oov_ratio": 1.0, "analogy_accuracy": float("nan"),
         "analogy_questions": 0.0}
    recs = [
        (run_id, dataset, "word2vec", f"w2v-{engine}", "words", name, 0, float(value),
         int(q["analogy_questions"]) if name.startswith("analogy") else None, None, None, None)
        for name, value in q.items()
        if name != "analogy_questions" and not np.isnan(value)  # no coverage: no score, only the OOV row
    ]
    df = spark.createDataFrame(recs, METRICS.schema)
    storage.merge(df, METRICS)
    log.info("word2vec quality: %s", ", ".join(f"{k} {v:.3f}" for k, v in q.items()))
    # A figure the vocabulary cannot support is missing, with the reason (not an error).
    why = {"wordsim353_spearman": f"no WordSim-353 pair has both words among the {len(rows):,} word vectors",
           "analogy_accuracy": f"no analogy question has its four words among the {len(rows):,} word vectors"}
    missing = {name: reason for name, reason in why.items() if np.isnan(q[name])}
    for name, reason in missing.items():
        log.warning("word2vec quality: %s not computed: %s", name, reason)
    return {**q, "missing": missing}
