"""MovieLens adapters: ``movielens-100k`` (GroupLens ml-100k + IMDb plots) and
``movielens-latest`` (ml-latest-small + TMDb overviews).

Ratings become interactions (event ``rating``, weight the rating as read; ingest
applies ``dataset.rating_weight`` and ``dataset.positive_at``). Item text is title, genres and the plot/overview
(and, for movielens-latest, the tags users gave). MovieLens has no social graph.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.data.contract import RawTables
from socialrec.data.readers import read_csv, read_lines, require_files, split_fields, users_from_ids

ML100K_FILES = ["u.data", "u.item", "u.user", "u.genre"]
LATEST_FILES = ["ratings.csv", "movies.csv", "tags.csv"]
# TMDb overviews (not in the GroupLens archive; used when present, with their id check).
OVERVIEW_FILES = ["overviews.csv", "overviews_id_check.csv"]
RATING_MAX = 5.0  # both releases rate on a five-star scale


def _iso_or_raw(raw, fmt: str):
    """An ISO timestamp string when ``raw`` parses with ``fmt``; else ``raw`` itself, so
    that ingest rejects it as unparseable (an empty value stays empty: no date)."""
    parsed = F.try_to_timestamp(raw, F.lit(fmt))
    return F.when(parsed.isNotNull(), F.date_format(parsed, "yyyy-MM-dd HH:mm:ss")).otherwise(raw)


def movielens_100k(spark: SparkSession, path: str | None) -> RawTables:
    root = require_files(path, ML100K_FILES, "movielens-100k")
    # u.genre: 19 lines naming the genre flags of u.item, in order.
    genres = [line.split("|")[0] for line in (root / "u.genre").read_text(encoding="latin-1").splitlines() if "|" in line]

    users = split_fields(read_lines(spark, root / "u.user"), "|", ["user_id", "age", "gender", "occupation", "zip"])
    users = users.withColumn(
        "profile_text", F.concat_ws(" ", F.concat(F.col("age"), F.lit(" year old")), "gender", "occupation")
    )

    flags = [f"g{i}" for i in range(len(genres))]
    items = split_fields(
        read_lines(spark, root / "u.item", encoding="ISO-8859-1"),
        "|",
        ["item_id", "title", "release", "video_release", "imdb_url"] + flags,
    )
    genre_list = F.filter(
        F.array(*[F.when(F.col(f) == "1", F.lit(g)) for f, g in zip(flags, genres)]), lambda x: x.isNotNull()
    )
    items = items.withColumn("_genres", genre_list)
    if (root / "plots.json").is_file():
        plots = (
            spark.read.option("multiLine", "true").json(str(root / "plots.json"))
            .select(F.col("movielens_id").cast("string").alias("item_id"), F.col("plot").alias("_plot"))
            .dropDuplicates(["item_id"])
        )
        items = items.join(plots, on="item_id", how="left")
    else:
        items = items.withColumn("_plot", F.lit(None).cast("string"))
    items = items.select(
        "item_id",
        "title",
        F.concat_ws(". ", F.col("title"), F.array_join("_genres", ", "), F.col("_plot")).alias(C.TEXT),
        F.array_join("_genres", "|").alias(C.TAGS),
        F.lit("movie").alias(C.KIND),
        _iso_or_raw(F.col("release"), "d-MMM-yyyy").alias(C.CREATED_AT),
        "release",
        "imdb_url",
        *flags,
        "_error",
        C.SOURCE,
        C.ROW,
        "_line",
    )

    ratings = split_fields(read_lines(spark, root / "u.data"), "\t", ["user_id", "item_id", "rating", "ts"])
    interactions = ratings.withColumn(C.EVENT, F.lit("rating")).withColumn(C.WEIGHT, F.col("rating"))
    return RawTables(users=users, items=items, interactions=interactions, edges=None, integer_ids=True,
                     max_weight=RATING_MAX)


def movielens_latest(spark: SparkSession, path: str | None) -> RawTables:
    root = require_files(path, LATEST_FILES, "movielens-latest")
    ratings = read_csv(spark, root / "ratings.csv", ["userId", "movieId", "rating", "timestamp"])
    tags = read_csv(spark, root / "tags.csv", ["userId", "movieId", "tag", "timestamp"])
    movies = read_csv(spark, root / "movies.csv", ["movieId", "title", "genres"])
    if all((root / f).is_file() for f in OVERVIEW_FILES):
        overviews = read_csv(spark, root / "overviews.csv", ["movieId", "title", "genres", "tmdb_id", "overview"])
        check = read_csv(spark, root / "overviews_id_check.csv",
                         ["movieId", "tmdb_id_in_file", "tmdbId_in_links_csv", "status"])
        # Overviews were matched to TMDb by title search; 201 matched the wrong film. Only
        # the rows whose TMDb id agrees with links.csv are used.
        agreed = (
            overviews.join(check.where(F.col("status") == "agrees").select("movieId"), on="movieId", how="inner")
            .select("movieId", F.col("overview").alias("_overview"))
            .dropDuplicates(["movieId"])
        )
    else:
        agreed = spark.createDataFrame([], "movieId string, _overview string")
    tag_text = tags.where(F.col("tag").isNotNull()).groupBy("movieId").agg(
        F.array_join(F.array_sort(F.collect_set(F.lower(F.trim("tag")))), ", ").alias("_tags")
    )
    genre_list = F.when(F.col("genres") != "(no genres listed)", F.col("genres"))
    items = (
        movies.join(agreed, on="movieId", how="left")
        .join(tag_text, on="movieId", how="left")
        .select(
            F.col("movieId").alias(C.ITEM),
            F.col("title"),
            F.concat_ws(
                ". ",
                F.col("title"),
                F.regexp_replace(genre_list, r"\|", ", "),
                F.col("_overview"),
                F.when(F.col("_tags").isNotNull(), F.concat(F.lit("Tags: "), F.col("_tags"))),
            ).alias(C.TEXT),
            genre_list.alias(C.TAGS),
            F.lit("movie").alias(C.KIND),
            F.col("genres"),
            "_error",
            C.SOURCE,
            C.ROW,
        )
    )
    rate = ratings.select(
        F.col("userId").alias(C.USER), F.col("movieId").alias(C.ITEM), F.lit("rating").alias(C.EVENT),
        F.col("rating").alias(C.WEIGHT), F.col("timestamp").alias(C.TS),
        F.lit(None).cast("string").alias(C.DETAIL), "_error", C.SOURCE, C.ROW,
    )
    tagged = tags.select(
        F.col("userId").alias(C.USER), F.col("movieId").alias(C.ITEM), F.lit("tag").alias(C.EVENT),
        F.lit(None).cast("string").alias(C.WEIGHT), F.col("timestamp").alias(C.TS),
        F.lower(F.trim("tag")).alias(C.DETAIL), "_error", C.SOURCE, C.ROW,
    )
    interactions = rate.unionByName(tagged)
    # No user file: the users are the ids that rate or tag (numeric ids double as row ids).
    users = users_from_ids([df.where(F.col("_error").isNull()).select(F.col("userId").alias(C.USER))
                            for df in (ratings, tags)],
                           "ratings.csv+tags.csv (user ids)")
    return RawTables(users=users, items=items, interactions=interactions, edges=None, integer_ids=True,
                     max_weight=RATING_MAX)
