"""The evaluation segments: which test pairs each segment of the metrics holds."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import SEGMENT_NAMES
from socialrec.core.schemas import EDGES
from socialrec.core.storage import Storage
from socialrec.data.split import newest_pair
from socialrec.features import graph as G


def evaluation_segments(spark: SparkSession, storage: Storage, *, dataset: str, train: DataFrame, test: DataFrame,
                        segments: list[str], light_share: float = 0.25) -> tuple[DataFrame, dict[str, str]]:
    """The test pairs of each segment, rows (segment, user, item), and what defined them:

    * ``all`` — every test pair;
    * ``cold_items`` — test pairs of items without a train pair;
    * ``light_users`` — test pairs of the ``light_share`` of test users with the fewest
      train pairs (every user at or below that quantile of the train-pair counts);
    * ``with_friends`` — test pairs of users with an outgoing edge (follow, friend, ...)
      that the models trained on ``train`` see;
    * ``light_with_friends`` — both: few train pairs but some friends, where the social
      signal has the most to add."""
    parts = []

    def seg(name: str, df: DataFrame) -> DataFrame:
        return df.select(F.lit(name).alias(C.SEGMENT), C.USER, C.ITEM)

    info: dict[str, str] = {}
    found: dict[str, DataFrame | None] = {}

    def light() -> DataFrame | None:
        if "light" not in found:
            counts = (test.select(C.USER).distinct()
                      .join(train.groupBy(C.USER).agg(F.count(F.lit(1)).alias("_n")), C.USER, "left")
                      .fillna(0, ["_n"]))
            cut = counts.agg(F.percentile_approx("_n", light_share, 100_000)).first()[0]
            found["light"] = None if cut is None else counts.where(F.col("_n") <= cut).select(C.USER)
            if cut is not None:
                info["light_users.max_train_pairs"] = str(cut)
        return found["light"]

    def social() -> DataFrame:  # the edges the models saw (see social_graph)
        edges = G.train_edges(storage.read(spark, EDGES, dataset), train, newest_pair(train))
        return edges.select(F.col(C.SRC).alias(C.USER)).distinct()

    for name in segments:
        if name == "all":
            parts.append(seg(name, test))
        elif name == "cold_items":
            parts.append(seg(name, test.join(train.select(C.ITEM).distinct(), C.ITEM, "left_anti")))
        elif name == "light_users":
            if light() is None:  # no test users
                continue
            parts.append(seg(name, test.join(light(), C.USER, "left_semi")))
        elif name == "with_friends":
            parts.append(seg(name, test.join(social(), C.USER, "left_semi")))
        elif name == "light_with_friends":
            if light() is None:
                continue
            parts.append(seg(name, test.join(light(), C.USER, "left_semi").join(social(), C.USER, "left_semi")))
        else:
            raise ValueError(f"evaluation.segments: unknown segment {name!r}; known: {', '.join(SEGMENT_NAMES)}")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out, info
