"""The ingest stage: the dataset's adapter, validation, the canonical tables and rejects."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import DatasetConfig
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, REJECTS, USERS
from socialrec.core.storage import Storage
from socialrec.data.ingest import LOW_RATING, validate_dataset
from socialrec.data.readers import SourceError, read_failure
from socialrec.data.sources import load_raw

log = logging.getLogger(__name__)


def ingest_stage(spark: SparkSession, storage: Storage, dataset: DatasetConfig) -> dict:
    """Load the dataset's raw rows, validate them, sync the canonical tables and rejects."""
    raw = load_raw(spark, dataset)
    out = validate_dataset(raw, dataset)
    try:
        result = _write_ingested(spark, storage, dataset.name, out)
        # Undated files stamped from conf (constants.ts): said in the run summary.
        result["dated_from_conf"] = {t: fs.constants[C.TS] for t, fs in dataset.files.items() if C.TS in fs.constants}
        return result
    except Exception as exc:  # a source file Spark could not decode: name it, not a JVM trace
        failure = read_failure(exc)
        if failure is None:
            raise
        raise SourceError(f"dataset {dataset.name}: cannot read {failure}") from None
    finally:
        out.release()


def _write_ingested(spark: SparkSession, storage: Storage, dataset_name: str, out) -> dict:
    scope = {C.DATASET: dataset_name}
    # One row per (table, source file): read = accepted + rejected, for the run summary.
    files = [r.asDict() for r in out.stats.orderBy("table", "source").collect()]
    for f in files:
        log.info("ingest: %s from %s: %d read, %d accepted, %d rejected",
                 f["table"], f["source"], f["read"], f["accepted"], f["rejected"])
    # Nothing to recommend from: stop before any table is touched, naming the sources.
    for table in (USERS.name, ITEMS.name, INTERACTIONS.name):
        if not any(f["table"] == table and f["accepted"] for f in files):
            seen = [f"{f['source']}: {f['read']} read, {f['rejected']} rejected" for f in files if f["table"] == table]
            why = "; ".join(seen) if seen else "no rows read (empty sources)"
            top = out.rejects.where(F.col("table") == table).groupBy("reason").count() \
                .orderBy(F.desc("count"), "reason").limit(1).collect()
            hint = f"; most common reason: {top[0].reason}" if top else ""
            raise SourceError(f"dataset {dataset_name}: no {table} accepted ({why}{hint})")
    counts: dict[str, int] = {}
    for table, df in (
        (USERS, out.users),
        (ITEMS, out.items),
        (INTERACTIONS, out.interactions),
        (EDGES, out.edges),
        (REJECTS, out.rejects),
    ):
        storage.merge(df, table, scope=scope)
        counts[table.name] = storage.read(spark, table, dataset_name).count()
        log.info("ingest: %s has %d rows for dataset %s", table.name, counts[table.name], dataset_name)
    # Ratings that are no positive (dataset.positive_at), for the summary. (Items without
    # text are counted once, by the tokenize stage that skips them.)
    low = storage.read(spark, INTERACTIONS, dataset_name).where(F.col(C.EVENT) == LOW_RATING).count()
    if low:
        log.info("ingest: %d ratings below dataset.positive_at kept as %s", low, LOW_RATING)
    return {"tables": counts, "files": files, "low_ratings": low}
