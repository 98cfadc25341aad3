"""Schemas of every canonical table, declared once, with their merge keys.

Readers apply these schemas, writers project to them (``conform``), and the Delta
tables are created from them, so a column that is not declared here never reaches a
table, and a NOT NULL column rejects a null at write time.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from socialrec.core import columns as C


def _f(name: str, dtype, nullable: bool = True) -> StructField:
    return StructField(name, dtype, nullable)


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, schema, merge keys and partition columns."""

    name: str
    schema: StructType
    keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]


USERS = Table(
    "users",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.USER, StringType(), False),
            _f("name", StringType()),
            _f("profile_text", StringType()),
            _f(C.CREATED_AT, TimestampType()),
        ]
    ),
    keys=(C.DATASET, C.USER),
    partition_by=(C.DATASET,),
)

ITEMS = Table(
    "items",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.AUTHOR, StringType()),
            _f(C.TITLE, StringType()),
            _f(C.TEXT, StringType()),
            _f(C.TAGS, ArrayType(StringType())),
            _f(C.KIND, StringType()),
            _f(C.PARENT, StringType()),
            _f(C.CREATED_AT, TimestampType()),
            _f(C.CONTENT_HASH, StringType()),
        ]
    ),
    keys=(C.DATASET, C.ITEM),
    partition_by=(C.DATASET,),
)

INTERACTIONS = Table(
    "interactions",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.USER, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.EVENT, StringType(), False),
            _f(C.WEIGHT, DoubleType(), False),
            _f(C.TS, TimestampType(), False),
            _f(C.DETAIL, StringType()),
        ]
    ),
    keys=(C.DATASET, C.USER, C.ITEM, C.EVENT, C.TS, C.DETAIL),
    partition_by=(C.DATASET,),
)

# An edge derived from interactions (Stack Exchange's replied_to: A answered or commented
# on B's post) lists the events that made it, each with the (user, item) pairs it
# reveals: a model may see the event only if all of them are in its train part
# (socialrec.features.graph.train_edges). Sorted by time, then id.
EVIDENCE_TYPE = ArrayType(StructType([
    _f(C.TS, TimestampType()),
    _f(C.DETAIL, StringType()),
    _f("pairs", ArrayType(StructType([_f(C.USER, StringType()), _f(C.ITEM, StringType())]))),
]))

EDGES = Table(
    "edges",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.SRC, StringType(), False),
            _f(C.DST, StringType(), False),
            _f(C.KIND, StringType(), False),
            _f(C.WEIGHT, DoubleType(), False),
            _f(C.TS, TimestampType()),
            _f(C.EVIDENCE, EVIDENCE_TYPE),
        ]
    ),
    keys=(C.DATASET, C.SRC, C.DST, C.KIND),
    partition_by=(C.DATASET,),
)

REJECTS = Table(
    "rejects",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f("table", StringType(), False),
            _f("source", StringType(), False),
            _f("row", LongType(), False),
            _f("field", StringType()),
            _f("reason", StringType(), False),
            _f("raw", StringType()),
        ]
    ),
    keys=(C.DATASET, "table", "source", "row"),
    partition_by=(C.DATASET,),
)

SPLITS = Table(
    "splits",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.SPLIT, StringType(), False),
            _f(C.SEED, IntegerType(), False),
            _f(C.PART, StringType(), False),
            _f(C.USER, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.WEIGHT, DoubleType(), False),
            _f(C.TS, TimestampType(), False),
            _f(C.N_EVENTS, IntegerType(), False),
        ]
    ),
    keys=(C.DATASET, C.SPLIT, C.SEED, C.USER, C.ITEM),
    partition_by=(C.DATASET,),
)

RECOMMENDATIONS = Table(
    "recommendations",
    StructType(
        [
            _f(C.RUN_ID, StringType(), False),
            _f(C.DATASET, StringType(), False),
            _f(C.SPLIT, StringType(), False),
            _f(C.MODEL, StringType(), False),
            _f(C.USER, StringType(), False),
            _f(C.RANK, IntegerType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.SCORE, DoubleType(), False),
            _f("components", MapType(StringType(), DoubleType())),
            _f("explanation", StringType()),
            # template | model | fallback:<check> (socialrec.explain); null: the model's own, unexplained yet
            _f("explained_by", StringType()),
            # what the explanation may say: the strongest signal, similar past items and people of the
            # user's network who engaged (ids), how many did, how many train users engaged
            _f("reasons", StructType([_f("signal", StringType()), _f("similar", ArrayType(StringType())),
                                      _f("people", ArrayType(StringType())), _f("network", IntegerType()),
                                      _f("engaged", IntegerType())])),
        ]
    ),
    keys=(C.RUN_ID, C.MODEL, C.USER, C.RANK),
)

METRICS = Table(
    "metrics",
    StructType(
        [
            _f(C.RUN_ID, StringType(), False),
            _f(C.DATASET, StringType(), False),
            _f(C.SPLIT, StringType(), False),
            _f(C.MODEL, StringType(), False),
            _f(C.SEGMENT, StringType(), False),
            _f(C.METRIC, StringType(), False),
            _f(C.K, IntegerType(), False),
            _f(C.VALUE, DoubleType(), False),  # the seeds' mean on a summary row
            _f("n_users", LongType()),
            _f(C.SEED, IntegerType()),  # the split's seed; null on a summary row over seeds
            _f("std", DoubleType()),  # summary rows: sample standard deviation over the seeds
            _f("n_seeds", IntegerType()),  # summary rows: how many seeds
        ]
    ),
    keys=(C.RUN_ID, C.DATASET, C.SPLIT, C.SEED, C.MODEL, C.SEGMENT, C.METRIC, C.K),
)

RUNS = Table(
    "runs",
    StructType(
        [
            _f(C.RUN_ID, StringType(), False),
            _f(C.DATASET, StringType()),
            _f("command", StringType()),
            _f("status", StringType(), False),
            _f("started_at", TimestampType()),
            _f("finished_at", TimestampType()),
            _f("config", StringType()),
            _f("code_version", StringType()),
            _f("timings", MapType(StringType(), DoubleType())),
            _f("error", StringType()),
            _f("params", MapType(StringType(), StringType())),  # values chosen at run time (e.g. tuned ALS)
        ]
    ),
    keys=(C.RUN_ID,),
)

TOKENS = Table(
    "tokens",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f("engine", StringType(), False),
            _f("tokens", ArrayType(StringType()), False),
            _f("n_tokens", IntegerType(), False),
        ]
    ),
    keys=(C.DATASET, C.ITEM),
    partition_by=(C.DATASET,),
)

WORD_VECTORS = Table(
    "word_vectors",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f("engine", StringType(), False),
            _f("word", StringType(), False),
            _f("vector", ArrayType(FloatType()), False),
            _f("count", LongType(), False),
        ]
    ),
    keys=(C.DATASET, "engine", "word"),
    partition_by=(C.DATASET,),
)

ITEM_W2V = Table(
    "item_w2v",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f("engine", StringType(), False),
            _f("variant", StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f("vector", ArrayType(FloatType()), False),
        ]
    ),
    keys=(C.DATASET, "engine", "variant", C.ITEM),
    partition_by=(C.DATASET,),
)

ITEM_EMBEDDINGS = Table(
    "item_embeddings",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.MODEL, StringType(), False),
            _f("dim", IntegerType(), False),
            _f("vector", ArrayType(FloatType())),  # null: the item has no text to embed
            _f(C.CONTENT_HASH, StringType(), False),  # of the text embedded and its truncation length
            _f("computed_at", TimestampType(), False),
        ]
    ),
    keys=(C.DATASET, C.ITEM, C.MODEL),
    partition_by=(C.DATASET,),
)

ID_MAP = Table(
    "id_map",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f("kind", StringType(), False),  # user | item
            _f("id", StringType(), False),
            _f("idx", IntegerType(), False),  # ALS's int id; stable across runs
        ]
    ),
    keys=(C.DATASET, "kind", "id"),
    partition_by=(C.DATASET,),
)

NODE_EMBEDDINGS = Table(
    "node_embeddings",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.USER, StringType(), False),
            _f("vector", ArrayType(FloatType()), False),
            _f("degree", IntegerType()),  # out-degree in the graph the walks ran on
            _f("computed_at", TimestampType(), False),
        ]
    ),
    keys=(C.DATASET, C.USER),
    partition_by=(C.DATASET,),
)

USER_PROFILES = Table(
    "user_profiles",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f("source", StringType(), False),  # history (e_u) | social (neighbour-aggregated h_u)
            _f(C.USER, StringType(), False),
            _f(C.MODEL, StringType(), False),  # the item embedding model the vectors live in
            _f("vector", ArrayType(FloatType()), False),
            _f("n_items", IntegerType()),  # history: the user's items with a vector
            _f("n_neighbours", IntegerType()),  # social: neighbours aggregated in the last hop
            _f("hops", IntegerType()),
            _f("computed_at", TimestampType(), False),
        ]
    ),
    keys=(C.DATASET, "source", C.USER),
    partition_by=(C.DATASET,),
)

# The streaming path (socialrec.stream): new items placed in the feeds of the users whose
# profiles they match, at most stream.per_user a user, gone after stream.expiry_hours.
FRESH_RECOMMENDATIONS = Table(
    "fresh_recommendations",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.USER, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f(C.SCORE, DoubleType(), False),
            _f("reason", StringType(), False),
            _f("arrived_at", TimestampType(), False),  # when the item's row was committed to items
            _f("scored_at", TimestampType(), False),  # when this row was written: latency = scored_at - arrived_at
        ]
    ),
    keys=(C.DATASET, C.USER, C.ITEM),
    partition_by=(C.DATASET,),
)

# Engagement per item in time buckets of stream.trend_bucket_minutes, summed by the
# streaming path from new interactions; velocity over a sliding window is a sum of
# buckets (socialrec.stream.velocity).
TRENDING = Table(
    "trending",
    StructType(
        [
            _f(C.DATASET, StringType(), False),
            _f(C.ITEM, StringType(), False),
            _f("bucket_start", TimestampType(), False),
            _f("events", LongType(), False),
            _f(C.WEIGHT, DoubleType(), False),
            _f("updated_at", TimestampType(), False),
        ]
    ),
    keys=(C.DATASET, C.ITEM, "bucket_start"),
    partition_by=(C.DATASET,),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (USERS, ITEMS, INTERACTIONS, EDGES, REJECTS, SPLITS, RECOMMENDATIONS, METRICS, RUNS, TOKENS,
              WORD_VECTORS, ITEM_W2V, ITEM_EMBEDDINGS, ID_MAP, NODE_EMBEDDINGS, USER_PROFILES,
              FRESH_RECOMMENDATIONS, TRENDING)
}


def conform(df: DataFrame, table: Table, keep: tuple[str, ...] = ()) -> DataFrame:
    """Project ``df`` to ``table``'s schema: declared columns, in order, cast to type.

    A declared column that ``df`` lacks is added as null (and then fails at write time
    if the column is NOT NULL); undeclared columns are dropped, except those in ``keep``
    (e.g. an operation column a MERGE reads), which follow as they are.
    """
    present = set(df.columns)
    cols: list[Column] = []
    for field in table.schema.fields:
        col = F.col(field.name) if field.name in present else F.lit(None)
        cols.append(col.cast(field.dataType).alias(field.name))
    return df.select(*cols, *[F.col(f"`{c}`") for c in keep])
