"""Source adapters by ``dataset.name``: each returns ``RawTables`` for ingest."""

from __future__ import annotations

import dataclasses

from pyspark.sql import SparkSession

from socialrec.config import DATASETS, ConfigError, DatasetConfig
from socialrec.synthetic import RawTables, generate

def load_raw(spark: SparkSession, dataset: DatasetConfig) -> RawTables:
    """The raw tables of the configured dataset."""
    if dataset.name == "synthetic":
        # SyntheticConfig's fields are generate()'s keyword arguments, one for one.
        return generate(spark, seed=dataset.seed, **dataclasses.asdict(dataset.synthetic))
    raise ConfigError(f"dataset.name: unknown dataset {dataset.name!r}; known: {', '.join(DATASETS)}")
