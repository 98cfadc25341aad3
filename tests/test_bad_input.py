"""The bad-input catalogue: every adapter and the generic loader fed every kind of bad
input the reliability guarantee names, in the real file formats, hand-made here.

For each (adapter, kind) the outcome is one of: the row is *rejected* (its table, file,
row, field and reason are asserted exactly), *accepted* whole (the value checked), the
run *stops* with a message naming the file, or the kind does not apply to the format
(the reason is stated). For every file: rows read = accepted + rejected, and rows read =
the data records in the file (counted here, independently), so nothing unrejected goes
missing. docs/tables.md ("Guarantees") quotes the counts; a test keeps it true.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.jars import spark_line
from socialrec.core.schemas import REJECTS
from socialrec.core.storage import Storage
from socialrec.data.ingest import validate
from socialrec.data.readers import SourceError
from socialrec.data.sources import load_raw
from socialrec.stages.ingest import ingest_stage

from .conftest import ROOT

KINDS = {
    "truncated": "a file cut off in its last record",
    "delimiter": "a record with the wrong delimiter",
    "encoding": "bytes that are not valid in the file's encoding",
    "null_id": "a null or empty id",
    "non_numeric_id": "a non-numeric id where ids are integers",
    "negative_weight": "a negative weight",
    "absurd_weight": "an absurd weight (above the source's or dataset.max_weight)",
    "future_ts": "a timestamp in the future",
    "pre_1970_ts": "a timestamp before 1970",
    "duplicate": "a duplicate event",
    "unknown_user": "an interaction or edge naming an unknown user",
    "unknown_item": "an interaction naming an unknown item",
    "self_edge": "an edge from a user to themself",
    "html": "HTML / script injection in text",
    "huge_text": "a 1 MB text",
    "empty_file": "an empty (zero-byte) file",
    "missing": "a missing folder or file",
}
MB = 1_000_000
SCRIPT = "<script>alert('x')</script>"


@dataclass
class Case:
    """One adapter's fixture: conf overrides, the rejects expected (by table, source, row),
    the accepted checks, the kinds that stop the run (file to empty or remove), and the
    kinds that do not apply with the reason."""

    overrides: list[str]
    rejects: dict[tuple[str, str, int], tuple[str, str, str]] = field(default_factory=dict)
    accepted: dict[str, object] = field(default_factory=dict)  # kind -> check(out)
    records: dict[str, int] = field(default_factory=dict)  # file -> data records in it
    empty: str = ""  # the file emptied for the empty_file case
    not_applicable: dict[str, str] = field(default_factory=dict)
    stops: dict[str, tuple[object, str]] = field(default_factory=dict)  # kind -> (setup(folder), message)


def _lines(path: Path, rows: list, *, header: str | None = None, encoding: str = "utf-8", newline_at_end=True,
           first_row: int = 1, table: str, case: Case, source: str | None = None) -> None:
    """Write ``rows`` (text or bytes, optionally with an expected reject) as lines and
    register the expected rejects by line number."""
    out = b""
    if header is not None:
        out += header.encode(encoding) + b"\n"
    for i, row in enumerate(rows):
        text, expect = (row if isinstance(row, tuple) else (row, None))
        data = text if isinstance(text, bytes) else text.encode(encoding)
        out += data + (b"\n" if newline_at_end or i < len(rows) - 1 else b"")
        if expect is not None:
            case.rejects[(table, source or path.name, first_row + i)] = expect
    path.write_bytes(out)
    case.records[source or path.name] = len(rows)


def _xml(path: Path, root: str, rows: list, *, table_of, case: Case, truncate_last=False) -> None:
    """A Stack Exchange style dump: one ``<row .../>`` per line; expected rejects keyed by
    the row's Id (what the adapter numbers XML rows by)."""
    out = [b'<?xml version="1.0" encoding="utf-8"?>', f"<{root}>".encode()]
    for i, (attrs, expect) in enumerate(rows):
        body = " ".join(f'{k}="{v}"' for k, v in attrs.items())
        line = f"  <row {body} />".encode()
        if truncate_last and i == len(rows) - 1:
            line = line[: len(line) // 2]
        out.append(line)
        if expect is not None:
            key = int(attrs["Id"]) if str(attrs.get("Id", "")).lstrip("-").isdigit() else expect[3]
            case.rejects[(table_of(attrs), path.name, key)] = expect[:3]
    if not truncate_last:
        out.append(f"</{root}>".encode())
    path.write_bytes(b"\n".join(out) + (b"" if truncate_last else b"\n"))
    case.records[path.name] = len(rows)


GENRES = "\n".join(f"g{i}|{i}" for i in range(19)) + "\n"
FLAGS = "|".join(["0"] * 18 + ["1"])
LINE = "line"
BAD_LINE = "malformed line: expected 4 fields separated by '\\t', got "
BAD_CSV = "malformed CSV record"


def _item_text(title):
    return lambda out: out.items.where(F.col("title") == title).count() == 1


def movielens_100k(tmp: Path) -> Case:
    d = tmp / "ml100k"
    d.mkdir(parents=True)
    c = Case(["dataset.name=movielens-100k", f"dataset.path={d}"], empty="u.data")
    (d / "u.genre").write_text(GENRES)
    _lines(d / "u.user", [
        "1|24|M|technician|85711", "2|53|F|other|94043",
        (b"3|23|M|wr\xffiter|32067", (LINE, "encoding error: undecodable bytes in line", "encoding")),
        ("x4|30|M|writer|1", ("user_id", "user_id is not an integer: x4", "non_numeric_id")),
        ("|30|M|writer|1", ("user_id", "missing user_id", "null_id")),
    ], table="users", case=c)
    _lines(d / "u.item", [
        f"1|Caf\xe9 (1995)|01-Jan-1995||http://x|{FLAGS}",
        f"2|{SCRIPT} (1996)|01-Jan-1996||http://x|{FLAGS}",
        f"3|{'A' * MB} (1997)|01-Jan-1997||http://x|{FLAGS}",
        (f"4|Later (2099)|01-Jan-2099||http://x|{FLAGS}",
         ("created_at", "timestamp in the future: 2099-01-01 00:00:00", "future_ts")),
    ], encoding="latin-1", table="items", case=c)
    _lines(d / "u.data", [
        "1\t1\t5\t881250949", "2\t1\t3\t881250950", "1\t2\t4\t881250951",
        ("1\t1\t5\t881250949", ("user_id,item_id,event,ts,detail", "duplicate of u.data row 1", "duplicate")),
        ("1,3,4,881250951", (LINE, BAD_LINE + "1", "delimiter")),
        ("9\t1\t4\t881250952", ("user_id", "unknown user: 9", "unknown_user")),
        ("1\t7\t4\t881250953", ("item_id", "unknown item: 7", "unknown_item")),
        ("2\t1\t-3\t881250954", ("weight", "weight must be a positive finite number: -3", "negative_weight")),
        ("2\t3\t50\t881250955", ("weight", "weight above the maximum 5: 50", "absurd_weight")),
        ("2\t3\t4\t4102444800", ("ts", "timestamp in the future: 4102444800", "future_ts")),
        ("2\t3\t4\t-86400", ("ts", "timestamp before 1970: -86400", "pre_1970_ts")),
        ("x2\t3\t4\t881250956", ("user_id", "user_id is not an integer: x2", "non_numeric_id")),
        ("\t3\t4\t881250957", ("user_id", "missing user_id", "null_id")),
        ("2\t3", (LINE, BAD_LINE + "2", "truncated")),
    ], newline_at_end=False, table="interactions", case=c)
    c.accepted = {
        "html": _item_text(f"{SCRIPT} (1996)"),
        "huge_text": lambda out: out.items.where(F.length("title") > MB).count() == 1,
    }
    c.not_applicable = {"self_edge": "MovieLens has no social graph"}
    return c


def movielens_latest(tmp: Path) -> Case:
    d = tmp / "mllatest"
    d.mkdir(parents=True)
    c = Case(["dataset.name=movielens-latest", f"dataset.path={d}"], empty="ratings.csv")
    _lines(d / "movies.csv", [
        "1,Toy Story (1995),Animation|Children",
        f'2,"{SCRIPT}",Drama',
        f'3,"{"B" * MB}",Drama',
        (b"4,Caf\xe9 (1995),Drama", (LINE, "encoding error: undecodable bytes in record", "encoding")),
        ("5;Wrong;Drama", (LINE, BAD_CSV, "delimiter")),
        ("x6,Title,Drama", ("item_id", "item_id is not an integer: x6", "non_numeric_id")),
    ], header="movieId,title,genres", table="items", case=c)
    _lines(d / "ratings.csv", [
        "1,1,4.0,964982703", "1,2,4.0,964982704", "2,3,5.0,964982705",
        ("1,1,4.0,964982703", ("user_id,item_id,event,ts,detail", "duplicate of ratings.csv row 1", "duplicate")),
        ("1,99,4.0,964982706", ("item_id", "unknown item: 99", "unknown_item")),
        (",1,4.0,964982707", ("user_id", "missing user_id", "null_id")),
        ("abc,1,4.0,964982708", ("user_id", "user_id is not an integer: abc", "non_numeric_id")),
        ("2,1,-1.0,964982709", ("weight", "weight must be a positive finite number: -1.0", "negative_weight")),
        ("2,1,500,964982710", ("weight", "weight above the maximum 5: 500", "absurd_weight")),
        ("2,2,3.0,4102444800", ("ts", "timestamp in the future: 4102444800", "future_ts")),
        ("2,2,3.0,-86400", ("ts", "timestamp before 1970: -86400", "pre_1970_ts")),
        ("2,1,3.", (LINE, BAD_CSV, "truncated")),
    ], header="userId,movieId,rating,timestamp", newline_at_end=False, table="interactions", case=c)
    _lines(d / "tags.csv", ["1,1,funny,964982710"], header="userId,movieId,tag,timestamp", table="interactions",
           case=c)
    # The users are the ids that rate or tag: "abc" is one, and is rejected as a user too.
    c.rejects[("users", "ratings.csv+tags.csv (user ids)", "abc")] = ("user_id", "user_id is not an integer: abc",
                                                                      "non_numeric_id")
    c.accepted = {
        "html": _item_text(SCRIPT),
        "huge_text": lambda out: out.items.where(F.length("title") == MB).count() == 1,
    }
    c.not_applicable = {
        "unknown_user": "no user file: the users are the ids that rate or tag, so every id is known",
        "self_edge": "MovieLens has no social graph",
    }
    return c


def lastfm(tmp: Path) -> Case:
    d = tmp / "lastfm"
    d.mkdir(parents=True)
    c = Case(["dataset.name=lastfm-hetrec", f"dataset.path={d}"], empty="user_friends.dat")
    bad2 = "malformed line: expected 3 fields separated by '\\t', got "
    _lines(d / "artists.dat", [
        "1\tMALICE MIZER\thttp://x\thttp://p",
        f"2\t{SCRIPT}\thttp://x\t",
        f"3\t{'C' * MB}\thttp://x\t",
        (b"4\tBj\xf6rk\thttp://x\t", (LINE, "encoding error: undecodable bytes in line", "encoding")),
        ("x5\tName\thttp://x\t", ("item_id", "item_id is not an integer: x5", "non_numeric_id")),
    ], header="id\tname\turl\tpictureURL", first_row=2, table="items", case=c)
    _lines(d / "user_artists.dat", [
        "2\t1\t13883", "2\t2\t100", "3\t3\t50",
        ("2\t1\t-5", ("weight", "weight must be a positive finite number: -5", "negative_weight")),
        ("2\t3\t1000000000000", ("weight", "weight above the maximum 1000000: 1000000000000", "absurd_weight")),
        ("2\t99\t10", ("item_id", "unknown item: 99", "unknown_item")),
        ("2,3,10", (LINE, bad2 + "1", "delimiter")),
        ("2\t\t10", ("item_id", "missing item_id", "null_id")),
        ("2\t3", (LINE, bad2 + "2", "truncated")),
    ], header="userID\tartistID\tweight", first_row=2, newline_at_end=False, table="interactions", case=c)
    _lines(d / "user_friends.dat", [
        "2\t3", "3\t2",
        ("2\t3", ("src,dst,kind", "duplicate of user_friends.dat row 2", "duplicate")),
        ("2\t2", ("dst", "self edge", "self_edge")),
    ], header="userID\tfriendID", first_row=2, table="edges", case=c)
    (d / "tags.dat").write_text("tagID\ttagValue\n1\tfunny\n")
    _lines(d / "user_taggedartists.dat", [
        "2\t1\t1\t1\t1\t2010",
        ("2\t1\t1\t1\t1\t2099", ("ts", "timestamp in the future: 2099-01-01 00:00:00", "future_ts")),
        ("2\t2\t1\t1\t1\t1960", ("ts", "timestamp before 1970: 1960-01-01 00:00:00", "pre_1970_ts")),
    ], header="userID\tartistID\ttagID\tday\tmonth\tyear", first_row=2, table="interactions", case=c)
    c.accepted = {
        "html": _item_text(SCRIPT),
        "huge_text": lambda out: out.items.where(F.length("title") == MB).count() == 1,
    }
    c.not_applicable = {
        "unknown_user": "no user file: the users are everyone who plays, tags or has a friend, so every id is known",
    }
    return c


def stackexchange(tmp: Path) -> Case:
    d = tmp / "se"
    d.mkdir(parents=True)
    c = Case(["dataset.name=stackexchange", f"dataset.path={d}"], empty="Votes.xml")
    t = "2020-01-01T00:00:00.000"
    _xml(d / "Users.xml", "users", [
        ({"Id": "1", "DisplayName": "Ann", "CreationDate": t}, None),
        ({"Id": "2", "DisplayName": "Bob", "CreationDate": t}, None),
        ({"Id": "3", "DisplayName": "Cy", "AboutMe": "&lt;script&gt;alert(1)&lt;/script&gt;hi", "CreationDate": t},
         None),
        ({"Id": "x5", "DisplayName": "Xavier", "CreationDate": t},
         ("user_id", "user_id is not an integer: x5", "non_numeric_id", "x5")),
        ({"DisplayName": "NoId", "CreationDate": t},
         (LINE, "XML row without an Id attribute (line 7)", "null_id", 7)),
        ({"Id": "6", "DisplayName": "Later", "CreationDate": "2099-01-01T00:00:00.000"},
         ("created_at", "timestamp in the future: 2099-01-01T00:00:00.000", "future_ts")),
    ], table_of=lambda a: "users", case=c)
    script = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Safe &amp;amp; sound&lt;/p&gt;"
    q = {"PostTypeId": "1", "CreationDate": t}
    a = {"PostTypeId": "2", "CreationDate": t}
    _xml(d / "Posts.xml", "posts", [
        ({"Id": "1", **q, "OwnerUserId": "1", "Title": "Hops", "Body": "&lt;p&gt;Citra&lt;/p&gt;"}, None),
        ({"Id": "2", **q, "OwnerUserId": "2", "Title": "Script", "Body": script}, None),
        ({"Id": "3", **q, "OwnerUserId": "2", "Title": "Long", "Body": "D" * MB}, None),
        ({"Id": "4", **a, "ParentId": "1", "OwnerUserId": "2"}, None),
        ({"Id": "5", **a, "ParentId": "1", "OwnerUserId": "1"}, None),   # answers own question: a self edge
        ({"Id": "6", **a, "ParentId": "2", "OwnerUserId": "3", "CreationDate": "2099-01-01T00:00:00.000"},
         ("ts", "timestamp in the future: 2099-01-01T00:00:00.000", "future_ts")),
        ({"Id": "7", **a, "ParentId": "2", "OwnerUserId": "3", "CreationDate": "1969-07-20T20:17:00.000"},
         ("ts", "timestamp before 1970: 1969-07-20T20:17:00.000", "pre_1970_ts")),
        ({"Id": "8", **a, "ParentId": "1", "OwnerUserId": "99"}, ("user_id", "unknown user: 99", "unknown_user")),
        ({"Id": "9", **a, "ParentId": "404", "OwnerUserId": "2"}, ("item_id", "unknown item: 404", "unknown_item")),
        ({"Id": "10", **a, "ParentId": "1", "OwnerUserId": "2"},
         (LINE, "malformed XML row (cut off or broken markup) at line 12", "truncated")),
    ], table_of=lambda a: "interactions" if a.get("PostTypeId") == "2" else "items", case=c, truncate_last=True)
    _xml(d / "Comments.xml", "comments", [
        ({"Id": "1", "PostId": "1", "UserId": "2", "CreationDate": t}, None),
        ({"Id": "1", "PostId": "1", "UserId": "2", "CreationDate": t},
         ("user_id,item_id,event,ts,detail", "duplicate of Comments.xml row 1", "duplicate")),
        ({"Id": "2", "PostId": "1", "CreationDate": t}, (LINE, "comment by a deleted user (no UserId)", "null_id")),
        ({"Id": "3", "PostId": "1", "UserId": "x7", "CreationDate": t},
         ("user_id", "user_id is not an integer: x7", "non_numeric_id")),
    ], table_of=lambda a: "interactions", case=c)
    _xml(d / "Votes.xml", "votes", [({"Id": "1", "PostId": "1", "VoteTypeId": "5", "UserId": "1", "CreationDate": t},
                                     None)], table_of=lambda a: "interactions", case=c)
    # Derived replied_to edges (rows numbered by a hash of src, dst): answers 6/7 make
    # 3 -> 2 dated by its latest reply (2099), answer 5 is 1 -> 1, answer 8 99 -> 1, the
    # x7 comment x7 -> 1.
    derived = "Posts.xml+Comments.xml (derived replies)"
    c.rejects.update({
        ("edges", derived, ("3", "2")): ("ts", "timestamp in the future: 2099-01-01T00:00:00.000", "future_ts"),
        ("edges", derived, ("1", "1")): ("dst", "self edge", "self_edge"),
        ("edges", derived, ("99", "1")): ("src", "unknown user: 99", "unknown_user"),
        ("edges", derived, ("x7", "1")): ("src", "src is not an integer: x7", "non_numeric_id"),
    })
    c.accepted = {
        "html": lambda out: [r.text for r in out.items.where("item_id = '2'").collect()] == ["Script. Safe & sound"]
        and out.users.where("user_id = '3'").first().profile_text == "hi",
        "huge_text": lambda out: out.items.where(F.length("text") > MB).count() == 1,
    }
    c.stops = {"encoding": (lambda folder: (folder / "Users.xml").write_bytes(
        (folder / "Users.xml").read_bytes().replace(b'DisplayName="Bob"', b'DisplayName="Bj\xf6rk"')),
        r"dataset stackexchange: cannot read .*/Users\.xml: Invalid UTF-8")}
    c.not_applicable = {
        "delimiter": "XML has no field delimiter (broken markup is the truncated case)",
        "negative_weight": "interactions carry no weight; edge weights are counts the adapter derives",
        "absurd_weight": "interactions carry no weight; edge weights are counts the adapter derives",
    }
    return c


def _files_case(tmp: Path, fmt: str) -> Case:
    d = tmp / f"files-{fmt}"
    d.mkdir(parents=True)
    ext = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[fmt]
    files = {t: {"path": str(d / f"{t}.{ext}"), "format": fmt} for t in ("users", "items", "interactions", "edges")}
    c = Case([f"dataset.name=export-{fmt}", "dataset.adapter=files", f"dataset.files={json.dumps(files)}"],
             empty=f"interactions.{ext}")
    users = [("u1", "Ann"), ("u2", "Bob"), ("", "Nobody", ("user_id", "missing user_id", "null_id"))]
    items = [("p1", "u1", "Hops", "Citra"), ("p2", "u1", "Script", SCRIPT), ("p3", "u2", "Long", "E" * MB)]
    ia = [
        ("u1", "p1", "view", "2026-03-01 12:00:00", ""), ("u2", "p2", "like", "2026-03-01 12:00:00", ""),
        ("u1", "p1", "view", "2026-03-01 12:00:00", "", ("user_id,item_id,event,ts,detail",
                                                         f"duplicate of interactions.{ext} row 1", "duplicate")),
        ("u9", "p1", "view", "2026-03-01 12:00:00", "", ("user_id", "unknown user: u9", "unknown_user")),
        ("u1", "p9", "view", "2026-03-01 12:00:00", "", ("item_id", "unknown item: p9", "unknown_item")),
        ("u2", "p1", "view", "2026-03-01 12:00:00", "-2", ("weight", "weight must be a positive finite number: -2",
                                                          "negative_weight")),
        ("u2", "p1", "share", "2026-03-01 12:00:00", "1e300", ("weight", "weight above the maximum 1000000: 1e300",
                                                              "absurd_weight")),
        ("u2", "p3", "view", "2999-01-01 00:00:00", "", ("ts", "timestamp in the future: 2999-01-01 00:00:00",
                                                         "future_ts")),
        ("u2", "p3", "view", "1965-06-01 00:00:00", "", ("ts", "timestamp before 1970: 1965-06-01 00:00:00",
                                                         "pre_1970_ts")),
        ("", "p3", "view", "2026-03-01 12:00:00", "", ("user_id", "missing user_id", "null_id")),
    ]
    edges = [("u1", "u2", "follow"), ("u2", "u2", "follow", ("dst", "self edge", "self_edge"))]
    cols = {"users": ["user_id", "name"], "items": ["item_id", "author_id", "title", "text"],
            "interactions": ["user_id", "item_id", "event", "ts", "weight"], "edges": ["src", "dst", "kind"]}
    for table, rows in (("users", users), ("items", items), ("interactions", ia), ("edges", edges)):
        n = len(cols[table])
        path = d / f"{table}.{ext}"
        for i, r in enumerate(rows):
            if len(r) > n:
                c.rejects[(table, path.name, i + 1)] = r[n]
        frame = pd.DataFrame([r[:n] for r in rows], columns=cols[table])
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
            c.records[path.name] = len(rows)
            continue
        if fmt == "csv":
            text = frame.to_csv(index=False)
        else:
            text = frame.to_json(orient="records", lines=True)
        body = text.encode()
        if table == "interactions":  # the text-level kinds: a bad delimiter, bad bytes, a cut-off record
            n_rows = len(rows)
            if fmt == "csv":
                extra = [b"u1;p1;view;2026-03-01 12:00:00;", b"u1,p\xe9,view,2026-03-01 12:00:00,", b'u2,"p2,vi']
                reasons = [(LINE, "malformed CSV record: expected 5 fields separated by ','", "delimiter"),
                           (LINE, "encoding error: undecodable bytes in record", "encoding"),
                           (LINE, "malformed CSV record: expected 5 fields separated by ','", "truncated")]
            else:
                extra = [b'{"user_id": "u1", "item_id": "p\xe9", "event": "view", "ts": "2026-03-01 12:00:00"}',
                         b'{"user_id": "u2", "item_id": "p2", "ev']
                reasons = [(LINE, "encoding error: undecodable bytes in record", "encoding"),
                           (LINE, "malformed JSON record", "truncated")]
            body = body.rstrip(b"\n") + b"\n" + b"\n".join(extra)
            for j, why in enumerate(reasons):
                c.rejects[(table, path.name, n_rows + j + 1)] = why
            c.records[path.name] = n_rows + len(extra)
        else:
            c.records[path.name] = len(rows)
        path.write_bytes(body)
    c.accepted = {
        "html": lambda out: [r.text for r in out.items.where("item_id = 'p2'").collect()] == [SCRIPT],
        "huge_text": lambda out: out.items.where(F.length("text") == MB).count() == 1,
    }
    c.not_applicable = {"non_numeric_id": "the generic loader's ids are text: any non-blank string is an id"}
    if fmt == "json":
        c.not_applicable["delimiter"] = "JSON lines have no delimiter to get wrong (broken JSON is the truncated case)"
    if fmt == "parquet":
        c.not_applicable.update({
            "delimiter": "Parquet is binary and typed: no delimiters",
            "encoding": "Parquet strings are stored as UTF-8 by the writer: no decoding step to fail",
        })
        c.stops = {"truncated": (lambda folder: (folder / "items.parquet").write_bytes(
            (folder / "items.parquet").read_bytes()[:200]),
            r"dataset\.files\.items\.path: .*items\.parquet cannot be read as parquet: .*not a Parquet file")}
    return c


ADAPTERS = {
    "movielens-100k": movielens_100k,
    "movielens-latest": movielens_latest,
    "lastfm-hetrec": lastfm,
    "stackexchange": stackexchange,
    "files-csv": lambda tmp: _files_case(tmp, "csv"),
    "files-json": lambda tmp: _files_case(tmp, "json"),
    "files-parquet": lambda tmp: _files_case(tmp, "parquet"),
}


def _config(case: Case, extra=()):
    name = next(o.split("=", 1)[1] for o in case.overrides if o.startswith("dataset.name="))
    layers = [CONF_DIR / "base.yaml"]
    if (CONF_DIR / "datasets" / f"{name}.yaml").is_file():
        layers.append(CONF_DIR / "datasets" / f"{name}.yaml")
    return load_config(layers, [*case.overrides, *extra])


def _row_key(spark, key):
    """Derived rows are numbered by a hash of their ids (see readers.users_from_ids and the
    Stack Exchange replies): the number for the ids given."""
    if isinstance(key, int):
        return key
    cols = [F.lit(k) for k in (key if isinstance(key, tuple) else (key,))]
    return spark.range(1).select(F.abs(F.xxhash64(*cols))).first()[0]


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_every_kind_of_bad_input(spark, tmp_path, adapter):
    case = ADAPTERS[adapter](tmp_path)
    cfg = _config(case)
    out = validate(load_raw(spark, cfg.dataset), dataset="t", event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds, max_weight=cfg.dataset.max_weight)
    try:
        got = {(r.table, r.source, r.row): (r.field, r.reason) for r in out.rejects.collect()}
        expected = {(t, s, _row_key(spark, k)): v[:2] for (t, s, k), v in case.rejects.items()}
        assert got == expected
        stats = {(r.table, r.source): (r.read, r.accepted, r.rejected) for r in out.stats.collect()}
        for (table, source), (read, accepted, rejected) in stats.items():
            assert read == accepted + rejected, (table, source)
        read_per_file = {}
        for (table, source), (read, _, _) in stats.items():
            read_per_file[source] = read_per_file.get(source, 0) + read
        for source, n in case.records.items():
            assert read_per_file.get(source) == n, (source, read_per_file.get(source), n)
        for kind, check in case.accepted.items():
            assert check(out), kind
        # Every rejected row keeps its raw text, bounded for the huge and broken ones.
        assert out.rejects.where(F.col("raw").isNull() | (F.length("raw") == 0)).count() == 0
    finally:
        out.release()


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_empty_file_and_missing_folder_stop_naming_them(spark, tmp_path, adapter):
    case = ADAPTERS[adapter](tmp_path)
    cfg = _config(case)
    folder = Path(cfg.dataset.path) if cfg.dataset.path else Path(cfg.dataset.files["interactions"].path).parent
    (folder / case.empty).write_bytes(b"")
    with pytest.raises(SourceError, match=rf"{re.escape(str(folder / case.empty))} is empty \(0 bytes\)"):
        load_raw(spark, cfg.dataset)
    gone = tmp_path / "nowhere"
    moved = folder.rename(gone)
    with pytest.raises(SourceError, match=rf"{re.escape(str(folder))}(/\w+\.\w+)? (is not a readable folder|does not exist)"):
        load_raw(spark, cfg.dataset)
    moved.rename(folder)


@pytest.mark.parametrize("adapter", ["stackexchange", "files-parquet"])  # the cases with `stops`
def test_unreadable_files_stop_the_ingest_naming_them(spark, tmp_path, adapter):
    case = ADAPTERS[adapter](tmp_path)
    (kind, (setup, message)), = case.stops.items()
    cfg = _config(case, [f"storage.root={tmp_path / 'wh'}"])
    folder = Path(cfg.dataset.path) if cfg.dataset.path else Path(cfg.dataset.files["interactions"].path).parent
    setup(folder)
    storage = Storage(cfg.storage.root)
    if adapter == "stackexchange" and spark_line() == "3.5":
        # Spark 3.5 reads XML with spark-xml, which decodes a malformed byte as U+FFFD
        # instead of failing: the row is rejected naming the encoding, and the rest goes in.
        ingest_stage(spark, storage, cfg.dataset)
        rejects = storage.read(spark, REJECTS, cfg.dataset.name).where("reason like 'encoding error%'")
        assert [(r.source, r.reason) for r in rejects.collect()] == [
            ("Users.xml", "encoding error: undecodable bytes in row")]
        return
    with pytest.raises(SourceError, match=message):
        ingest_stage(spark, storage, cfg.dataset)
    assert not (tmp_path / "wh" / "interactions").exists()  # stopped before writing anything


def test_a_table_with_nothing_accepted_stops_the_ingest(spark, tmp_path):
    case = _files_case(tmp_path, "csv")
    cfg = _config(case, [f"storage.root={tmp_path / 'wh'}"])
    path = Path(cfg.dataset.files["interactions"].path)
    path.write_text("user_id,item_id,event,ts\nu9,p1,view,2026-03-01 12:00:00\nu8,p1,view,2026-03-01 12:00:00\n")
    with pytest.raises(SourceError, match=r"dataset export-csv: no interactions accepted \(interactions\.csv: 2 read, "
                                          r"2 rejected; most common reason: unknown user: u8\)"):
        ingest_stage(spark, Storage(cfg.storage.root), cfg.dataset)
    assert not (tmp_path / "wh" / "users").exists()


def test_the_catalogue_covers_every_kind_for_every_adapter(tmp_path):
    for adapter, build in ADAPTERS.items():
        case = build(tmp_path / adapter)
        covered = {v[2] for v in case.rejects.values()} | set(case.accepted) | set(case.stops) | {"empty_file",
                                                                                                 "missing"}
        assert covered.isdisjoint(case.not_applicable), adapter
        assert covered | set(case.not_applicable) == set(KINDS), (adapter, set(KINDS) - covered - set(case.not_applicable))


def catalogue_counts(tmp_path: Path) -> tuple[int, int, int]:
    """(bad-input cases tried, of which not applicable, bad rows in the fixtures)."""
    tried = na = rows = 0
    for adapter, build in ADAPTERS.items():
        case = build(tmp_path / adapter)
        na += len(case.not_applicable)
        tried += len(KINDS) - len(case.not_applicable)
        rows += len(case.rejects)
    return tried, na, rows


def test_docs_quote_the_catalogue_counts(tmp_path):
    tried, na, rows = catalogue_counts(tmp_path)
    readme = (ROOT / "docs" / "tables.md").read_text()
    expected = (f"{len(KINDS)} kinds of bad input × {len(ADAPTERS)} readers: {tried} cases tried "
                f"({na} do not apply to a format), {rows} bad rows")
    assert expected in readme, expected


def test_cli_names_a_missing_dataset_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "socialrec", "ingest", "--set", "dataset.name=movielens-100k",
         "--set", f"dataset.path={tmp_path / 'nowhere'}", "--set", f"storage.root={tmp_path / 'wh'}",
         "--set", "spark.progress=false"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "nowhere is not a readable folder; expected u.data, u.item, u.user, u.genre in it" in proc.stderr


def test_a_missing_file_is_named(spark, tmp_path):
    case = movielens_100k(tmp_path)
    cfg = _config(case)
    (Path(cfg.dataset.path) / "u.data").unlink()
    with pytest.raises(SourceError, match=r"movielens-100k: .*/ml100k lacks u\.data \(expected u\.data, u\.item"):
        load_raw(spark, cfg.dataset)
