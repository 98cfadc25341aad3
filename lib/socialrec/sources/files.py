"""The generic ``files`` adapter: bring your own CSV / JSON lines / Parquet exports.

Each table (users, items, interactions, edges) is configured under ``dataset.files``::

    dataset:
      name: myexport
      adapter: files
      files:
        interactions: {path: /data/events.csv, format: csv, options: {sep: ";"},
                       columns: {user_id: member, item_id: post, event: action, ts: time}}

``columns`` maps canonical names to the file's columns (unmapped canonical columns are
read from a column of the same name when present). Every value is read as a string and
validated by ingest like any other source. Rows are numbered in scan order: for a single
file that is the record number; for a folder of files, the position in Spark's scan.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec import columns as C
from socialrec.config import FileSourceConfig
from socialrec.readers import SourceError, number_rows
from socialrec.schemas import EDGES, INTERACTIONS, ITEMS, USERS
from socialrec.synthetic import RawTables

CANONICAL = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS, "edges": EDGES}


def read_table(spark: SparkSession, name: str, fs: FileSourceConfig) -> DataFrame:
    path = Path(fs.path).expanduser()
    if not path.exists():
        raise SourceError(f"dataset.files.{name}.path: {path} does not exist")
    reader = spark.read.format(fs.format)
    if fs.format == "csv":
        reader = reader.option("header", "true")
    for key, value in fs.options.items():
        reader = reader.option(key, value)
    df = reader.load(str(path))
    wanted = [c for c in CANONICAL[name].columns if c != C.DATASET]
    cols = []
    for canon in wanted:
        src = fs.columns.get(canon, canon)
        if src in df.columns:
            cols.append(F.col(f"`{src}`").cast("string").alias(canon))
    missing_maps = [f"{k} -> {v}" for k, v in fs.columns.items() if v not in df.columns]
    if missing_maps:
        raise SourceError(f"dataset.files.{name}.columns: {', '.join(missing_maps)}: no such column in {path} "
                          f"(it has {', '.join(df.columns)})")
    out = number_rows(df.select(*cols)) if cols else number_rows(df.select())
    return out.withColumn(C.SOURCE, F.lit(path.name))


def files(spark: SparkSession, tables: dict[str, FileSourceConfig]) -> RawTables:
    read = {name: read_table(spark, name, fs) for name, fs in tables.items()}
    return RawTables(users=read["users"], items=read["items"], interactions=read["interactions"],
                     edges=read.get("edges"))
