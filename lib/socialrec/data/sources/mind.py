"""MIND, the Microsoft News Dataset (Wu et al. 2020; MINDsmall / MINDlarge): ``mind``.

* ``news.tsv`` (no header: id, category, subcategory, title, abstract, url, title
  entities, abstract entities): items, title + abstract as text, category and
  subcategory as tags.
* ``behaviors.tsv`` (no header: impression id, user, time ``M/d/yyyy h:mm:ss a``,
  history, impressions): each clicked impression (``N123-1``) is an interaction (event
  ``click``, dated by the impression); each news id in the click history is one too
  (event ``history``, dated by the first impression that lists it: it was clicked
  before then). Shown-but-not-clicked news (``-0``) are not positives and are not kept.
  A history or impression that names no news of news.tsv is rejected as an unknown item;
  an impression that is neither ``<id>-1`` nor ``<id>-0`` (MINDlarge's unlabelled test
  impressions) is rejected as such.
* no social graph; users are those of behaviors.tsv.

One line of behaviors.tsv gives many rows: each has ``_row`` = line × ``PER_LINE`` +
its position in the line's impressions (positions from 1) or history (from
``HISTORY_AT``), so a reject names the line and the entry. The summary's counts for
behaviors.tsv are of these rows, not of lines; a line's shown-but-not-clicked news and a
history entry a later line repeats are no rows.
"""

from __future__ import annotations

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.data.contract import RawTables
from socialrec.data.readers import ERROR, read_lines, require_files, split_fields, users_from_ids

FILES = ["news.tsv", "behaviors.tsv"]
TIME = "M/d/yyyy h:mm:ss a"
PER_LINE = 100_000  # rows per behaviors line: impressions at 1.., history at HISTORY_AT..
HISTORY_AT = 50_000


def mind(spark: SparkSession, path: str | None) -> RawTables:
    root = require_files(path, FILES, "mind")
    news = split_fields(read_lines(spark, root / "news.tsv"), "\t",
                        ["item_id", "category", "subcategory", "title", "abstract", "url", "title_entities",
                         "abstract_entities"], min_fields=4)
    items = news.select(
        C.ITEM, C.TITLE, F.col("abstract").alias(C.TEXT),
        F.concat_ws("|", "category", "subcategory").alias(C.TAGS), F.lit("news").alias(C.KIND),
        ERROR, C.SOURCE, C.ROW, "_line")
    behaviors = split_fields(read_lines(spark, root / "behaviors.tsv"), "\t",
                             ["impression_id", "user_id", "time", "history", "impressions"], min_fields=5)
    ok = behaviors.where(F.col(ERROR).isNull())
    line = F.col(C.ROW) * PER_LINE
    shown = behaviors.select(
        C.USER, F.posexplode_outer(F.split(F.coalesce(F.col("impressions"), F.lit("")), " ")).alias("_pos", "_imp"),
        "time", "impression_id", ERROR, C.SOURCE, line.alias("_line_row"), "_line")
    labelled = F.col("_imp").rlike(r"^\S+-[01]$")
    clicks = shown.where(F.col(ERROR).isNotNull() | ~labelled | F.col("_imp").endswith("-1")).select(
        C.USER, F.regexp_replace("_imp", r"-1$", "").alias(C.ITEM), F.lit("click").alias(C.EVENT),
        F.lit(None).cast("string").alias(C.WEIGHT), F.col("time").alias(C.TS),
        F.concat(F.lit("impression "), F.col("impression_id")).alias(C.DETAIL),
        F.coalesce(F.col(ERROR), F.when(~labelled, F.concat(F.lit("impression is not <news id>-1 or -0: "),
                                                            F.coalesce(F.col("_imp"), F.lit("(none)"))))).alias(ERROR),
        C.SOURCE, (F.col("_line_row") + F.col("_pos") + 1).alias(C.ROW), "_line")
    # History: one row per (user, news), dated by the user's first impression listing it.
    listed = ok.select(C.USER, F.posexplode(F.split(F.trim("history"), " ")).alias("_pos", C.ITEM), "time",
                       F.try_to_timestamp(F.col("time"), F.lit(TIME)).alias("_t"), C.SOURCE,
                       (F.col(C.ROW) * PER_LINE + HISTORY_AT + F.col("_pos")).alias(C.ROW), "_line").where(
        F.col(C.ITEM) != "")
    first = Window.partitionBy(C.USER, C.ITEM).orderBy(F.col("_t").asc_nulls_last(), C.ROW)
    history = listed.withColumn("_n", F.row_number().over(first)).where("_n = 1").select(
        C.USER, C.ITEM, F.lit("history").alias(C.EVENT), F.lit(None).cast("string").alias(C.WEIGHT),
        F.col("time").alias(C.TS), F.lit(None).cast("string").alias(C.DETAIL),
        F.lit(None).cast("string").alias(ERROR), C.SOURCE, C.ROW, "_line")
    users = users_from_ids([ok.select(C.USER)], "behaviors.tsv (user ids)")
    return RawTables(users=users, items=items, interactions=clicks.unionByName(history), edges=None,
                     ts_format={"interactions": TIME})
