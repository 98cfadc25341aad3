"""Ingest: every kind of bad row goes to rejects with its field and reason, nothing is
lost (accepted + rejected = read), and accepted rows are typed to the canonical schema."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pyspark.sql import functions as F

from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, REJECTS, USERS
from socialrec.data.contract import RawTables
from socialrec.data.ingest import parse_ts, validate

WEIGHTS = {"view": 1.0, "like": 2.0, "comment": 3.0, "share": 4.0}
KINDS = ["follow", "friend"]

USERS_RAW = [
    ("u1", "Ann", "likes hops", "2026-01-01 10:00:00", 1),
    ("u2", "Bob", None, None, 2),
    (None, "Nobody", None, None, 3),                     # missing id
    ("u1", "Ann again", None, None, 4),                  # duplicate of row 1
    ("u3", "Cy", None, "soon", 5),                       # unparseable created_at
]
ITEMS_RAW = [
    ("p1", "u1", "Hops", "Citra hops in IPA", "beer|hops", "2026-02-01 00:00:00", 1),
    ("p2", None, "Orphan", "written by a deleted account", None, "1767225600", 2),  # epoch seconds
    ("p3", "u9", "Ghost", "unknown author", None, None, 3),
    ("", "u1", "No id", "x", None, None, 4),
    ("p4", "u2", None, None, None, None, 5),             # no text at all: kept (ratings exports have none)
]
IA_RAW = [
    ("u1", "p1", "view", "2026-03-01 12:00:00", None, 1),
    ("u1", "p1", "LIKE", "2026-03-01 12:05:00", None, 2),    # event case-folded
    ("u2", "p1", "rating", "2026-03-01 12:00:00", "4.5", 3),  # unknown event
    (None, "p1", "view", "2026-03-01 12:00:00", None, 4),     # missing user
    ("u1", "p2", "view", "not a time", None, 5),
    ("u1", "p2", "view", "1965-06-01 00:00:00", None, 6),
    ("u1", "p2", "view", "2999-01-01 00:00:00", None, 7),
    ("u7", "p1", "view", "2026-03-01 12:00:00", None, 8),     # unknown user
    ("u1", "p404", "view", "2026-03-01 12:00:00", None, 9),   # unknown item
    ("u1", "p1", "view", "2026-03-01 12:00:00", None, 10),    # duplicate of row 1
    ("u2", "p2", "share", "2026-03-02 00:00:00", "abc", 11),  # non-numeric weight
    ("u2", "p2", "share", "2026-03-02 00:00:00", "-2", 12),   # negative weight
    ("u2", "p2", "comment", "1767312000000", "2.5", 13),      # epoch millis, explicit weight
    ("u2", "p2", "view", None, None, 14),                     # missing timestamp
]
EDGES_RAW = [
    ("u1", "u2", "follow", None, None, 1),
    ("u2", "u2", "follow", None, None, 2),      # self edge
    ("u2", "u1", "block", None, None, 3),       # unknown kind
    ("u2", "u9", "follow", None, None, 4),      # unknown user
    ("u2", "u1", "friend", "0", None, 5),       # non-positive weight
    ("u2", "u1", "FRIEND", "2", "2026-01-01", 6),
]

EXPECTED_REJECTS = {
    ("users", 3): ("user_id", "missing user_id"),
    ("users", 4): ("user_id", "duplicate of users.csv row 1"),
    ("users", 5): ("created_at", "unparseable timestamp: soon"),
    ("items", 3): ("author_id", "unknown author: u9"),
    ("items", 4): ("item_id", "missing item_id"),
    ("interactions", 3): ("event", "unknown event kind: rating (known: view, like, comment, share)"),
    ("interactions", 4): ("user_id", "missing user_id"),
    ("interactions", 5): ("ts", "unparseable timestamp: not a time"),
    ("interactions", 6): ("ts", "timestamp before 1970: 1965-06-01 00:00:00"),
    ("interactions", 7): ("ts", "timestamp in the future: 2999-01-01 00:00:00"),
    ("interactions", 8): ("user_id", "unknown user: u7"),
    ("interactions", 9): ("item_id", "unknown item: p404"),
    ("interactions", 10): ("user_id,item_id,event,ts,detail", "duplicate of interactions.csv row 1"),
    ("interactions", 11): ("weight", "weight is not a number: abc"),
    ("interactions", 12): ("weight", "weight must be a positive finite number: -2"),
    ("interactions", 14): ("ts", "missing timestamp"),
    ("edges", 2): ("dst", "self edge"),
    ("edges", 3): ("kind", "unknown edge kind: block"),
    ("edges", 4): ("dst", "unknown user: u9"),
    ("edges", 5): ("weight", "weight must be a positive number: 0"),
}


@pytest.fixture
def ingested(spark):
    def frame(rows, cols, name):
        df = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in cols) + ", _row long")
        return df.withColumn("_source", F.lit(f"{name}.csv"))

    raw = RawTables(
        users=frame(USERS_RAW, ["user_id", "name", "profile_text", "created_at"], "users"),
        items=frame(ITEMS_RAW, ["item_id", "author_id", "title", "text", "tags", "created_at"], "items"),
        interactions=frame(IA_RAW, ["user_id", "item_id", "event", "ts", "weight"], "interactions"),
        edges=frame(EDGES_RAW, ["src", "dst", "kind", "weight", "ts"], "edges"),
    )
    return validate(raw, dataset="t", event_weights=WEIGHTS, edge_kinds=KINDS)


def test_every_bad_row_is_rejected_with_field_and_reason(ingested):
    got = {(r.table, r.row): (r.field, r.reason) for r in ingested.rejects.collect()}
    assert got == EXPECTED_REJECTS


def test_nothing_is_lost(ingested):
    rejected = {}
    for r in ingested.rejects.collect():
        rejected[r.table] = rejected.get(r.table, 0) + 1
    for name, raw_rows, df in (
        ("users", USERS_RAW, ingested.users),
        ("items", ITEMS_RAW, ingested.items),
        ("interactions", IA_RAW, ingested.interactions),
        ("edges", EDGES_RAW, ingested.edges),
    ):
        assert df.count() + rejected.get(name, 0) == len(raw_rows), name


def test_accepted_rows_are_typed_and_normalised(ingested):
    for df, table in ((ingested.users, USERS), (ingested.items, ITEMS), (ingested.interactions, INTERACTIONS),
                      (ingested.edges, EDGES), (ingested.rejects, REJECTS)):
        assert [(f.name, f.dataType) for f in df.schema] == [(f.name, f.dataType) for f in table.schema]
    ia = {(r.user_id, r.item_id, r.event): (r.weight, r.ts) for r in ingested.interactions.collect()}
    assert ia == {
        ("u1", "p1", "view"): (1.0, datetime(2026, 3, 1, 12, 0)),
        ("u1", "p1", "like"): (2.0, datetime(2026, 3, 1, 12, 5)),  # weight from the event kind
        ("u2", "p2", "comment"): (2.5, datetime(2026, 1, 2, 0, 0)),  # explicit weight, epoch millis
    }
    items = {r.item_id: r for r in ingested.items.collect()}
    assert set(items) == {"p1", "p2", "p4"} and items["p4"].title is None and items["p4"].text is None
    assert items["p1"].tags == ["beer", "hops"] and items["p2"].tags is None
    assert items["p2"].author_id is None and items["p2"].created_at == datetime(2026, 1, 1)
    assert len(items["p1"].content_hash) == 64
    edges = {(r.src, r.dst, r.kind): r.weight for r in ingested.edges.collect()}
    assert edges == {("u1", "u2", "follow"): 1.0, ("u2", "u1", "friend"): 2.0}


def test_rejects_keep_the_raw_row(ingested):
    r = ingested.rejects.where("table = 'interactions' and row = 3").first()
    assert r.source == "interactions.csv" and r.dataset == "t"
    assert json.loads(r.raw) == {"user_id": "u2", "item_id": "p1", "event": "rating",
                                 "ts": "2026-03-01 12:00:00", "weight": "4.5"}


def test_parse_ts(spark):
    df = spark.createDataFrame([("2026-03-01 12:00:00",), ("2026-03-01T12:00:00",), ("1772366400",),
                                ("1772366400000",), ("garbage",), (None,)], "s string")
    got = [r.t for r in df.select(parse_ts(F.col("s")).alias("t")).collect()]
    assert got[:4] == [datetime(2026, 3, 1, 12)] * 4
    assert got[4:] == [None, None]
