"""The split stage: a protocol's train and test pairs into the ``splits`` table."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.schemas import INTERACTIONS, SPLITS
from socialrec.core.storage import Storage
from socialrec.data.split import positives, split, to_pairs
from socialrec.stages.inputs import read_split

log = logging.getLogger(__name__)


def split_stage(
    spark: SparkSession, storage: Storage, *, dataset: str, protocol: str, ratio: float, seed: int,
    cold_share: float = 0.2, cold_history: int = 2, cut: str | None = None,
) -> dict[str, int]:
    """Split the dataset's (user, item) pairs into train and test; sync the ``splits`` slice."""
    pairs = to_pairs(positives(storage.read(spark, INTERACTIONS, dataset)))
    train, test = split(pairs, protocol, ratio, seed, cold_share=cold_share, cold_history=cold_history, cut=cut)
    both = train.withColumn(C.PART, F.lit("train")).unionByName(test.withColumn(C.PART, F.lit("test")))
    both = both.withColumn(C.DATASET, F.lit(dataset)).withColumn(C.SPLIT, F.lit(protocol)).withColumn(
        C.SEED, F.lit(seed)
    )
    storage.merge(both, SPLITS, scope={C.DATASET: dataset, C.SPLIT: protocol, C.SEED: seed})
    parts = {
        r[C.PART]: r["n"]
        for r in read_split(spark, storage, dataset=dataset, protocol=protocol, seed=seed)
        .groupBy(C.PART)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    log.info("split: %s seed %d: %d train / %d test pairs", protocol, seed, parts.get("train", 0), parts.get("test", 0))
    return {"train": parts.get("train", 0), "test": parts.get("test", 0)}
