"""The tokenize stage: every item's title and text into the ``tokens`` table."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import TokenizeConfig
from socialrec.core.schemas import ITEMS, TOKENS
from socialrec.core.storage import Storage
from socialrec.features.tokenize import has_text, tokenize

log = logging.getLogger(__name__)


def tokenize_stage(spark: SparkSession, storage: Storage, *, dataset: str, tok: TokenizeConfig) -> dict[str, int]:
    """Tokenise every item's title and text; sync the dataset's ``tokens`` slice. Items
    without title and text (a ratings export with no catalogue) are skipped and counted."""
    every = storage.read(spark, ITEMS, dataset)
    items = every.where(has_text())
    toks = tokenize(items, engine=tok.engine, lowercase=tok.lowercase, strip_html=tok.strip_html,
                    strip_urls=tok.strip_urls, stopwords=tok.stopwords, min_token_length=tok.min_token_length)
    toks = toks.withColumn(C.DATASET, F.lit(dataset)).withColumn("engine", F.lit(tok.engine))
    storage.merge(toks, TOKENS, scope={C.DATASET: dataset})
    row = storage.read(spark, TOKENS, dataset).agg(
        F.count(F.lit(1)).alias("items"), F.sum("n_tokens").alias("tokens"),
        F.sum(F.when(F.col("n_tokens") == 0, 1).otherwise(0)).alias("empty")).first()
    out = {"items": row["items"], "tokens": int(row["tokens"] or 0), "empty": int(row["empty"] or 0),
           "engine": tok.engine, "no_text": every.where(~has_text()).count()}
    log.info("tokenize: %d items, %d tokens; %d items have no token (empty, emoji or stop words only); "
             "%d items without text skipped", out["items"], out["tokens"], out["empty"], out["no_text"])
    return out
