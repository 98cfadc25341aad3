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

Nothing is dropped on the way in: CSV and JSON are read in PERMISSIVE mode (other modes
are refused), a record the parser cannot cut into the file's columns (a wrong
delimiter, a cut-off quote, broken JSON) keeps its text and goes to rejects with the
reason, as does a record with undecodable bytes; a zero-byte file or an unreadable one
(a truncated Parquet footer) stops ingest with a message naming it. Columns beyond the
canonical ones are ignored (and logged).
"""

from __future__ import annotations

import logging
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from socialrec.core import columns as C
from socialrec.core.config import FileSourceConfig
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, USERS
from socialrec.data.contract import RawTables
from socialrec.data.readers import ERROR, SourceError, failure_cause, number_rows, refuse_empty, undecodable

log = logging.getLogger(__name__)
CORRUPT = "_corrupt_record"  # the text of a record the reader could not parse
CANONICAL = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS, "edges": EDGES}


def read_table(spark: SparkSession, name: str, fs: FileSourceConfig) -> DataFrame:
    what = f"dataset.files.{name}"
    remote = "://" in fs.path
    path = fs.path if remote else Path(fs.path).expanduser()
    if not remote:
        if not path.exists():
            raise SourceError(f"{what}.path: {path} does not exist")
        refuse_empty(path, f"{what}.path")
    mode = str(fs.options.get("mode", "PERMISSIVE")).upper()
    if mode != "PERMISSIVE":
        raise SourceError(f"{what}.options.mode: {mode} would drop or stop at bad records; only PERMISSIVE "
                          "(the default) keeps every record, the bad ones going to rejects")
    try:
        df, error = _load(spark, fs, str(path))
    except (AnalysisException, Py4JJavaError) as exc:
        raise SourceError(f"{what}.path: {path} cannot be read as {fs.format}: {failure_cause(exc)}") from None
    # evidence: only adapters that derive edges from interactions write it (files' edges stand alone)
    wanted = [c for c in CANONICAL[name].columns if c not in (C.DATASET, C.EVIDENCE)]
    have = [c for c in df.columns if c != CORRUPT]
    missing_maps = [f"{k} -> {v}" for k, v in fs.columns.items() if v not in have]
    if missing_maps:
        raise SourceError(f"{what}.columns: {', '.join(missing_maps)}: no such column in {path} "
                          f"(it has {', '.join(have) or 'no columns'})")
    cols = {canon: F.col(f"`{fs.columns.get(canon, canon)}`").cast("string")
            for canon in wanted if fs.columns.get(canon, canon) in have}
    ignored = sorted(set(have) - {fs.columns.get(c, c) for c in cols})
    if ignored:  # schema rule: columns beyond the canonical ones are not read (see docs/tables.md, "Guarantees")
        log.info("%s: %s: column(s) %s are not canonical and are ignored", what, path, ", ".join(ignored))
    if fs.format != "parquet":
        bad_text = F.concat_ws("", *cols.values()) if cols else F.lit("")
        error = F.coalesce(error, F.when(undecodable(bad_text),
                                         F.lit("encoding error: undecodable bytes in record")))
    # The raw row for rejects: the unparsed text, else every column of the record. (Using
    # all columns also keeps Spark's CSV column pruning from skipping the field-count check.)
    whole = F.to_json(F.struct(*[F.col(f"`{c}`") for c in have])) if have else F.lit(None).cast("string")
    line = F.coalesce(F.col(CORRUPT), whole) if CORRUPT in df.columns else whole
    out = df.select(*[c.alias(k) for k, c in cols.items()], error.alias(ERROR), line.alias("_line"))
    return number_rows(out).withColumn(C.SOURCE, F.lit(Path(str(path)).name))


def _load(spark: SparkSession, fs: FileSourceConfig, location: str) -> tuple[DataFrame, Column]:
    """The file as string-typed columns (+ ``_corrupt_record`` for text formats) and the
    reader's error for each record (null when it read the record whole)."""
    none = F.lit(None).cast("string")
    options = {k: v for k, v in fs.options.items() if k.lower() != "mode"}
    if fs.format == "csv":
        base = spark.read.options(**options).option("header", "true")
        header = base.csv(location).columns  # reads the header line only
        if not header:
            raise SourceError(f"{location}: no header line")
        schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
        df = (base.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
              .schema(schema).csv(location))
        sep = options.get("sep", options.get("delimiter", ","))
        return df, F.when(F.col(CORRUPT).isNotNull(),
                          F.lit(f"malformed CSV record: expected {len(header)} fields separated by {sep!r}"))
    if fs.format == "json":
        df = (spark.read.options(**options).option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", CORRUPT).json(location))
        if CORRUPT not in df.columns:
            return df, none
        return df, F.when(undecodable(F.col(CORRUPT)),
                          F.lit("encoding error: undecodable bytes in record")) \
            .when(F.col(CORRUPT).isNotNull(), F.lit("malformed JSON record"))
    return spark.read.options(**options).format(fs.format).load(location), none


def files(spark: SparkSession, tables: dict[str, FileSourceConfig]) -> RawTables:
    read = {name: read_table(spark, name, fs) for name, fs in tables.items()}
    return RawTables(users=read["users"], items=read["items"], interactions=read["interactions"],
                     edges=read.get("edges"))
