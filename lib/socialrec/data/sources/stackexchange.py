"""Stack Exchange data dumps (``stackexchange``): any site's Posts, Comments, Votes and
Users XML, parsed by Spark's XML source (``rowTag`` = row, attributes only), one
``<row>`` at a time — never loaded whole into Python.

* Questions (PostTypeId 1) are items: title + body with the HTML stripped + tags.
  Other post types except answers (tag wikis, moderator nominations, ...) are rejected
  as items with a reason naming the type.
* A user's answers, comments and favourites are interactions with the question (a
  comment on an answer counts for the answer's question); ``detail`` is the post,
  comment or vote id. Rows by deleted accounts (no user id) and about deleted posts
  (ids absent from Posts.xml) are rejected with reasons that say so; so are votes of the
  types that carry no user (up/down votes and the like).
* The social graph is derived: A answered or commented on B's post -> a ``replied_to``
  edge A -> B weighted by how often, dated by the latest reply. Replies to oneself come
  out as self edges and are rejected. Each edge lists its ``evidence``: per reply its
  time, post or comment id and the (user, question) pairs it reveals: the replier's,
  and for a comment on an answer the answerer's too (the edge says that answer
  exists). A model sees a reply only if all of its pairs are in its train part
  (``socialrec.features.graph.train_edges``), so an edge never tells it a test pair.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.compat import try_cast
from socialrec.data.contract import RawTables
from socialrec.data.readers import ERROR, read_lines, require_files, strip_html, undecodable

FILES = ["Posts.xml", "Comments.xml", "Votes.xml", "Users.xml"]
RAW_CHARS = 10_000  # a broken row's text kept in rejects.raw
ROW_LINE = r'^\s*<row(\s+[A-Za-z_][\w.-]*="[^"<]*")*\s*/>\s*$'  # one complete row element
ENTITIES = (("&quot;", '"'), ("&apos;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&#xA;", "\n"), ("&#xD;", "\r"),
            ("&#x9;", "\t"), ("&#10;", "\n"), ("&#13;", "\r"), ("&#9;", "\t"), ("&amp;", "&"))
POST_TYPES = {"1": "question", "2": "answer", "3": "orphaned tag wiki", "4": "tag wiki excerpt", "5": "tag wiki",
              "6": "moderator nomination", "7": "wiki placeholder", "8": "privilege wiki"}
VOTE_TYPES = {"1": "accepted answer", "2": "up vote", "3": "down vote", "4": "offensive", "5": "favourite",
              "6": "close", "7": "reopen", "8": "bounty start", "9": "bounty close", "10": "deletion",
              "11": "undeletion", "12": "spam", "15": "moderator review", "16": "approve edit suggestion"}


def _read_xml(spark: SparkSession, path: Path, attributes: list[str]) -> DataFrame:
    """The ``<row>`` elements' ``attributes`` as strings, plus ``_xml_error``/``_line`` for
    rows Spark's XML reader could not return.

    Spark's XML source silently drops a row cut off at the end of a file, and after a
    row it cannot take (broken markup, or an attribute over its parser's size limit,
    about 512 KB) it folds the rest of the file into one corrupt record. So the file is
    also read line by line (a dump holds one ``<row .../>`` per line) and every ``<row``
    line whose Id is not among the parsed rows is recovered from its text: a complete
    ``<row a="v" .../>`` line is read from its attributes (XML entities decoded), any
    other comes back as a rejected row with its text and whatever attributes can be
    picked out of it (so it reaches the right table)."""
    schema = ", ".join(f"`_{a}` string" for a in attributes)
    df = spark.read.format("xml").option("rowTag", "row").option("mode", "PERMISSIVE").schema(schema).load(str(path))
    parsed = df.select(*[F.col(f"_{a}").alias(a) for a in attributes]).where(F.col("Id").isNotNull())
    text = F.concat_ws("", *[F.col(a) for a in attributes])
    good = parsed.select(
        *attributes,
        F.coalesce(try_cast(F.col("Id"), "long"), F.abs(F.xxhash64("Id"))).alias(C.ROW),  # as readers.users_from_ids
        F.when(undecodable(text), F.lit("encoding error: undecodable bytes in row")).alias("_xml_error"),
        F.lit(None).cast("string").alias("_line"),
    )
    lines = read_lines(spark, path).where(F.col("_line").contains("<row"))
    lines = lines.withColumn("_lid", _unescape(F.regexp_extract("_line", r'\sId="([^"]*)"', 1)))
    unparsed = lines.join(parsed.select(F.col("Id").alias("_lid")).distinct(), "_lid", "left_anti")
    complete = F.col("_line").rlike(ROW_LINE)
    broken = unparsed.select(
        *[F.nullif(_unescape(F.regexp_extract("_line", rf'\s{a}="([^"]*)"', 1)), F.lit("")).alias(a)
          for a in attributes],
        F.coalesce(try_cast(F.col("_lid"), "long"), F.col(C.ROW)).alias(C.ROW),
        F.when(F.col("_lid") == "", F.concat(F.lit("XML row without an Id attribute (line "),
                                             F.col(C.ROW).cast("string"), F.lit(")")))
        .when(~complete, F.concat(F.lit("malformed XML row (cut off or broken markup) at line "),
                                  F.col(C.ROW).cast("string"))).alias("_xml_error"),
        F.substring("_line", 1, RAW_CHARS).alias("_line"),
    )
    return good.unionByName(broken).withColumn(C.SOURCE, F.lit(path.name))


def _unescape(col):
    """XML attribute text -> its value (the entities dumps use; ``&amp;`` last)."""
    for entity, char in ENTITIES:
        col = F.regexp_replace(col, entity, char)
    return col


def _type_name(col, names: dict[str, str]):
    return F.coalesce(F.element_at(F.create_map(*[F.lit(x) for kv in names.items() for x in kv]), col), F.lit("unknown"))


def stackexchange(spark: SparkSession, path: str | None) -> RawTables:
    root = require_files(path, FILES, "stackexchange")
    posts = _read_xml(spark, root / "Posts.xml",
                      ["Id", "PostTypeId", "ParentId", "OwnerUserId", "CreationDate", "Title", "Body", "Tags"])
    comments = _read_xml(spark, root / "Comments.xml", ["Id", "PostId", "UserId", "CreationDate"])
    votes = _read_xml(spark, root / "Votes.xml", ["Id", "PostId", "VoteTypeId", "UserId", "CreationDate"])
    users_x = _read_xml(spark, root / "Users.xml", ["Id", "DisplayName", "AboutMe", "CreationDate"])

    users = users_x.select(
        F.col("Id").alias(C.USER), F.col("DisplayName").alias("name"),
        strip_html(F.col("AboutMe")).alias("profile_text"), F.col("CreationDate").alias(C.CREATED_AT),
        F.col("_xml_error").alias(ERROR), "_line", C.SOURCE, C.ROW,
    )

    ptype = F.col("PostTypeId")
    tags = F.regexp_replace(F.regexp_replace(F.col("Tags"), r"^[<|]+|[>|]+$", ""), r"><|\|", "|")
    items = posts.where(~(ptype == "2") | ptype.isNull()).select(
        F.col("Id").alias(C.ITEM),
        F.col("OwnerUserId").alias(C.AUTHOR),
        F.col("Title").alias(C.TITLE),
        F.concat_ws(". ", F.col("Title"), strip_html(F.col("Body"))).alias(C.TEXT),
        tags.alias(C.TAGS),
        F.lit("question").alias(C.KIND),
        F.col("CreationDate").alias(C.CREATED_AT),
        F.when(F.col("_xml_error").isNotNull(), F.col("_xml_error")).when(
            (ptype != "1") | ptype.isNull(),
            F.concat(F.lit("post type "), F.coalesce(ptype, F.lit("null")), F.lit(" ("),
                     _type_name(ptype, POST_TYPES), F.lit(") is not a question")),
        ).alias(ERROR),
        "_line", C.SOURCE, C.ROW,
    )

    # Every post id -> (its question, its owner); a comment or vote on an answer counts
    # for the answer's question.
    post_map = posts.where(F.col("_xml_error").isNull()).select(
        F.col("Id").alias("_post"),
        F.when(ptype == "2", F.col("ParentId")).when(ptype == "1", F.col("Id")).alias("_question"),
        F.col("OwnerUserId").alias("_owner"),
        ptype.alias("_ptype"),
    )

    answers = posts.where(ptype == "2").select(
        F.col("OwnerUserId").alias(C.USER), F.col("ParentId").alias(C.ITEM), F.lit("answer").alias(C.EVENT),
        F.col("CreationDate").alias(C.TS), F.col("Id").alias(C.DETAIL),
        F.when(F.col("_xml_error").isNotNull(), F.col("_xml_error"))
        .when(F.col("OwnerUserId").isNull(), F.lit("answer by a deleted user (no OwnerUserId)")).alias(ERROR),
        "_line", C.SOURCE, C.ROW,
    )

    def on_post(df: DataFrame, event: str, user_col: str, extra_error) -> DataFrame:
        j = df.join(F.broadcast(post_map), df["PostId"] == post_map["_post"], "left")
        error = (
            F.when(F.col("_xml_error").isNotNull(), F.col("_xml_error"))
            .when(extra_error.isNotNull(), extra_error)
            .when(F.col(user_col).isNull(), F.lit(f"{event} by a deleted user (no UserId)"))
            .when(F.col("_post").isNull(), F.concat(F.lit(f"{event} on post "), F.col("PostId"),
                                                    F.lit(", which is not in Posts.xml (deleted)")))
            .when(F.col("_question").isNull(), F.concat(F.lit(f"{event} on post "), F.col("PostId"), F.lit(" of type "),
                                                        _type_name(F.col("_ptype"), POST_TYPES), F.lit(", not a question or answer")))
        )
        return j.select(
            F.col(user_col).alias(C.USER), F.coalesce(F.col("_question"), F.col("PostId")).alias(C.ITEM),
            F.lit(event).alias(C.EVENT), F.col("CreationDate").alias(C.TS), F.col("Id").alias(C.DETAIL),
            error.alias(ERROR), "_line", C.SOURCE, C.ROW, F.col("_owner"), F.col("_ptype"),
        )

    commented = on_post(comments, "comment", "UserId", F.lit(None).cast("string"))
    vtype = F.col("VoteTypeId")
    not_fav = F.when(
        (vtype != "5") | vtype.isNull(),
        F.concat(F.lit("vote type "), F.coalesce(vtype, F.lit("null")), F.lit(" ("), _type_name(vtype, VOTE_TYPES),
                 F.lit(") carries no user: not an interaction")),
    )
    favourites = on_post(votes, "favourite", "UserId", not_fav)
    interactions = answers.unionByName(commented.drop("_owner", "_ptype")).unionByName(
        favourites.drop("_owner", "_ptype"))

    # replied_to: answer author -> question owner; comment author -> commented post's owner.
    # Evidence of a reply: the replier's pair with the question, and for a comment on an
    # answer the answerer's pair too.
    def pair(user):
        return F.struct(user.alias(C.USER), F.col(C.ITEM).alias(C.ITEM))

    answer_edges = posts.where((ptype == "2") & F.col("_xml_error").isNull()).alias("a").join(
        post_map.alias("q"), F.col("a.ParentId") == F.col("q._post"), "inner"
    ).select(F.col("a.OwnerUserId").alias("src"), F.col("q._owner").alias("dst"), F.col("a.CreationDate").alias("ts"),
             F.col("a.Id").alias(C.DETAIL), F.col("a.ParentId").alias(C.ITEM))
    answer_edges = answer_edges.withColumn("pairs", F.array(pair(F.col("src"))))
    comment_edges = commented.where(F.col(ERROR).isNull()).select(
        F.col(C.USER).alias("src"), F.col("_owner").alias("dst"), F.col(C.TS).alias("ts"), C.DETAIL, C.ITEM,
        F.when(F.col("_ptype") == "2", F.array(pair(F.col(C.USER)), pair(F.col("_owner"))))
        .otherwise(F.array(pair(F.col(C.USER)))).alias("pairs"))
    replies = answer_edges.unionByName(comment_edges).where(F.col("src").isNotNull() & F.col("dst").isNotNull())
    edges = (
        replies.groupBy("src", "dst")
        .agg(F.count(F.lit(1)).cast("string").alias(C.WEIGHT), F.max("ts").alias(C.TS),
             F.array_sort(F.collect_list(F.struct(F.try_to_timestamp("ts").alias(C.TS), C.DETAIL, "pairs")))
             .alias(C.EVIDENCE))
        .select(
            C.SRC, C.DST, F.lit("replied_to").alias(C.KIND), C.WEIGHT, C.TS, C.EVIDENCE,
            F.lit("Posts.xml+Comments.xml (derived replies)").alias(C.SOURCE),
            F.abs(F.xxhash64("src", "dst")).alias(C.ROW), F.lit(None).cast("string").alias("_line"),
        )
    )
    return RawTables(users=users, items=items, interactions=interactions, edges=edges, integer_ids=True)
