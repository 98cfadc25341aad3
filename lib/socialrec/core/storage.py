"""All Delta I/O: where tables live, creating them from their declared schemas,
reading them, and repeatable writes (MERGE on the table's keys).

Tables are Delta paths ``<root>/<table>`` or, when a catalog is configured,
metastore tables ``<catalog>.<table>`` (``catalog`` being ``catalog.schema`` or
``schema``; the schema is created when absent). The same calls read and write both:
only ``location`` and how a table is opened (by path or by name) differ. Every write
goes through ``Storage.merge``, so running a stage twice on the same input leaves the
same rows.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType, MapType

from socialrec.core.config import CATALOG_NAME
from socialrec.core.schemas import TABLES, Table, conform

log = logging.getLogger(__name__)

# Delta's idempotent-DML session settings: a commit carrying an (app id, version) that the
# table has already recorded is skipped (the streaming path's exactly-once writes).
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
CHANGE_FEED = "delta.enableChangeDataFeed"

# Relative difference below which a float is "unchanged" for MERGE: reruns recompute
# scores and vectors whose last digits depend on summation order (Spark aggregations,
# BLAS), and such noise must not rewrite rows.
FLOAT_TOL = 1e-6


class SchemaMismatch(ValueError):
    """An existing table's columns contradict their declaration; the message names them."""


def _sql_literal(value) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Storage:
    """Where the canonical tables live: a root folder/URI, or a ``catalog.schema``."""

    root: str = "./warehouse"
    catalog: str | None = None

    def __post_init__(self):
        if self.catalog is not None and not CATALOG_NAME.fullmatch(self.catalog):
            raise ValueError(f"storage catalog {self.catalog!r}: expected catalog.schema or schema of plain identifiers")

    # ------------------------------------------------------------------ locations
    def location(self, table: str | Table) -> str:
        name = table.name if isinstance(table, Table) else table
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        if self.catalog:
            return f"{self.catalog}.{name}"
        root = self.root
        if "://" not in root:
            root = str(Path(root).expanduser().resolve())
        return f"{root.rstrip('/')}/{name}"

    def _delta(self, spark: SparkSession, table: Table) -> DeltaTable:
        loc = self.location(table)
        return DeltaTable.forName(spark, loc) if self.catalog else DeltaTable.forPath(spark, loc)

    def exists(self, spark: SparkSession, table: str | Table) -> bool:
        table = TABLES[table] if isinstance(table, str) else table
        loc = self.location(table)
        if self.catalog:
            return spark.catalog.tableExists(loc)
        return DeltaTable.isDeltaTable(spark, loc)

    # ------------------------------------------------------------------ create / read
    def ensure(self, spark: SparkSession, table: str | Table) -> None:
        """Create the Delta table from its declared schema if it does not exist."""
        table = TABLES[table] if isinstance(table, str) else table
        if self.exists(spark, table):
            self._add_missing_columns(spark, table)
            return
        loc = self.location(table)
        if self.catalog:
            # DeltaTableBuilder.tableName takes at most schema.table; catalog.schema.table
            # (Unity Catalog, or spark_catalog spelled out) needs SQL. Same columns, NOT
            # NULL and partitioning as the builder would declare.
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.catalog}")
            cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}"
                             for f in table.schema.fields)
            parts = f" PARTITIONED BY ({', '.join(f'`{c}`' for c in table.partition_by)})" if table.partition_by else ""
            spark.sql(f"CREATE TABLE IF NOT EXISTS {loc} ({cols}) USING DELTA{parts}")
        else:
            builder = DeltaTable.createIfNotExists(spark).location(loc).addColumns(table.schema)
            if table.partition_by:
                builder = builder.partitionedBy(*table.partition_by)
            builder.execute()
        log.info("created Delta table %s", loc)

    def _add_missing_columns(self, spark: SparkSession, table: Table) -> None:
        """The schema evolution rule for tables (docs/tables.md, "Guarantees"): a column declared
        in schemas.py but absent from an existing table is added (nullable, null in old
        rows) with ALTER TABLE; a column the table has but the declaration lacks is kept
        and ignored by reads that project to the declared schema; a column whose type
        differs from its declaration stops the write with ``SchemaMismatch`` naming it —
        types are never changed in place (that is a migration, not an accident)."""
        loc = self.location(table)
        name = loc if self.catalog else f"delta.`{loc}`"
        schema = spark.read.table(loc).schema if self.catalog else spark.read.format("delta").load(loc).schema
        have = {f.name: f.dataType.simpleString() for f in schema}
        changed = [f"{f.name} is {have[f.name]} in the table but declared {f.dataType.simpleString()}"
                   for f in table.schema.fields if f.name in have and have[f.name] != f.dataType.simpleString()]
        if changed:
            raise SchemaMismatch(f"table {loc}: {'; '.join(changed)}; column types are never changed in place: "
                                 "migrate the table (or write to a new storage.root)")
        missing = [f for f in table.schema.fields if f.name not in have]
        if not missing:
            return
        if any(not f.nullable for f in missing):
            raise SchemaMismatch(f"table {loc}: NOT NULL column(s) {[f.name for f in missing if not f.nullable]} "
                                 "cannot be added to existing rows; migrate the table")
        cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({cols})")
        log.info("table %s: added column(s) %s", loc, cols)

    def read(self, spark: SparkSession, table: str | Table, dataset: str | None = None) -> DataFrame:
        """Read a table (creating it empty if absent), optionally one dataset's rows."""
        table = TABLES[table] if isinstance(table, str) else table
        self.ensure(spark, table)
        loc = self.location(table)
        df = spark.read.table(loc) if self.catalog else spark.read.format("delta").load(loc)
        if dataset is not None and "dataset" in table.columns:
            df = df.where(df["dataset"] == dataset)
        return df

    # ------------------------------------------------------------------ write
    def merge(
        self,
        df: DataFrame,
        table: str | Table,
        *,
        scope: dict[str, object] | None = None,
        owned_elsewhere: tuple[str, ...] = (),
    ) -> None:
        """Upsert ``df`` into ``table`` on its key columns.

        Rows whose keys exist are updated only where a value changed (floats, also in
        arrays and map values: beyond a relative ``FLOAT_TOL``, i.e. not by
        summation-order noise); new keys are
        inserted. With ``scope`` (e.g. ``{"dataset": "synthetic"}``) the write is a full
        sync of that slice: target rows in the scope whose keys are absent from ``df``
        are deleted, so the slice ends up equal to ``df``. ``df`` must have unique keys.
        One atomic commit (a MERGE; an append when the slice is empty); data files
        without a changed row are not rewritten, and nothing is committed when nothing
        changed.

        ``owned_elsewhere``: columns a later stage rewrites (the explain stage's
        explanation of a recommendation): a difference there alone does not make a row
        changed, so a rerun that recomputes the same rows keeps them as that stage left
        them; a row changed in another column is written whole.
        """
        table = TABLES[table] if isinstance(table, str) else table
        spark = df.sparkSession
        self.ensure(spark, table)
        src = conform(df, table)
        keys = table.keys
        scope_sql = " AND ".join(f"t.`{c}` = {_sql_literal(v)}" for c, v in (scope or {}).items())
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)  # null-safe: a key part may be null
        if scope_sql:
            on = f"{on} AND {scope_sql}"
        others = [c for c in table.columns if c not in keys]
        maps = {f.name for f in table.schema.fields if isinstance(f.dataType, MapType)}
        float_maps = {f.name for f in table.schema.fields if isinstance(f.dataType, MapType)
                      and isinstance(f.dataType.valueType, (DoubleType, FloatType))}

        floats = {f.name for f in table.schema.fields if isinstance(f.dataType, (DoubleType, FloatType))}
        float_arrays = {f.name for f in table.schema.fields
                        if isinstance(f.dataType, ArrayType) and isinstance(f.dataType.elementType, (DoubleType, FloatType))}

        def same(c: str) -> str:
            t, s_ = f"t.`{c}`", f"s.`{c}`"
            if c in float_maps:  # same keys, values within the float tolerance
                return (f"(to_json({t}) <=> to_json({s_}) OR (size({t}) = size({s_}) AND "
                        f"array_sort(map_keys({t})) = array_sort(map_keys({s_})) AND "
                        f"forall(map_keys({t}), k -> abs({t}[k] - {s_}[k]) <= {FLOAT_TOL} * greatest(1D, abs({t}[k])))))")
            if c in maps:  # maps have no equality in Spark SQL: compare as JSON
                return f"to_json({t}) <=> to_json({s_})"
            if c in floats:  # float noise (summation order, BLAS) is not a change
                return f"({t} <=> {s_} OR abs({t} - {s_}) <= {FLOAT_TOL} * greatest(1D, abs({t})))"
            if c in float_arrays:
                return (f"({t} <=> {s_} OR (size({t}) = size({s_}) AND aggregate(zip_with({t}, {s_}, "
                        f"(a, b) -> abs(a - b) <= {FLOAT_TOL} * greatest(1D, abs(a))), true, (x, y) -> x AND y)))")
            return f"{t} <=> {s_}"

        changed = " OR ".join(f"NOT ({same(c)})" for c in others if c not in owned_elsewhere) or None
        target = self._slice(spark, table, scope or {})
        if target.isEmpty():
            # Nothing in the slice to match, update or delete: the MERGE would insert every
            # row, so a plain append does it (same rows, one atomic commit) at a fifth of
            # the cost (a first load; each model's first recommendations of a run).
            # Laid out by key (hash of the keys into the shuffle partitions, sorted by key
            # within each): the files, and so the order later stages read rows in (float
            # sums, ALS blocks), do not depend on the source's partitioning, e.g. on
            # local[1] vs local[2].
            by_key = [F.col(f"`{k}`") for k in keys]
            self._append(src.repartition(*by_key).sortWithinPartitions(*by_key), table)
            log.info("merged into %s (empty slice: appended)", self.location(table))
            return
        # Delta rewrites every file holding a row the MERGE condition matches, changed or
        # not (and, with NOT MATCHED BY SOURCE, every file of the slice). So unless some
        # key of the slice vanished (then the whole source and the delete clause go in),
        # the source is cut to its new and changed rows: a rerun on the same input commits
        # nothing, an append rewrites only the files it must. The source is persisted for
        # these checks and the MERGE (it may hold embeddings or a ranker's output, too
        # dear to compute again).
        cached = src.persist()
        try:
            hit = target.select(*[F.col(f"`{c}`") for c in table.columns], F.lit(True).alias("_hit")).alias("t")
            cond = [F.col(f"s.`{k}`").eqNullSafe(F.col(f"t.`{k}`")) for k in keys]
            news = F.col("t._hit").isNull()
            todo = cached.alias("s").join(hit, cond, "left").where(news | F.expr(changed) if changed else news) \
                .select("s.*")
            vanished = scope is not None and self._has_vanished_rows(target, cached, keys)
            if not vanished and todo.isEmpty():
                log.info("%s: nothing changed, nothing written", self.location(table))
                return
            # (a delete clause needs the whole source: the keys absent from it are deleted)
            self._execute_merge(spark, table, cached if vanished else todo, on, changed, scope_sql, vanished)
        finally:
            cached.unpersist()

    def _execute_merge(self, spark, table: Table, src: DataFrame, on: str, changed: str | None, scope_sql: str,
                       vanished: bool) -> None:
        merge = self._delta(spark, table).alias("t").merge(src.alias("s"), on)
        # The declared columns by name, not UpdateAll/InsertAll: a column an older table has
        # and the declaration lacks keeps its value on update and is null on insert.
        values = {f"`{c}`": f"s.`{c}`" for c in table.columns}
        merge = merge.whenMatchedUpdate(condition=changed, set=values) if changed else merge
        merge = merge.whenNotMatchedInsert(values=values)
        if vanished:
            merge = merge.whenNotMatchedBySourceDelete(condition=scope_sql or None)
        merge.execute()
        log.info("merged into %s", self.location(table))

    def _slice(self, spark: SparkSession, table: Table, scope: dict) -> DataFrame:
        target = self.read(spark, table)
        for c, v in scope.items():
            target = target.where(F.col(f"`{c}`") == F.lit(v))
        return target

    @staticmethod
    def _has_vanished_rows(target: DataFrame, src: DataFrame, keys: tuple[str, ...]) -> bool:
        """Whether ``target`` holds keys that ``src`` lacks (compared null-safely)."""
        t, s_ = target.select(*keys).alias("t"), src.select(*keys).alias("s")
        cond = [F.col(f"t.`{k}`").eqNullSafe(F.col(f"s.`{k}`")) for k in keys]
        return not t.join(s_, cond, "left_anti").isEmpty()

    def delete(self, spark: SparkSession, table: str | Table, where) -> None:
        """Delete the rows matching ``where``: all column = value pairs of a dict, or a
        condition (Column or SQL text)."""
        table = TABLES[table] if isinstance(table, str) else table
        if not self.exists(spark, table):
            return
        if isinstance(where, dict):
            where = " AND ".join(f"`{c}` = {_sql_literal(v)}" for c, v in where.items())
        self._delta(spark, table).delete(where)

    # ------------------------------------------------------------------ streaming path
    def append(self, df: DataFrame, table: str | Table) -> None:
        """Append rows as a producer would (no key check): how new items and interactions
        reach the tables the streaming path reads (``socialrec.stream``). The rows are
        projected to the declared schema; a NOT NULL column that is null fails the write."""
        table = TABLES[table] if isinstance(table, str) else table
        self.ensure(df.sparkSession, table)
        self._append(conform(df, table), table)

    def _append(self, src: DataFrame, table: Table) -> None:
        """Append rows already conformed to ``table`` (a column an older table has and
        the declaration lacks is null in them, as a MERGE insert leaves it)."""
        writer = src.write.format("delta").mode("append")
        if self.catalog:
            writer.saveAsTable(self.location(table))
        else:
            writer.save(self.location(table))

    def enable_change_feed(self, spark: SparkSession, table: str | Table) -> bool:
        """Turn on Delta's change data feed for ``table`` (the streaming path reads new
        rows from it); return whether it was off until now."""
        table = TABLES[table] if isinstance(table, str) else table
        self.ensure(spark, table)
        props = self._delta(spark, table).detail().select("properties").first()[0] or {}
        if str(props.get(CHANGE_FEED, "false")).lower() == "true":
            return False
        loc = self.location(table)
        name = loc if self.catalog else f"delta.`{loc}`"
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")
        log.info("table %s: change data feed enabled", loc)
        return True

    def version(self, spark: SparkSession, table: str | Table) -> int:
        """The table's latest commit version."""
        table = TABLES[table] if isinstance(table, str) else table
        self.ensure(spark, table)
        return int(self._delta(spark, table).history(1).select("version").first()[0])

    def add(self, df: DataFrame, table: str | Table, *, sums: tuple[str, ...], txn: tuple[str, int]) -> None:
        """MERGE that adds ``df``'s ``sums`` columns to the matching rows (inserting new
        keys), exactly once per ``txn`` = (app id, version): Delta records the pair in the
        commit and skips a later commit carrying a version it has already seen, so a
        micro-batch replayed after a crash does not count twice."""
        table = TABLES[table] if isinstance(table, str) else table
        spark = df.sparkSession
        self.ensure(spark, table)
        src = conform(df, table)
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in table.keys)
        update = {f"`{c}`": (f"t.`{c}` + s.`{c}`" if c in sums else f"s.`{c}`")
                  for c in table.columns if c not in table.keys}
        with idempotent(spark, *txn):
            (self._delta(spark, table).alias("t").merge(src.alias("s"), on)
             .whenMatchedUpdate(set=update)
             .whenNotMatchedInsert(values={f"`{c}`": f"s.`{c}`" for c in table.columns})
             .execute())
        log.info("added into %s (txn %s %d)", self.location(table), *txn)

    def apply(self, df: DataFrame, table: str | Table, *, op: str = "_op", changed: str | None = None) -> None:
        """One MERGE applying row operations: ``df[op]`` is ``upsert`` (insert, or update
        where the SQL condition ``changed`` over t (table) and s (source) holds; None:
        always) or ``delete`` (remove the matching row). ``df`` must have unique keys.
        Repeating it with the same rows changes nothing."""
        table = TABLES[table] if isinstance(table, str) else table
        spark = df.sparkSession
        self.ensure(spark, table)
        src = conform(df, table, keep=(op,))
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in table.keys)
        values = {f"`{c}`": f"s.`{c}`" for c in table.columns}
        update = f"s.`{op}` = 'upsert'" + (f" AND ({changed})" if changed else "")
        (self._delta(spark, table).alias("t").merge(src.alias("s"), on)
         .whenMatchedDelete(condition=f"s.`{op}` = 'delete'")
         .whenMatchedUpdate(condition=update, set=values)
         .whenNotMatchedInsert(condition=f"s.`{op}` = 'upsert'", values=values)
         .execute())
        log.info("applied changes to %s", self.location(table))


@contextmanager
def idempotent(spark: SparkSession, app_id: str, version: int):
    """Delta writes inside the block carry (``app_id``, ``version``); one whose pair the
    table has already committed is skipped."""
    spark.conf.set(TXN_APP_ID, app_id)
    spark.conf.set(TXN_VERSION, str(int(version)))
    try:
        yield
    finally:
        spark.conf.unset(TXN_APP_ID)
        spark.conf.unset(TXN_VERSION)
