"""Last.fm HetRec 2011 (``lastfm-hetrec``): plays, friendships and tag assignments.

* ``user_artists.dat``: play counts -> interactions (event ``play``, weight = plays).
  The file carries no time; plays are stamped ``PLAYS_TS`` (the dataset's release,
  May 2011), so a chronological split orders them after every dated tag.
* ``user_taggedartists.dat``: one interaction (event ``tag``, detail = the tag) per
  assignment, dated day/month/year; tags.dat (latin-1) names the tags.
* ``artists.dat``: items; text = artist name + the tags users gave it (most used first).
* ``user_friends.dat``: ``friend`` edges. The file lists each friendship in both
  directions; each direction is kept once, so a repeated line is a rejected duplicate.
"""

from __future__ import annotations

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.data.contract import RawTables
from socialrec.data.readers import read_lines, require_files, split_fields, users_from_ids

FILES = ["user_artists.dat", "artists.dat", "user_friends.dat", "tags.dat", "user_taggedartists.dat"]
PLAYS_TS = "2011-05-01 00:00:00"
TAGS_IN_TEXT = 20


def lastfm_hetrec(spark: SparkSession, path: str | None) -> RawTables:
    root = require_files(path, FILES, "lastfm-hetrec")
    plays = split_fields(read_lines(spark, root / "user_artists.dat", skip_header=True), "\t",
                         ["user_id", "item_id", "weight"])
    artists = split_fields(read_lines(spark, root / "artists.dat", skip_header=True), "\t",
                           ["item_id", "name", "url", "picture_url"], min_fields=2)
    friends = split_fields(read_lines(spark, root / "user_friends.dat", skip_header=True), "\t", ["src", "dst"])
    tag_names = split_fields(read_lines(spark, root / "tags.dat", encoding="ISO-8859-1", skip_header=True), "\t",
                             ["tag_id", "tag"]).where(F.col("_error").isNull())
    tagged = split_fields(read_lines(spark, root / "user_taggedartists.dat", skip_header=True), "\t",
                          ["user_id", "item_id", "tag_id", "day", "month", "year"])
    tagged = tagged.join(F.broadcast(tag_names.select("tag_id", F.lower(F.trim("tag")).alias("_tag"))),
                         on="tag_id", how="left")

    day = F.concat_ws("-", F.col("year"), F.lpad("month", 2, "0"), F.lpad("day", 2, "0"))
    tag_events = tagged.select(
        "user_id", "item_id", F.lit("tag").alias(C.EVENT), F.lit(None).cast("string").alias(C.WEIGHT),
        F.when(F.col("year").isNotNull(), F.concat(day, F.lit(" 00:00:00"))).alias(C.TS),
        F.coalesce(F.col("_tag"), F.concat(F.lit("tag #"), F.col("tag_id"))).alias(C.DETAIL),
        "_error", C.SOURCE, C.ROW, "_line",
    )
    play_events = plays.select(
        "user_id", "item_id", F.lit("play").alias(C.EVENT), "weight", F.lit(PLAYS_TS).alias(C.TS),
        F.lit(None).cast("string").alias(C.DETAIL), "_error", C.SOURCE, C.ROW, "_line",
    )
    interactions = play_events.unionByName(tag_events)

    # Item text: the artist's name and its most used tags.
    tag_counts = tagged.where(F.col("_tag").isNotNull()).groupBy("item_id", "_tag").agg(F.count("*").alias("n"))
    top = tag_counts.withColumn(
        "r", F.row_number().over(Window.partitionBy("item_id").orderBy(F.desc("n"), F.asc("_tag")))
    ).where(F.col("r") <= TAGS_IN_TEXT)
    item_tags = top.groupBy("item_id").agg(
        F.transform(F.array_sort(F.collect_list(F.struct("r", "_tag"))), lambda s: s["_tag"]).alias("_tags")
    )
    items = artists.join(item_tags, on="item_id", how="left").select(
        "item_id",
        F.col("name").alias(C.TITLE),
        F.concat_ws(". ", F.col("name"), F.when(F.size("_tags") > 0, F.concat(F.lit("Tags: "), F.array_join("_tags", ", ")))).alias(C.TEXT),
        F.array_join("_tags", "|").alias(C.TAGS),
        F.lit("artist").alias(C.KIND),
        "name", "url", "picture_url", "_error", C.SOURCE, C.ROW, "_line",
    )
    edges = friends.withColumn(C.KIND, F.lit("friend"))
    # Users: everyone who plays, tags or has a friend (HetRec has no user file), from
    # the lines that could be cut into fields (a broken line's first field is no id).
    def ok(df):
        return df.where(F.col("_error").isNull())

    users = users_from_ids(
        [ok(plays).select("user_id"), ok(tagged).select("user_id"), ok(friends).select(F.col("src").alias("user_id")),
         ok(friends).select(F.col("dst").alias("user_id"))],
        "user_artists.dat+user_taggedartists.dat+user_friends.dat (user ids)",
    )
    return RawTables(users=users, items=items, interactions=interactions, edges=edges, integer_ids=True)
