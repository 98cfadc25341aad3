"""Source adapters by ``dataset.name``: each returns ``RawTables`` for ingest."""

from __future__ import annotations

from pyspark.sql import SparkSession

from socialrec.config import ConfigError, DatasetConfig
from socialrec.synthetic import RawTables, generate

SOURCES = ("synthetic",)


def load_raw(spark: SparkSession, dataset: DatasetConfig) -> RawTables:
    """The raw tables of the configured dataset."""
    if dataset.name == "synthetic":
        s = dataset.synthetic
        return generate(
            spark,
            users=s.users,
            posts=s.posts,
            topics=s.topics,
            follows_mean=s.follows_mean,
            interactions_per_user_mean=s.interactions_per_user_mean,
            homophily=s.homophily,
            social_share=s.social_share,
            popularity_skew=s.popularity_skew,
            corrupt_rate=s.corrupt_rate,
            days=s.days,
            end=s.end,
            partitions=s.partitions,
            seed=dataset.seed,
        )
    raise ConfigError(f"dataset.name: unknown dataset {dataset.name!r}; known: {', '.join(SOURCES)}")
