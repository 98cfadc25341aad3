"""Source adapters by ``dataset.adapter`` (default ``dataset.name``): each returns
``RawTables`` — string columns named like the canonical ones, plus ``_source`` (file),
``_row`` (row number) and, where the reader already knows a row is bad, ``_error`` —
for ``socialrec.data.ingest.validate``."""

from __future__ import annotations

import dataclasses

from pyspark.sql import SparkSession

from socialrec.core.choices import DATASETS
from socialrec.core.config import ConfigError, DatasetConfig
from socialrec.data.contract import RawTables
from socialrec.data.synthetic import generate


def load_raw(spark: SparkSession, dataset: DatasetConfig) -> RawTables:
    """The raw tables of the configured dataset (``dataset.adapter``, default its name)."""
    adapter = dataset.adapter or dataset.name
    if adapter == "synthetic":
        # SyntheticConfig's fields are generate()'s keyword arguments, one for one.
        return generate(spark, seed=dataset.seed, **dataclasses.asdict(dataset.synthetic))
    if adapter == "movielens-100k":
        from socialrec.data.sources.movielens import movielens_100k

        return movielens_100k(spark, dataset.path)
    if adapter == "movielens-latest":
        from socialrec.data.sources.movielens import movielens_latest

        return movielens_latest(spark, dataset.path)
    if adapter == "lastfm-hetrec":
        from socialrec.data.sources.lastfm import lastfm_hetrec

        return lastfm_hetrec(spark, dataset.path)
    if adapter == "stackexchange":
        from socialrec.data.sources.stackexchange import stackexchange

        return stackexchange(spark, dataset.path)
    if adapter == "files":
        from socialrec.data.sources.files import files

        return files(spark, dataset.files, base=dataset.path)
    if adapter == "amazon-reviews":
        from socialrec.data.sources.amazon import amazon_reviews

        return amazon_reviews(spark, dataset)
    if adapter == "mind":
        from socialrec.data.sources.mind import mind

        return mind(spark, dataset.path)
    raise ConfigError(f"dataset.adapter: unknown dataset {adapter!r}; known: {', '.join(DATASETS)}")
