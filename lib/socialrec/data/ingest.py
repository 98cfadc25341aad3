"""Ingest: raw source rows -> canonical tables, with every unacceptable row in rejects.

Source adapters (``socialrec.data.sources``) produce ``RawTables``: string
columns named like the canonical ones, plus ``_source`` (the file) and ``_row`` (its row
number). ``validate`` checks each row against its table's rules (ids present, and
integers where the source's ids are, event kinds known, timestamps parseable and in
range, weights positive numbers no larger than ``dataset.max_weight`` or the source's
scale, references to known users and items, no self edges, no duplicate keys) and
splits it into accepted rows, typed to the canonical schema, and rejected rows with the
first failed rule's field and reason and the raw row (the source line, else JSON). ``accepted + rejected = read`` always holds.
Only Spark built-ins are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.compat import try_cast
from socialrec.core.config import DatasetConfig
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, REJECTS, USERS, Table, conform
from socialrec.data.contract import RawTables
from socialrec.data.readers import ERROR

# Timestamps accepted: ISO-like text, or integer epoch seconds / milliseconds.
EARLIEST = "1970-01-01 00:00:00"
CONTENT_EARLIEST = "1800-01-01 00:00:00"
FUTURE_SLACK = "INTERVAL 1 DAY"
MAX_WEIGHT = DatasetConfig.max_weight  # larger weights are taken for corrupt values
INTEGER = r"^-?[0-9]+$"  # Stack Exchange's Community user is -1
LOW_RATING = "low_rating"  # the event of a rating below dataset.positive_at: kept, not a positive


@dataclass
class Rule:
    """A row is rejected by the first rule whose ``bad`` condition is true."""

    field: str
    bad: Column
    reason: str | Column


@dataclass
class Ingested:
    users: DataFrame
    items: DataFrame
    interactions: DataFrame
    edges: DataFrame
    rejects: DataFrame
    stats: DataFrame  # per (table, source): read, accepted, rejected
    persisted: list[DataFrame] = dc_field(default_factory=list)

    def release(self) -> None:
        """Unpersist the validated frames once the tables are written."""
        for df in self.persisted:
            df.unpersist()
        self.persisted.clear()


def parse_ts(col: Column, fmt: str = "auto") -> Column:
    """Text or epoch number -> timestamp; null when it cannot be parsed as ``fmt``:
    ``auto`` (an integer is epoch seconds, or milliseconds from 10^11 on; other text ISO
    date or date-time), ``iso``, ``unix-seconds`` (decimals allowed), ``unix-millis``, or a
    Spark datetime pattern such as ``dd/MM/yyyy HH:mm``."""
    text = F.trim(col)
    if fmt == "iso":
        return F.when(~text.rlike(r"^-?[0-9]+$"), F.try_to_timestamp(text))
    if fmt == "unix-seconds":
        return F.when(text.rlike(r"^-?[0-9]{1,12}(\.[0-9]+)?$"), F.timestamp_seconds(text.cast("double")))
    if fmt == "unix-millis":
        return F.when(text.rlike(r"^-?[0-9]{1,15}$"), F.timestamp_millis(text.cast("long")))
    if fmt != "auto":
        return F.try_to_timestamp(text, F.lit(fmt))
    is_int = text.rlike(r"^-?[0-9]{1,13}$")
    as_num = text.cast("long")
    epoch = F.when(F.abs(as_num) >= 100_000_000_000, F.timestamp_millis(as_num)).otherwise(
        F.timestamp_seconds(as_num)
    )
    return F.when(is_int, epoch).otherwise(F.try_to_timestamp(text))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _blank(col: Column) -> Column:
    return col.isNull() | (F.trim(col) == "")


def _id_rules(integer_ids: bool, *names_cols: tuple[str, Column]) -> list[Rule]:
    """Sources whose ids are integers: a present id that is not one is rejected as such."""
    if not integer_ids:
        return []
    return [Rule(name, ~_blank(col) & ~F.trim(col).rlike(INTEGER),
                 F.concat(F.lit(f"{name} is not an integer: "), col)) for name, col in names_cols]


def _ts_rules(name: str, parsed: Column, raw: Column, required: bool, earliest: str = EARLIEST,
              fmt: str = "auto") -> list[Rule]:
    """Timestamp checks. Events (interactions, edges) must be 1970 or later; creation
    dates of content (a 1944 film) may be as old as ``CONTENT_EARLIEST``."""
    missing = _blank(raw)
    rules = []
    if required:
        rules.append(Rule(name, missing, "missing timestamp"))
    shape = "" if fmt == "auto" else f" as {fmt}"
    rules += [
        Rule(name, ~missing & parsed.isNull(), F.concat(F.lit(f"unparseable timestamp{shape}: "), raw)),
        Rule(name, parsed < F.lit(earliest).cast("timestamp"),
             F.concat(F.lit(f"timestamp before {earliest[:4]}: "), raw)),
        Rule(
            name,
            parsed > F.expr(f"current_timestamp() + {FUTURE_SLACK}"),
            F.concat(F.lit("timestamp in the future: "), raw),
        ),
    ]
    return rules


def _split(
    df: DataFrame,
    rules: list[Rule],
    *,
    table: Table,
    dataset: str,
    raw_cols: list[str],
    typed: dict[str, Column],
    dedupe_on: list[str],
    persisted: list[DataFrame],
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Apply ``rules`` then key de-duplication; return (accepted typed rows, rejects, per-source counts)."""
    if ERROR in df.columns:  # the reader could not cut the line into fields
        rules = [Rule("line", F.col(ERROR).isNotNull(), F.col(ERROR))] + rules
    reason = F.coalesce(*[F.when(r.bad, r.reason if isinstance(r.reason, Column) else F.lit(r.reason)) for r in rules])
    field = F.coalesce(*[F.when(r.bad, F.lit(r.field)) for r in rules])
    raw_json = F.to_json(F.struct(*[F.col(c) for c in raw_cols]))
    if "_line" in df.columns:  # the source line as read (null: the reader only has fields)
        raw_json = F.coalesce(F.col("_line"), raw_json)
    checked = df.select(
        *[v.alias(k) for k, v in typed.items()],
        reason.alias("_reason"),
        field.alias("_field"),
        raw_json.alias("_raw"),
        F.col(C.SOURCE),
        F.col(C.ROW),
    )
    # Duplicates of an accepted key: the first row (by source, row) wins, the others are
    # rejected naming it.
    ok = F.col("_reason").isNull()
    w = Window.partitionBy(*dedupe_on, ok).orderBy(C.SOURCE, C.ROW)
    first = F.first(F.concat(F.col(C.SOURCE), F.lit(" row "), F.col(C.ROW).cast("string"))).over(w)
    checked = checked.withColumn("_first", F.when(ok, first)).withColumn(
        "_pos", F.when(ok, F.row_number().over(w))
    )
    checked = checked.withColumn("_dup", ok & (F.col("_pos") > 1))
    dup = F.col("_dup")
    checked = checked.withColumn(
        "_reason", F.when(dup, F.concat(F.lit("duplicate of "), F.col("_first"))).otherwise(F.col("_reason"))
    ).withColumn("_field", F.when(dup, F.lit(",".join(dedupe_on))).otherwise(F.col("_field")))
    # Persisted: three consumers (the table, the rejects, the per-file counts) and, for
    # users and items, the reference checks of the tables after them; released by
    # ``Ingested.release`` once everything is written.
    checked = checked.persist()
    persisted.append(checked)
    accepted = conform(checked.where(F.col("_reason").isNull()).withColumn(C.DATASET, F.lit(dataset)), table)
    rejected = checked.where(F.col("_reason").isNotNull()).select(
        F.lit(dataset).alias(C.DATASET),
        F.lit(table.name).alias("table"),
        F.col(C.SOURCE).alias("source"),
        F.col(C.ROW).alias("row"),
        F.col("_field").alias("field"),
        F.col("_reason").alias("reason"),
        F.col("_raw").alias("raw"),
    )
    stats = checked.groupBy(F.col(C.SOURCE).alias("source")).agg(
        F.count(F.lit(1)).alias("read"),
        F.sum(F.when(F.col("_reason").isNull(), 1).otherwise(0)).alias("accepted"),
        F.sum(F.when(F.col("_reason").isNotNull(), 1).otherwise(0)).alias("rejected"),
    ).select(F.lit(table.name).alias("table"), "source", "read", "accepted", "rejected")
    return accepted, conform(rejected, REJECTS), stats


def _raw_cols(df: DataFrame) -> list[str]:
    """The source's own columns (bookkeeping columns start with an underscore)."""
    return [c for c in df.columns if not c.startswith("_")]


def _col_or_null(df: DataFrame, name: str) -> Column:
    return F.col(name) if name in df.columns else F.lit(None).cast("string")


def _known(df: DataFrame, ids: DataFrame, on: str, id_col: str, flag: str) -> DataFrame:
    """Left-join a flag that is true where ``df[on]`` is one of ``ids[id_col]``."""
    keys = ids.select(F.col(id_col).alias(on), F.lit(True).alias(flag)).distinct()
    return df.join(keys, on=on, how="left")


def validate(
    raw: RawTables,
    *,
    dataset: str,
    event_weights: dict[str, float],
    edge_kinds: list[str],
    max_weight: float = MAX_WEIGHT,
    rating_weight: str = "explicit",
    positive_at: float | None = None,
) -> Ingested:
    """Validate raw tables into canonical ones plus rejects (see module docstring).

    Weights above ``max_weight`` (or the source's own maximum, if smaller) are rejected.
    Ratings (event ``rating``): with ``positive_at`` one below it is kept as event
    ``LOW_RATING`` (no positive: ``socialrec.data.split.positives`` leaves it out);
    ``rating_weight`` binary makes every rating's weight 1.0 (explicit: the rating).
    Items need no text: an item without title and text is kept (the collaborative and
    social models use it; the text stages skip it).
    The validated frames are persisted; call ``release()`` on the result when done."""
    persisted: list[DataFrame] = []
    if raw.max_weight is not None:
        max_weight = min(max_weight, raw.max_weight)
    ints = raw.integer_ids

    def ts_of(table: str, col: Column) -> Column:
        return parse_ts(col, raw.ts_format.get(table, "auto"))

    def ts_rules(table: str, raw_col: Column, required: bool, earliest: str = EARLIEST) -> list[Rule]:
        return _ts_rules(C.TS if table in ("interactions", "edges") else C.CREATED_AT, ts_of(table, raw_col), raw_col,
                         required, earliest, raw.ts_format.get(table, "auto"))
    # ------------------------------------------------------------- users
    u = raw.users
    users, rej_users, st_users = _split(
        u,
        [Rule(C.USER, _blank(F.col(C.USER)), "missing user_id")]
        + _id_rules(ints, (C.USER, F.col(C.USER)))
        + ts_rules("users", _col_or_null(u, C.CREATED_AT), False, CONTENT_EARLIEST),
        table=USERS,
        dataset=dataset,
        raw_cols=_raw_cols(u),
        typed={
            C.USER: F.trim(F.col(C.USER)),
            "name": _col_or_null(u, "name"),
            "profile_text": _col_or_null(u, "profile_text"),
            C.CREATED_AT: ts_of("users", _col_or_null(u, C.CREATED_AT)),
        },
        dedupe_on=[C.USER],
        persisted=persisted,
    )

    # ------------------------------------------------------------- items
    it = raw.items.withColumn("_author", F.trim(_col_or_null(raw.items, C.AUTHOR)))
    it = _known(it, users, "_author", C.USER, "_author_ok")
    tags_raw = _col_or_null(it, C.TAGS)
    tags = F.when(
        ~_blank(tags_raw),
        F.filter(F.transform(F.split(tags_raw, r"\|"), lambda t: F.lower(F.trim(t))), lambda t: t != ""),
    )
    title, text = _col_or_null(it, C.TITLE), _col_or_null(it, C.TEXT)
    items, rej_items, st_items = _split(
        it,
        [
            Rule(C.ITEM, _blank(F.col(C.ITEM)), "missing item_id"),
            *_id_rules(ints, (C.ITEM, F.col(C.ITEM)), (C.AUTHOR, F.col("_author"))),
            Rule(C.AUTHOR, ~_blank(F.col("_author")) & F.col("_author_ok").isNull(),
                 F.concat(F.lit("unknown author: "), F.col("_author"))),
        ]
        + ts_rules("items", _col_or_null(it, C.CREATED_AT), False, CONTENT_EARLIEST),
        table=ITEMS,
        dataset=dataset,
        raw_cols=_raw_cols(raw.items),
        typed={
            C.ITEM: F.trim(F.col(C.ITEM)),
            C.AUTHOR: F.when(~_blank(F.col("_author")), F.col("_author")),
            C.TITLE: title,
            C.TEXT: text,
            C.TAGS: tags,
            C.KIND: F.coalesce(_col_or_null(it, C.KIND), F.lit("post")),
            C.PARENT: _col_or_null(it, C.PARENT),
            C.CREATED_AT: ts_of("items", _col_or_null(it, C.CREATED_AT)),
            C.CONTENT_HASH: F.sha2(F.concat_ws("\u0001", F.coalesce(title, F.lit("")), F.coalesce(text, F.lit(""))), 256),
        },
        dedupe_on=[C.ITEM],
        persisted=persisted,
    )

    # ------------------------------------------------------------- interactions
    ia = raw.interactions.withColumn("_user", F.trim(F.col(C.USER))).withColumn("_item", F.trim(F.col(C.ITEM)))
    ia = _known(ia, users, "_user", C.USER, "_user_ok")
    ia = _known(ia, items, "_item", C.ITEM, "_item_ok")
    weights = F.create_map(*[x for k, v in event_weights.items() for x in (F.lit(k), F.lit(float(v)))])
    event = F.lower(F.trim(F.col(C.EVENT)))
    w_raw = _col_or_null(ia, C.WEIGHT)
    w_num = try_cast(F.trim(w_raw), "double")
    ts_raw = F.col(C.TS)
    ts = ts_of("interactions", ts_raw)
    rating = event == "rating"
    weight = F.coalesce(w_num, F.element_at(weights, event))  # (a rating without a value is a reject)
    below = rating & (weight < positive_at) if positive_at is not None else F.lit(False)
    if rating_weight == "binary":
        weight = F.when(rating, F.lit(1.0)).otherwise(weight)
    interactions, rej_ia, st_ia = _split(
        ia,
        [
            Rule(C.USER, _blank(F.col("_user")), "missing user_id"),
            Rule(C.ITEM, _blank(F.col("_item")), "missing item_id"),
            *_id_rules(ints, (C.USER, F.col("_user")), (C.ITEM, F.col("_item"))),
            Rule(C.EVENT, _blank(F.col(C.EVENT)), "missing event"),
            Rule(C.EVENT, F.element_at(weights, event).isNull(),
                 F.concat(F.lit("unknown event kind: "), F.col(C.EVENT),
                          F.lit(f" (known: {', '.join(event_weights)})"))),
            Rule(C.WEIGHT, rating & _blank(w_raw), "missing rating"),
            Rule(C.WEIGHT, ~_blank(w_raw) & w_num.isNull(), F.concat(F.lit("weight is not a number: "), w_raw)),
            Rule(C.WEIGHT, ~_blank(w_raw) & ((w_num <= 0) | F.isnan(w_num) | (w_num == float("inf"))),
                 F.concat(F.lit("weight must be a positive finite number: "), w_raw)),
            Rule(C.WEIGHT, ~_blank(w_raw) & (w_num > max_weight),
                 F.concat(F.lit(f"weight above the maximum {_num(max_weight)}: "), w_raw)),
        ]
        + ts_rules("interactions", ts_raw, True)
        + [
            Rule(C.USER, F.col("_user_ok").isNull(), F.concat(F.lit("unknown user: "), F.col("_user"))),
            Rule(C.ITEM, F.col("_item_ok").isNull(), F.concat(F.lit("unknown item: "), F.col("_item"))),
        ],
        table=INTERACTIONS,
        dataset=dataset,
        raw_cols=_raw_cols(raw.interactions),
        typed={
            C.USER: F.col("_user"),
            C.ITEM: F.col("_item"),
            C.EVENT: F.when(below, F.lit(LOW_RATING)).otherwise(event),
            C.WEIGHT: weight,
            C.TS: ts,
            C.DETAIL: _col_or_null(ia, C.DETAIL),
        },
        dedupe_on=[C.USER, C.ITEM, C.EVENT, C.TS, C.DETAIL],
        persisted=persisted,
    )

    # ------------------------------------------------------------- edges
    if raw.edges is not None:
        ed = raw.edges.withColumn("_src", F.trim(F.col(C.SRC))).withColumn("_dst", F.trim(F.col(C.DST)))
        ed = _known(ed, users, "_src", C.USER, "_src_ok")
        ed = _known(ed, users, "_dst", C.USER, "_dst_ok")
        kind = F.lower(F.trim(F.col(C.KIND)))
        ew_raw = _col_or_null(ed, C.WEIGHT)
        ew = try_cast(F.trim(ew_raw), "double")
        e_ts_raw = _col_or_null(ed, C.TS)
        edges, rej_edges, st_edges = _split(
            ed,
            [
                Rule(C.SRC, _blank(F.col("_src")), "missing src"),
                Rule(C.DST, _blank(F.col("_dst")), "missing dst"),
                *_id_rules(ints, (C.SRC, F.col("_src")), (C.DST, F.col("_dst"))),
                Rule(C.DST, F.col("_src") == F.col("_dst"), "self edge"),
                Rule(C.KIND, ~kind.isin(*edge_kinds) | kind.isNull(),
                     F.concat(F.lit("unknown edge kind: "), F.coalesce(F.col(C.KIND), F.lit("null")))),
                Rule(C.WEIGHT, ~_blank(ew_raw) & (ew.isNull() | (ew <= 0) | F.isnan(ew)),
                     F.concat(F.lit("weight must be a positive number: "), ew_raw)),
                Rule(C.WEIGHT, ~_blank(ew_raw) & (ew > max_weight),
                     F.concat(F.lit(f"weight above the maximum {_num(max_weight)}: "), ew_raw)),
            ]
            + ts_rules("edges", e_ts_raw, False)
            + [
                Rule(C.SRC, F.col("_src_ok").isNull(), F.concat(F.lit("unknown user: "), F.col("_src"))),
                Rule(C.DST, F.col("_dst_ok").isNull(), F.concat(F.lit("unknown user: "), F.col("_dst"))),
            ],
            table=EDGES,
            dataset=dataset,
            raw_cols=_raw_cols(raw.edges),
            typed={
                C.SRC: F.col("_src"),
                C.DST: F.col("_dst"),
                C.KIND: kind,
                C.WEIGHT: F.coalesce(ew, F.lit(1.0)),
                C.TS: ts_of("edges", e_ts_raw),
                C.EVIDENCE: F.col(C.EVIDENCE) if C.EVIDENCE in ed.columns else F.lit(None),
            },
            dedupe_on=[C.SRC, C.DST, C.KIND],
            persisted=persisted,
        )
    else:
        spark = raw.users.sparkSession
        edges = spark.createDataFrame([], EDGES.schema)
        rej_edges = spark.createDataFrame([], REJECTS.schema)
        st_edges = None

    rejects = rej_users.unionByName(rej_items).unionByName(rej_ia).unionByName(rej_edges)
    stats = st_users.unionByName(st_items).unionByName(st_ia)
    if st_edges is not None:
        stats = stats.unionByName(st_edges)
    return Ingested(users=users, items=items, interactions=interactions, edges=edges, rejects=rejects, stats=stats,
                    persisted=persisted)


def validate_dataset(raw: RawTables, dataset: DatasetConfig) -> Ingested:
    """``validate`` with the configured dataset's rules (name, event weights, edge kinds,
    maximum weight, rating weight and positive threshold)."""
    return validate(raw, dataset=dataset.name, event_weights=dataset.event_weights, edge_kinds=dataset.edge_kinds,
                    max_weight=dataset.max_weight, rating_weight=dataset.rating_weight,
                    positive_at=dataset.positive_at)
