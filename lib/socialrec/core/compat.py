"""The one place where the supported Spark lines (4.1, the default, and 3.5) differ.

Code that would otherwise check versions calls these instead:

* ``ANSI[line]``: ``spark.sql.ansi.enabled``, set explicitly by the session factory to
  each line's own default (on in 4.x, off in 3.5), so a session never inherits it from
  the environment. The code is written so that both settings give the same results:
  casts that may fail go through ``try_cast``, which is null on bad input on either line.
* ``TIME_PARSER``: ``spark.sql.legacy.timeParserPolicy`` = ``CORRECTED`` on both lines
  (4.x's default; 3.5's is ``EXCEPTION``, where a value the old parser would read
  differently, ``1/2/2011`` under ``dd/MM/yyyy``, raises even inside ``try_to_timestamp``
  instead of being null, i.e. a reject).
* ``try_cast(col, type)``: ``Column.try_cast`` (Spark 4.0+); on 3.5, with ANSI off,
  ``cast`` already returns null where the value does not parse.
* ``to_arrow(df)``: ``DataFrame.toArrow`` (Spark 4.0+); on 3.5 the same Arrow batches
  through the collection path ``toPandas`` uses. ``from_arrow(spark, table, schema)``:
  ``createDataFrame`` of a ``pyarrow.Table`` (4.0+); on 3.5 of its pandas frame, through
  Arrow.
* ``invalid_utf8(col)``: ``~is_valid_utf8`` (Spark 4.0+); on 3.5 the bytes decoded as
  UTF-8 (malformed sequences become U+FFFD there) hold a U+FFFD the text did not.
* XML: Spark 4's built-in XML source, and on 3.5 the spark-xml jar (the line's jar set,
  ``socialrec.core.jars.LINES``), which registers the same ``xml`` name and options.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame

ANSI = {"4.1": True, "3.5": False}
TIME_PARSER = "CORRECTED"


def try_cast(col: Column, data_type: str) -> Column:
    """``col`` cast to ``data_type``, null where it does not convert, on either line."""
    if hasattr(Column, "try_cast"):  # the class: a 3.5 Column answers any attribute as a field
        return col.try_cast(data_type)
    return col.cast(data_type)  # 3.5: ANSI off (the session sets it), so a failed cast is null


def to_arrow(df: DataFrame):
    """``df`` collected to the driver as one ``pyarrow.Table`` (the caller bounds its size)."""
    if hasattr(DataFrame, "toArrow"):
        return df.toArrow()
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    return pa.Table.from_batches(df._collect_as_arrow(), schema=to_arrow_schema(df.schema))  # 3.5


def invalid_utf8(col: Column) -> Column:
    """True where the string holds bytes that are not valid UTF-8 (text Spark kept raw)."""
    from pyspark.sql import functions as F

    if hasattr(F, "is_valid_utf8"):
        return ~F.is_valid_utf8(col)
    replacement = "\ufffd"
    return F.decode(col.cast("binary"), "UTF-8").contains(replacement) & ~col.contains(replacement)  # 3.5


def from_arrow(spark, table, schema: str) -> DataFrame:
    """A DataFrame of the ``pyarrow.Table`` ``table`` with the DDL ``schema``."""
    from socialrec.core.jars import spark_line

    if spark_line() != "3.5":
        return spark.createDataFrame(table, schema)
    key = "spark.sql.execution.arrow.pyspark.enabled"  # 3.5: through pandas, with Arrow (array columns)
    previous = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        return spark.createDataFrame(table.to_pandas(), schema)
    finally:
        spark.conf.set(key, previous)
