"""Word2Vec over item tokens: word vectors and item vectors, with two engines.

* ``spark`` — ``pyspark.ml.feature.Word2Vec`` (skip-gram, hierarchical softmax) trained
  distributed. Spark's defaults are 1 partition and 1 iteration, which under-train;
  socialrec sets ``max_iter`` 5 and ``partitions`` from conf (more partitions train
  faster but average their models each iteration, so quality drops as they grow). Spark
  also refuses a model whose vocabulary size x vector size reaches Int.MaxValue / 8;
  ``check_spark_limit`` says so before training, naming both numbers. With more than one
  partition, Spark sums the partitions' updates in shuffle-fetch order, so two runs on
  the same tokens differ in the last digits (and rankings built on them may swap near
  ties); ``partitions: 1`` gives bit-identical reruns.
* ``gensim`` — gensim 4 skip-gram on the driver, for corpora that fit one machine: the
  tokens are collected (refused above ``max_driver_tokens``), trained with all cores,
  and the vectors returned as a DataFrame.

Item vectors (``item_vectors``): ``mean`` — the plain mean of the item's word vectors;
``sif`` — the smooth-inverse-frequency weighted mean, weight a / (a + p(w)) with p(w)
the word's corpus frequency (Arora et al. 2017, without the common-component removal).
"""

from __future__ import annotations

import logging
import os
import time

from pyspark.ml.feature import Word2Vec
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import W2V_ENGINES as ENGINES

log = logging.getLogger(__name__)

SPARK_LIMIT = (2**31 - 1) // 8


def vocabulary(tokens: DataFrame, min_count: int) -> DataFrame:
    """(word, count) of words seen at least ``min_count`` times."""
    return (
        tokens.select(F.explode("tokens").alias("word"))
        .groupBy("word")
        .agg(F.count(F.lit(1)).alias("count"))
        .where(F.col("count") >= min_count)
    )


def check_spark_limit(vocab_size: int, vector_size: int) -> None:
    if vocab_size * vector_size >= SPARK_LIMIT:
        raise ValueError(
            f"word2vec: vocabulary ({vocab_size:,} words) x vector_size ({vector_size}) = "
            f"{vocab_size * vector_size:,} reaches Spark's limit of {SPARK_LIMIT:,}; raise word2vec.min_count "
            "or lower word2vec.vector_size"
        )


def train_word_vectors(
    tokens: DataFrame,
    *,
    engine: str = "spark",
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 2,
    max_iter: int = 5,
    partitions: int = 1,
    step_size: float = 0.025,
    max_sentence_length: int = 1000,
    seed: int = 42,
    max_driver_tokens: int = 20_000_000,
) -> DataFrame:
    """(word, vector array<float>, count) trained on ``tokens`` (a ``tokens`` column)."""
    if engine not in ENGINES:
        raise ValueError(f"word2vec.engine: {engine!r} is not one of {', '.join(ENGINES)}")
    spark = tokens.sparkSession
    corpus = tokens.select("tokens").where(F.size("tokens") > 0)
    vocab = vocabulary(corpus, min_count)
    start = time.perf_counter()
    if engine == "spark":
        n_vocab = vocab.count()
        check_spark_limit(n_vocab, vector_size)
        w2v = Word2Vec(vectorSize=vector_size, windowSize=window, minCount=min_count, maxIter=max_iter,
                       numPartitions=partitions, stepSize=step_size, maxSentenceLength=max_sentence_length,
                       seed=seed, inputCol="tokens", outputCol="_v")
        vectors = w2v.fit(corpus).getVectors()
        out = vectors.select("word", vector_to_array("vector", "float32").alias("vector"))
    else:
        out = _gensim(corpus, vector_size=vector_size, window=window, min_count=min_count, epochs=max_iter,
                      seed=seed, max_sentence_length=max_sentence_length, max_driver_tokens=max_driver_tokens)
        out = spark.createDataFrame(out, "word string, vector array<float>")
    log.info("word2vec: %s engine trained in %.1f s", engine, time.perf_counter() - start)
    return out.join(vocab, on="word", how="inner")


def _gensim(corpus: DataFrame, *, vector_size, window, min_count, epochs, seed, max_sentence_length,
            max_driver_tokens) -> list[tuple[str, list[float]]]:
    from gensim.models import Word2Vec as GensimWord2Vec

    n_tokens = corpus.agg(F.sum(F.size("tokens"))).first()[0] or 0
    if n_tokens > max_driver_tokens:
        raise ValueError(
            f"word2vec.engine=gensim: the corpus has {n_tokens:,} tokens, more than word2vec.max_driver_tokens "
            f"({max_driver_tokens:,}) allows on the driver; use word2vec.engine=spark"
        )
    sentences = [list(r.tokens) for r in corpus.toLocalIterator()]  # bounded by the check above
    model = GensimWord2Vec(
        sentences=sentences, vector_size=vector_size, window=window, min_count=min_count, epochs=epochs,
        sg=1, hs=1, negative=0, seed=seed, workers=max(1, os.cpu_count() or 1),
        max_vocab_size=None, max_final_vocab=None,
    )
    kv = model.wv
    return [(w, kv[w].astype("float32").tolist()) for w in kv.index_to_key]


def item_vectors(tokens: DataFrame, word_vectors: DataFrame, *, variant: str = "mean", sif_a: float = 1e-3,
                 col_item: str = C.ITEM) -> DataFrame:
    """(item_id, vector array<float>): the mean (or SIF-weighted mean) of its word vectors.

    Items none of whose words have a vector get no row."""
    if variant not in ("mean", "sif"):
        raise ValueError(f"item vector variant {variant!r} is not mean or sif")
    words = tokens.select(col_item, F.explode("tokens").alias("word"))
    wv = word_vectors.select("word", array_to_vector("vector").alias("_v"), "count")
    joined = words.join(wv, on="word", how="inner")
    if variant == "sif":
        total = word_vectors.agg(F.sum("count")).first()[0]  # one number
        joined = joined.withColumn("_w", F.lit(sif_a) / (F.lit(sif_a) + F.col("count") / F.lit(float(total))))
    else:
        joined = joined.withColumn("_w", F.lit(1.0))
    return joined.groupBy(col_item).agg(Summarizer.mean(F.col("_v"), F.col("_w")).alias("_m")).select(
        col_item, vector_to_array("_m", "float32").alias("vector")
    )
