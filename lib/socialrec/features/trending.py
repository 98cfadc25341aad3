"""Engagement velocity: how fast an item is gathering engagement right now.

One definition serves both paths. The streaming path (``socialrec.stream``) sums new
interactions into the ``trending`` table per item and time bucket; the hybrid ranker
(``hybrid.trend_hours``) computes the same velocity from its training pairs as of the
newest of them. ``velocity`` takes either: rows with a time and a weight (raw events, or
buckets whose start is their time) and sums the weight over the sliding window that
ends at ``as_of``, per hour.

    >>> velocity(buckets, as_of=now, window_minutes=60, ts="bucket_start", events="events")
    item_id | events | weight | velocity        # weight per hour over the last 60 minutes
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C


def _ts(value: datetime | Column | None) -> Column:
    if value is None:
        return F.current_timestamp()
    return value if isinstance(value, Column) else F.lit(value).cast("timestamp")


def velocity(rows: DataFrame, *, as_of: datetime | Column | None = None, window_minutes: int = 60,
             ts: str = C.TS, weight: str = C.WEIGHT, events: str | None = None,
             col_item: str = C.ITEM) -> DataFrame:
    """(item, events, weight, velocity) over the window (as_of - window, as_of]:
    ``events`` counted (or summed from the ``events`` column of pre-aggregated buckets),
    ``weight`` summed, ``velocity`` = weight per hour. ``as_of`` null: now. Rows later
    than ``as_of`` are not counted (a window never sees its future)."""
    end = _ts(as_of)
    start = end - F.make_dt_interval(mins=F.lit(int(window_minutes)))
    inside = rows.where((F.col(ts) > start) & (F.col(ts) <= end))
    n = F.sum(events).cast("long") if events else F.count(F.lit(1))
    return (inside.groupBy(col_item).agg(n.alias("events"), F.sum(F.col(weight).cast("double")).alias("weight"))
            .withColumn("velocity", F.col("weight") / F.lit(window_minutes / 60.0)))


def bucket_start(ts: Column, minutes: int) -> Column:
    """The start of the ``minutes``-long bucket (aligned on the epoch) holding ``ts``."""
    return F.window(ts, f"{int(minutes)} minutes").start
