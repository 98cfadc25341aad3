"""Reading source files with Spark so that every row keeps its file and row number.

``read_lines`` reads a text file line by line (any encoding Spark's CSV reader knows),
``read_csv`` a CSV file with a header, both numbered 1..n in file order by
``number_rows`` — zipWithIndex done with built-ins: one small aggregate of rows per scan
partition gives each partition's offset; a single file's scan partitions are in file
order. ``split_fields`` cuts delimited lines into named string columns and marks lines
with the wrong number of fields or undecodable bytes in an ``_error`` column, which
ingest turns into a reject. Nothing here collects data to the driver beyond one row per
partition.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.compat import invalid_utf8, try_cast

ERROR = "_error"
REPLACEMENT_CHAR = "\ufffd"  # what a decoder leaves for bytes it cannot decode


def undecodable(col: Column) -> Column:
    """True where text holds bytes its encoding could not decode: a decoder's U+FFFD, or
    (JSON's corrupt-record text) the raw invalid UTF-8 bytes Spark kept as they were."""
    return col.contains(REPLACEMENT_CHAR) | invalid_utf8(col)


class SourceError(FileNotFoundError):
    """A dataset path or file is missing or unreadable; the message names it."""


def require_files(folder: str | Path, names: list[str], dataset: str) -> Path:
    """Fail at once, naming the folder and every expected file that is missing."""
    if folder is None:
        raise SourceError(f"dataset {dataset}: dataset.path is not set; expected a folder with {', '.join(names)}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SourceError(f"dataset {dataset}: {root} is not a readable folder; expected {', '.join(names)} in it")
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise SourceError(f"dataset {dataset}: {root} lacks {', '.join(missing)} (expected {', '.join(names)})")
    empty = [n for n in names if (root / n).stat().st_size == 0]
    if empty:
        raise SourceError(f"dataset {dataset}: {', '.join(str(root / n) for n in empty)} "
                          f"{'is' if len(empty) == 1 else 'are'} empty (0 bytes): a cut-off copy or export?")
    return root


_FAILED_FILE = re.compile(r"Encountered error while reading file (\S+?)\.?\s")


def failure_cause(exc: BaseException) -> str:
    """The innermost cause of a Spark/JVM error, without the Java class name."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln.split("Caused by: ", 1)[1] for ln in lines if "Caused by: " in ln]
    cause = causes[-1] if causes else (lines or ["unknown error"])[0]
    return re.sub(r"^[\w.$]+(Exception|Error): ", "", cause)[:300]


def read_failure(exc: BaseException) -> str | None:
    """For a Spark job that died reading a source file (undecodable XML, a truncated
    Parquet footer found mid-job): "<file>: <innermost cause>"; else None."""
    m = _FAILED_FILE.search(str(exc))
    if not m:
        return None
    return f"{m.group(1).removeprefix('file://').removeprefix('file:')}: {failure_cause(exc)}"


def refuse_empty(path: Path, what: str) -> None:
    """A local source file of zero bytes (or a folder holding only such files) is an error
    naming it; remote URIs are left to Spark."""
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))] \
        if path.is_dir() else [path]
    if files and all(p.stat().st_size == 0 for p in files):
        raise SourceError(f"{what}: {path} is empty (0 bytes): a cut-off copy or export?")


def number_rows(df: DataFrame) -> DataFrame:
    """Add ``_row`` = 1..n in scan order (for a single file: file order)."""
    spark = df.sparkSession
    mid = df.withColumn("_mid", F.monotonically_increasing_id())
    part = F.shiftright(F.col("_mid"), 33)
    counts = mid.groupBy(part.alias("_p")).agg(F.count(F.lit(1)).alias("_n")).collect()  # one row per partition
    offsets, acc = [], 0
    for r in sorted(counts, key=lambda r: r["_p"]):
        offsets.append((int(r["_p"]), acc))
        acc += int(r["_n"])
    if not offsets:
        return df.withColumn(C.ROW, F.lit(None).cast("long")).limit(0)
    off = spark.createDataFrame(offsets, "_p long, _off long")
    return (
        mid.withColumn("_p", part)
        .join(F.broadcast(off), on="_p")
        .withColumn(C.ROW, F.col("_off") + F.col("_mid") - F.shiftleft(F.col("_p"), 33) + 1)
        .drop("_p", "_off", "_mid")
    )


def read_lines(spark: SparkSession, path: str | Path, *, encoding: str = "UTF-8", skip_header: bool = False) -> DataFrame:
    """(``_line``, ``_row``, ``_source``): one row per non-empty line; ``_row`` is the line number."""
    df = (
        spark.read.option("encoding", encoding)
        .option("sep", "\u0001")
        .option("quote", "\u0000")
        .option("escape", "\u0000")
        .option("ignoreLeadingWhiteSpace", "false")
        .option("ignoreTrailingWhiteSpace", "false")
        .schema("_line string")
        .csv(str(path))
    )
    df = number_rows(df)
    if skip_header:
        df = df.where(F.col(C.ROW) > 1)
    return df.withColumn(C.SOURCE, F.lit(Path(path).name))


def split_fields(df: DataFrame, sep: str, names: list[str], *, min_fields: int | None = None) -> DataFrame:
    """Cut ``_line`` at ``sep`` into string columns ``names``; set ``_error`` on bad lines."""
    parts = F.split(F.col("_line"), _regex_literal(sep), -1)
    need = len(names) if min_fields is None else min_fields
    n = F.size(parts)
    error = (
        F.when(undecodable(F.col("_line")), F.lit("encoding error: undecodable bytes in line"))
        .when(
            (n < need) | (n > len(names)),
            F.concat(F.lit(f"malformed line: expected {len(names)} fields separated by {sep!r}, got "), n.cast("string")),
        )
    )
    cols = [F.when(F.size(parts) > i, F.element_at(parts, i + 1)).alias(name) for i, name in enumerate(names)]
    return df.select(*cols, error.alias(ERROR), C.SOURCE, C.ROW, F.col("_line"))


def read_csv(spark: SparkSession, path: str | Path, columns: list[str], *, encoding: str = "UTF-8") -> DataFrame:
    """A CSV file with a header: the named columns as strings, ``_row`` = record number
    (1 = the first data record), ``_error`` for records the parser could not read."""
    schema = ", ".join(f"`{c}` string" for c in columns) + ", _corrupt string"
    df = (
        spark.read.option("header", "true")
        .option("encoding", encoding)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .option("enforceSchema", "false")
        .schema(schema)
        .csv(str(path))
    )
    df = number_rows(df)
    bad_text = F.concat_ws(",", *[F.coalesce(F.col(f"`{c}`"), F.lit("")) for c in columns])
    error = F.when(F.col("_corrupt").isNotNull(), F.lit("malformed CSV record")).when(
        undecodable(bad_text), F.lit("encoding error: undecodable bytes in record")
    )
    return df.withColumn(ERROR, error).withColumn(C.SOURCE, F.lit(Path(path).name)).drop("_corrupt")


def users_from_ids(id_frames: list[DataFrame], source: str) -> DataFrame:
    """Raw users for sources without a user file: the distinct ids that ``id_frames``
    (one column ``user_id`` each) mention; a numeric id doubles as the row number."""
    ids = id_frames[0]
    for f in id_frames[1:]:
        ids = ids.unionByName(f)
    return (
        ids.where(F.col(C.USER).isNotNull() & (F.trim(C.USER) != ""))
        .distinct()
        .select(
            C.USER,
            F.lit(source).alias(C.SOURCE),
            F.coalesce(try_cast(F.col(C.USER), "long"), F.abs(F.xxhash64(C.USER))).alias(C.ROW),
        )
    )


def items_from_ids(ids: DataFrame, source: str) -> DataFrame:
    """Raw items for sources without an item file: the distinct ids ``ids`` (one column
    ``item_id``) mentions, without title or text; a numeric id doubles as the row number."""
    return (
        ids.select(F.trim(C.ITEM).alias(C.ITEM))
        .where(F.col(C.ITEM).isNotNull() & (F.col(C.ITEM) != ""))
        .distinct()
        .select(
            C.ITEM,
            F.lit(source).alias(C.SOURCE),
            F.coalesce(try_cast(F.col(C.ITEM), "long"), F.abs(F.xxhash64(C.ITEM))).alias(C.ROW),
        )
    )


def _regex_literal(sep: str) -> str:
    return "".join("\\" + ch if ch in r".^$*+?{}[]\|()" else ch for ch in sep)


def strip_html(col: Column) -> Column:
    """HTML to plain text: drop tags, decode the common entities, fold white space."""
    text = F.regexp_replace(col, r"(?is)<(script|style)[^>]*>.*?</\1>", " ")
    text = F.regexp_replace(text, r"<[^>]*>", " ")
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&#x27;", "'"),
                         ("&nbsp;", " "), ("&amp;", "&")):
        text = F.regexp_replace(text, entity, char)
    return F.trim(F.regexp_replace(text, r"\s+", " "))
