"""The one place where the supported Spark lines (4.1, the default, and 3.5) differ.

Code that would otherwise check versions calls these instead:

* ``ANSI[line]``: ``spark.sql.ansi.enabled``, set explicitly by the session factory to
  each line's own default (on in 4.x, off in 3.5), so a session never inherits it from
  the environment. The code is written so that both settings give the same results:
  casts that may fail go through ``try_cast``, which is null on bad input on either line.
* ``try_cast(col, type)``: ``Column.try_cast`` (Spark 4.0+); on 3.5, with ANSI off,
  ``cast`` already returns null where the value does not parse.
* ``xml_source()``: Spark 4's built-in XML reader (``format("xml")``); 3.5 has none, and
  the readers of XML exports refuse with a message naming the line.
"""

from __future__ import annotations

from functools import lru_cache

from pyspark.sql import Column

ANSI = {"4.1": True, "3.5": False}


@lru_cache(maxsize=1)
def line() -> str:
    """The running pyspark's line, "4.1" or "3.5" (``socialrec.core.jars.spark_line``)."""
    from socialrec.core.jars import spark_line

    return spark_line()


def try_cast(col: Column, data_type: str) -> Column:
    """``col`` cast to ``data_type``, null where it does not convert, on either line."""
    if hasattr(col, "try_cast"):
        return col.try_cast(data_type)
    return col.cast(data_type)  # 3.5: ANSI off (the session sets it), so a failed cast is null


def xml_source() -> str:
    """The data source name of Spark's XML reader; raises on a line that has none."""
    if line() == "3.5":
        raise RuntimeError("XML sources (the Stack Exchange dumps) need Spark 4's built-in XML reader; "
                           "Spark 3.5 has none: run this dataset on the default Spark 4.1 line")
    return "xml"
