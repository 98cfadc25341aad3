"""The generic ``files`` adapter: bring your own CSV / text / JSON lines / Parquet exports.

Each table (users, items, interactions, edges) is configured under ``dataset.files``;
only ``interactions`` is required::

    dataset:
      name: myexport
      adapter: files
      files:
        interactions: {path: /data/ratings.txt, options: {header: "false"},
                       columns: {user_id: 0, item_id: 1, weight: 2}, constants: {event: rating},
                       timestamp: unix-seconds}
        edges: {path: /data/trust.txt, format: text, columns: {src: 0, dst: 1}, constants: {kind: trust}}

``columns`` maps canonical names to the file's columns: a name, a dotted path into a
nested JSON record (``review.text``), or, in a file without a header line (``header:
"false"``, or ``format: text``), the column's position from 0 (Spark's ``_c0``, ``_c1``
… work too). Unmapped canonical columns are read from a column of the same name when
present. ``constants`` gives a value for a canonical column the file does not have
(the event name, the edge kind, a date for undated data); a required column that is
neither in the file nor a constant stops at once, naming it and listing what the file
has. ``timestamp`` says how the file writes time (``auto``, ``iso``, ``unix-seconds``,
``unix-millis`` or a Spark datetime pattern); a value that does not parse so is a
reject with the raw value.

Formats: ``csv`` (any delimiter Spark's CSV reader takes, multi-character ``::`` and
tab included), ``text`` (lines cut at a regular expression, ``options.sep``, default
runs of white space), ``json`` (JSON lines) and ``parquet``. Every value is read as a
string and validated by ingest like any other source. Rows are numbered in scan order:
for a single file that is the record (line) number; for a folder of files, the position
in Spark's scan.

Without a users or items file, the users are the ids the interactions and edges name and
the items those the interactions name, with no text: the collaborative and social
models use them, the text stages skip them.

Nothing is dropped on the way in: CSV and JSON are read in PERMISSIVE mode (other modes
are refused), a record the parser cannot cut into the file's columns (a wrong
delimiter, a cut-off quote, broken JSON, a text line with too few fields) keeps its text
and goes to rejects with the reason, as does a record with undecodable bytes; a
zero-byte file or an unreadable one (a truncated Parquet footer) stops ingest with a
message naming it. Columns beyond the canonical ones are ignored (and logged).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from socialrec.core import columns as C
from socialrec.core.config import FileSourceConfig
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, USERS
from socialrec.data.contract import RawTables
from socialrec.data.readers import (ERROR, SourceError, failure_cause, items_from_ids, number_rows, read_lines,
                                    refuse_empty, undecodable, users_from_ids)

log = logging.getLogger(__name__)
CORRUPT = "_corrupt_record"  # the text of a record the reader could not parse
CANONICAL = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS, "edges": EDGES}
# What a table cannot do without: from a column of the file or from ``constants``.
REQUIRED = {"users": (C.USER,), "items": (C.ITEM,), "interactions": (C.USER, C.ITEM, C.EVENT, C.TS),
            "edges": (C.SRC, C.DST, C.KIND)}
POSITION = re.compile(r"^[0-9]+$")
WHITESPACE = r"\s+"


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


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
    # evidence: only adapters that derive edges from interactions write it (files' edges stand alone)
    wanted = [c for c in CANONICAL[name].columns if c not in (C.DATASET, C.EVIDENCE)]
    try:
        df, error = _load(spark, fs, str(path), what, wanted)
    except (AnalysisException, Py4JJavaError) as exc:
        raise SourceError(f"{what}.path: {path} cannot be read as {fs.format}: {failure_cause(exc)}") from None
    have = [c for c in df.columns if c != CORRUPT]
    listing = f"(it has {', '.join(have) or 'no columns'})"
    unknown = sorted(set(fs.columns) - set(wanted)) + sorted(set(fs.constants) - set(wanted))
    if unknown:
        raise SourceError(f"{what}: {', '.join(unknown)} is not a column of the {name} table "
                          f"(its columns: {', '.join(wanted)})")
    source_of = {canon: _in_file(df, have, col) for canon, col in fs.columns.items()}
    unmapped = [k for k, v in source_of.items() if v is None]
    if unmapped:
        missing_maps = [f"{k} -> {fs.columns[k]}" for k in unmapped]
        by_position = any(POSITION.match(str(fs.columns[k])) for k in unmapped)
        with_header = fs.format == "csv" and _truthy(fs.options.get("header", "true"))
        hint = "; a file without a header line names its columns by position: set options.header to \"false\"" \
            if by_position and with_header else ""
        raise SourceError(f"{what}.columns: {', '.join(missing_maps)}: no such column in {path} {listing}{hint}")
    for canon in wanted:
        if canon not in source_of and canon in have:
            source_of[canon] = canon
    both = sorted(set(source_of) & set(fs.constants))
    if both:
        raise SourceError(f"{what}: {', '.join(both)} comes from the file ({source_of[both[0]]}) and from "
                          f"{what}.constants; give one")
    absent = [c for c in REQUIRED[name] if c not in source_of and c not in fs.constants]
    if absent:
        raise SourceError(f"{what}: {path} has no {' / '.join(absent)} column {listing}: map one in "
                          f"{what}.columns or give a value for every row in {what}.constants "
                          f"(e.g. {_example(absent[0])})")
    cols = {canon: _as_text(df, src) for canon, src in source_of.items()}
    cols.update({canon: F.lit(str(value)) for canon, value in fs.constants.items()})
    used = {src.strip("`") if src.startswith("`") else src.split(".")[0] for src in source_of.values()}
    ignored = sorted(set(have) - used)
    if ignored:  # schema rule: columns beyond the canonical ones are not read (see docs/tables.md, "Guarantees")
        log.info("%s: %s: column(s) %s are not canonical and are ignored", what, path, ", ".join(ignored))
    if fs.format != "parquet":
        bad_text = F.concat_ws("", *[cols[c] for c in source_of]) if source_of else F.lit("")
        error = F.coalesce(error, F.when(undecodable(bad_text),
                                         F.lit("encoding error: undecodable bytes in record")))
    # The raw row for rejects: the unparsed text, else every column of the record. (Using
    # all columns also keeps Spark's CSV column pruning from skipping the field-count check.)
    whole = F.to_json(F.struct(*[F.col(f"`{c}`") for c in have])) if have else F.lit(None).cast("string")
    line = F.coalesce(F.col(CORRUPT), whole) if CORRUPT in df.columns else whole
    if "_line" in df.columns:  # text format: the line itself
        line = F.col("_line")
    out = df.select(*[c.alias(k) for k, c in cols.items()], error.alias(ERROR), line.alias("_line"),
                    *([C.ROW] if C.ROW in df.columns else []))
    if C.ROW not in out.columns:
        out = number_rows(out)
    return out.withColumn(C.SOURCE, F.lit(Path(str(path)).name))


def under_base(fs: FileSourceConfig, base: str) -> FileSourceConfig:
    """``fs`` with a relative path taken under the folder (or URI) ``base``."""
    if "://" in fs.path or Path(fs.path).expanduser().is_absolute():
        return fs
    joined = f"{base.rstrip('/')}/{fs.path}" if "://" in base else str(Path(base).expanduser() / fs.path)
    return dataclasses.replace(fs, path=joined)


def _as_text(df: DataFrame, src: str) -> Column:
    """The column as a string; a JSON array of strings (a list of description paragraphs)
    as its elements joined by a space."""
    if isinstance(df.select(F.col(src)).schema[0].dataType, ArrayType):
        return F.array_join(F.col(src).cast("array<string>"), " ")
    return F.col(src).cast("string")


def _example(column: str) -> str:
    return {C.EVENT: "event: rating", C.TS: "ts: '2011-05-01'", C.KIND: "kind: trust"}.get(column, f"{column}: ...")


def _in_file(df: DataFrame, have: list[str], col: str) -> str | None:
    """The column expression for a mapping: a column name, a position in a header-less
    file (``3`` -> ``_c3``), or a dotted path into a nested record; None if absent."""
    col = str(col)
    if col in have:
        return f"`{col}`"
    if POSITION.match(col) and f"_c{col}" in have:
        return f"`_c{col}`"
    if "." in col and col.split(".")[0] in have:
        try:
            df.select(F.col(col)).schema  # resolves the path without reading data
            return col
        except AnalysisException:
            return None
    return None


def _load(spark: SparkSession, fs: FileSourceConfig, location: str, what: str,
          wanted: list[str]) -> tuple[DataFrame, Column]:
    """The file as string-typed columns (+ ``_corrupt_record`` for text formats) and the
    reader's error for each record (null when it read the record whole)."""
    none = F.lit(None).cast("string")
    options = {k: v for k, v in fs.options.items() if k.lower() != "mode"}
    if fs.format == "csv":
        header = _truthy(options.pop("header", "true"))
        base = spark.read.options(**options).option("header", str(header).lower())
        names = base.csv(location).columns  # the header line, or _c0.._cN from the first record
        if not names:
            raise SourceError(f"{location}: no header line" if header else f"{location}: no columns")
        schema = StructType([StructField(c, StringType()) for c in names] + [StructField(CORRUPT, StringType())])
        df = (base.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
              .schema(schema).csv(location))
        sep = options.get("sep", options.get("delimiter", ","))
        return df, F.when(F.col(CORRUPT).isNotNull(),
                          F.lit(f"malformed CSV record: expected {len(names)} fields separated by {sep!r}"))
    if fs.format == "text":
        return _text(spark, fs, location, what, wanted)
    if fs.format == "json":
        df = (spark.read.options(**options).option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", CORRUPT).json(location))
        if CORRUPT not in df.columns:
            return df, none
        return df, F.when(undecodable(F.col(CORRUPT)),
                          F.lit("encoding error: undecodable bytes in record")) \
            .when(F.col(CORRUPT).isNotNull(), F.lit("malformed JSON record"))
    return spark.read.options(**options).format(fs.format).load(location), none


def _text(spark: SparkSession, fs: FileSourceConfig, location: str, what: str,
          wanted: list[str]) -> tuple[DataFrame, Column]:
    """Lines cut at the regular expression ``options.sep`` (default: runs of white space,
    leading and trailing white space ignored). Columns are ``_c0`` … for as many fields as
    the first line has, or the first line's fields with ``header: "true"``; a line with
    fewer fields than the mapped positions need, or more than the first line has (two
    records run together), is a reject. Lines of white space only are no records."""
    sep = str(fs.options.get("sep", fs.options.get("delimiter", WHITESPACE)))
    try:
        empty = re.fullmatch(sep, "") is not None
    except re.error as exc:
        raise SourceError(f"{what}.options.sep: {sep!r} is not a regular expression: {exc}") from None
    if empty:
        raise SourceError(f"{what}.options.sep: {sep!r} matches the empty string, so it would cut between every "
                          f"character; a literal character that is special in a regular expression needs a "
                          f"backslash (e.g. '\\|')")
    lines = read_lines(spark, location, encoding=str(fs.options.get("encoding", "UTF-8")))
    text = F.regexp_replace(F.col("_line"), r"^\s+|\s+$", "") if sep == WHITESPACE else F.col("_line")
    lines = lines.where(F.regexp_replace(F.col("_line"), r"\s", "") != "")
    parts = F.split(text, sep, -1)
    first = lines.orderBy(C.ROW).select(parts.alias("p")).first()  # one line: the column names or count
    if first is None:
        raise SourceError(f"{location}: no lines")
    header = _truthy(fs.options.get("header", "false"))
    names = [str(x) for x in first.p] if header else [f"_c{i}" for i in range(len(first.p))]
    if header:
        lines = lines.where(F.col(C.ROW) > 1)
    # Fields a line must have: up to the last one mapped, or named like a canonical column.
    positions = [int(c) if POSITION.match(c) and c not in names else names.index(c)
                 for c in map(str, fs.columns.values()) if c in names or POSITION.match(c)]
    positions += [names.index(c) for c in wanted if c in names]
    need = max(positions, default=0) + 1
    n = F.size(parts)
    by = "white space" if sep == WHITESPACE else repr(sep)
    error = (F.when(undecodable(F.col("_line")), F.lit("encoding error: undecodable bytes in line"))
             .when(n < need, F.concat(F.lit(f"malformed line: expected at least {need} fields separated by {by}, "
                                            "got "), n.cast("string")))
             .when(n > len(names), F.concat(F.lit(f"malformed line: expected {len(names)} fields separated by {by} "
                                                  "(as the first line), got "), n.cast("string"))))
    cols = [F.when(n > i, F.element_at(parts, i + 1)).alias(name) for i, name in enumerate(names)]
    return lines.select(*cols, "_line", C.ROW), error


def files(spark: SparkSession, tables: dict[str, FileSourceConfig], base: str | None = None) -> RawTables:
    """The configured tables; a relative ``path`` is taken under ``base`` (``dataset.path``,
    so a preset names its files and ``--set dataset.path=DIR`` says where they are)."""
    if base:
        tables = {name: under_base(fs, base) for name, fs in tables.items()}
    read = {name: read_table(spark, name, fs) for name, fs in tables.items()}
    interactions, edges = read["interactions"], read.get("edges")
    ok_ia = interactions.where(F.col(ERROR).isNull())
    users = read.get("users")
    if users is None:  # everyone the interactions and edges name
        ids = [ok_ia.select(C.USER)]
        if edges is not None:
            ok_e = edges.where(F.col(ERROR).isNull())
            ids += [ok_e.select(F.col(C.SRC).alias(C.USER)), ok_e.select(F.col(C.DST).alias(C.USER))]
        sources = "+".join(Path(tables[t].path).name for t in ("interactions", "edges") if t in tables)
        users = users_from_ids(ids, f"{sources} (user ids)")
    items = read.get("items")
    if items is None:  # every item the interactions name, without text
        items = items_from_ids(ok_ia.select(C.ITEM), f"{Path(tables['interactions'].path).name} (item ids)")
    return RawTables(users=users, items=items, interactions=interactions, edges=edges,
                     ts_format={name: fs.timestamp for name, fs in tables.items()})
