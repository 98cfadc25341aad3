"""The contract between a data source and ingest: ``RawTables``, what every adapter
(``socialrec.data.sources``) returns and ``socialrec.data.ingest.validate`` accepts."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame


@dataclass
class RawTables:
    """Raw source rows (string columns plus ``_source``/``_row``) before ingest.

    ``integer_ids``: the source's ids are integers (MovieLens, Last.fm, Stack Exchange),
    so an id that is not one is rejected as such rather than looked up. ``max_weight``:
    the largest weight the source can carry (a 5-star scale: 5); ingest takes the
    smaller of it and ``dataset.max_weight``. ``ts_format``: per table, how the source
    writes time (``socialrec.data.ingest.parse_ts``; absent: ``auto``)."""

    users: DataFrame
    items: DataFrame
    interactions: DataFrame
    edges: DataFrame | None = None
    integer_ids: bool = False
    max_weight: float | None = None
    ts_format: dict[str, str] = field(default_factory=dict)
