"""Amazon review datasets (McAuley et al.; the "5-core" JSON lines files, 2014 and 2018
layouts): ``amazon-reviews``.

* reviews (``dataset.path``: the ``*_5.json[.gz]`` file, or a folder of them): one
  interaction per review, event ``rating``, weight ``overall`` (1-5), time
  ``unixReviewTime`` (Unix seconds).
* items: from a metadata file when ``dataset.files.items`` names one (JSON lines, the
  2018 ``meta_<Category>.json`` layout; the 2014 metadata files are Python literals, not
  JSON, and must be converted first), with the files adapter's mapping, e.g. ``{item_id:
  asin, title: title, text: description}`` (a list of paragraphs is joined);
  otherwise from the reviews themselves: title = the first review's summary, text = the
  item's ``REVIEWS_IN_TEXT`` earliest reviews (summary and text). That text is written by
  reviewers, some of whom may be test users of a random split: docs/datasets.md says
  what that means for content-model numbers.
* no social graph; users are the reviewers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.compat import try_cast
from socialrec.core.config import DatasetConfig, FileSourceConfig
from socialrec.data.contract import RawTables
from socialrec.data.readers import ERROR, SourceError, users_from_ids
from socialrec.data.sources.files import read_table, under_base

REVIEWS_IN_TEXT = 5
TEXT_CHARS = 4000
REVIEWS = FileSourceConfig(path="", format="json", constants={"event": "rating"}, timestamp="unix-seconds",
                           columns={"user_id": "reviewerID", "item_id": "asin", "weight": "overall",
                                    "ts": "unixReviewTime"})


def amazon_reviews(spark: SparkSession, dataset: DatasetConfig) -> RawTables:
    if not dataset.path:
        raise SourceError("dataset amazon-reviews: dataset.path is not set; expected a reviews JSON lines file "
                          "(e.g. Electronics_5.json.gz) or a folder of them")
    reviews = read_table(spark, "interactions", dataclasses.replace(REVIEWS, path=dataset.path))
    ok = reviews.where(F.col(ERROR).isNull())
    users = users_from_ids([ok.select(C.USER)], f"{Path(dataset.path).name} (reviewer ids)")
    meta = dataset.files.get("items")
    if meta is not None:  # a relative path: beside the reviews
        folder = dataset.path if Path(dataset.path).is_dir() else str(Path(dataset.path).parent)
        items = read_table(spark, "items", under_base(meta, folder))
    else:
        items = _items_from_reviews(spark, dataset.path)
    return RawTables(users=users, items=items, interactions=reviews, integer_ids=False, max_weight=5.0,
                     ts_format={"interactions": "unix-seconds"})


def _items_from_reviews(spark: SparkSession, path: str):
    raw = spark.read.option("mode", "PERMISSIVE").json(path)
    if not {"asin", "unixReviewTime"} <= set(raw.columns):
        raise SourceError(f"dataset amazon-reviews: {path} has no asin / unixReviewTime fields "
                          f"(it has {', '.join(raw.columns)})")
    summary = F.col("summary") if "summary" in raw.columns else F.lit(None).cast("string")
    body = F.col("reviewText") if "reviewText" in raw.columns else F.lit(None).cast("string")
    w = Window.partitionBy("asin").orderBy(try_cast(F.col("unixReviewTime"), "long"), F.col("reviewerID"))
    first = (raw.where(F.col("asin").isNotNull())
             .select(F.trim("asin").alias(C.ITEM), summary.alias("s"), body.alias("b"),
                     F.row_number().over(w).alias("n"))
             .where(F.col("n") <= REVIEWS_IN_TEXT))
    items = first.groupBy(C.ITEM).agg(
        F.sort_array(F.collect_list(F.struct("n", "s", "b"))).alias("r"))
    return items.select(
        C.ITEM,
        F.element_at("r", 1)["s"].alias(C.TITLE),
        F.substring(F.concat_ws(" ", F.transform("r", lambda x: F.concat_ws(". ", x["s"], x["b"]))), 1,
                    TEXT_CHARS).alias(C.TEXT),
        F.lit("product").alias(C.KIND),
        F.lit(f"{Path(path).name} (items from reviews)").alias(C.SOURCE),
        F.abs(F.xxhash64(C.ITEM)).alias(C.ROW),
    )
