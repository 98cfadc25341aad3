"""The one place where the supported Spark lines (4.1, the default, and 3.5) differ.

Code that would otherwise check versions calls these instead:

* ``ANSI[line]``: ``spark.sql.ansi.enabled``, set explicitly by the session factory to
  each line's own default (on in 4.x, off in 3.5), so a session never inherits it from
  the environment. The code is written so that both settings give the same results:
  casts that may fail go through ``try_cast``, which is null on bad input on either line.
* ``try_cast(col, type)``: ``Column.try_cast`` (Spark 4.0+); on 3.5, with ANSI off,
  ``cast`` already returns null where the value does not parse.
* XML: Spark 4's built-in XML source, and on 3.5 the spark-xml jar (the line's jar set,
  ``socialrec.core.jars.LINES``), which registers the same ``xml`` name and options.
"""

from __future__ import annotations

from pyspark.sql import Column

ANSI = {"4.1": True, "3.5": False}


def try_cast(col: Column, data_type: str) -> Column:
    """``col`` cast to ``data_type``, null where it does not convert, on either line."""
    if hasattr(col, "try_cast"):
        return col.try_cast(data_type)
    return col.cast(data_type)  # 3.5: ANSI off (the session sets it), so a failed cast is null

