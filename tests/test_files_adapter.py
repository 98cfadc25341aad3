"""The generic files adapter: CSV, text, JSON lines and Parquet exports with a column
mapping; header-less files, interactions-only datasets, constants, time formats and
rating thresholds, on small files in each shape written here."""

from __future__ import annotations

import json

import pytest

from socialrec.core.config import CONF_DIR, ConfigError, load_config
from socialrec.data.ingest import validate, validate_dataset
from socialrec.data.readers import SourceError
from socialrec.data.sources import load_raw


@pytest.fixture
def export(tmp_path, spark):
    (tmp_path / "members.csv").write_text("member;handle\nm1;ann\nm2;bob\n;nobody\n")
    (tmp_path / "posts.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"pid": "a", "by": "m1", "headline": "Hops", "body": "Citra and Mosaic", "when": "2026-01-01T10:00:00"},
        {"pid": "b", "by": "m2", "headline": "Yeast", "body": "Kveik at 35C", "when": "2026-01-02T10:00:00"},
        {"pid": "b", "by": "m2", "headline": "Yeast (dup)", "body": "again", "when": "2026-01-02T10:00:00"},
    ]) + "\n")
    events = spark.createDataFrame(
        [("m1", "b", "like", "2026-01-03 00:00:00"), ("m2", "a", "view", "2026-01-03 00:00:00"),
         ("m2", "zz", "view", "2026-01-03 00:00:00"), ("m1", "a", "stare", "2026-01-03 00:00:00")],
        "who string, what string, action string, at string")
    events.coalesce(1).write.parquet(str(tmp_path / "events.parquet"))
    return tmp_path


def _cfg(root, **extra):
    files = {
        "users": {"path": str(root / "members.csv"), "format": "csv", "options": {"sep": ";"},
                  "columns": {"user_id": "member", "name": "handle"}},
        "items": {"path": str(root / "posts.jsonl"), "format": "json",
                  "columns": {"item_id": "pid", "author_id": "by", "title": "headline", "text": "body",
                              "created_at": "when"}},
        "interactions": {"path": str(root / "events.parquet"), "format": "parquet",
                         "columns": {"user_id": "who", "item_id": "what", "event": "action", "ts": "at"}},
    }
    files.update(extra)
    return load_config([CONF_DIR / "base.yaml"], ["dataset.name=myexport", "dataset.adapter=files",
                                                  f"dataset.files={json.dumps(files)}"])


def test_files_adapter_maps_reads_and_rejects(spark, export):
    cfg = _cfg(export)
    out = validate(load_raw(spark, cfg.dataset), dataset="myexport", event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds)
    assert {(r.user_id, r.name) for r in out.users.collect()} == {("m1", "ann"), ("m2", "bob")}
    assert {(r.item_id, r.title) for r in out.items.collect()} == {("a", "Hops"), ("b", "Yeast")}
    assert {(r.user_id, r.item_id, r.event) for r in out.interactions.collect()} == {("m1", "b", "like"),
                                                                                      ("m2", "a", "view")}
    rejects = {(r.table, r.source, r.row, r.reason) for r in out.rejects.collect()}
    assert rejects == {
        ("users", "members.csv", 3, "missing user_id"),
        ("items", "posts.jsonl", 3, "duplicate of posts.jsonl row 2"),
        ("interactions", "events.parquet", 3, "unknown item: zz"),
        ("interactions", "events.parquet", 4, "unknown event kind: stare (known: view, like, comment, share)"),
    }
    for r in out.stats.collect():
        assert r.read == r.accepted + r.rejected


def test_files_adapter_errors(spark, export):
    with pytest.raises(SourceError, match="dataset.files.users.columns: user_id -> memberz: no such column"):
        load_raw(spark, _cfg(export, users={"path": str(export / "members.csv"), "options": {"sep": ";"},
                                            "columns": {"user_id": "memberz"}}).dataset)
    with pytest.raises(SourceError, match="dataset.files.users.path: .*gone.csv does not exist"):
        load_raw(spark, _cfg(export, users={"path": str(export / "gone.csv")}).dataset)
    with pytest.raises(ConfigError, match="dataset.files.items.format: 'xlsx' is not one of csv, text, json, parquet"):
        _cfg(export, items={"path": "x", "format": "xlsx"})


def _files_cfg(files: dict, *more: str):
    return load_config([CONF_DIR / "base.yaml"], ["dataset.name=byo", "dataset.adapter=files",
                                                  f"dataset.files={json.dumps(files)}", *more])


def _validated(spark, cfg):
    return validate_dataset(load_raw(spark, cfg.dataset), cfg.dataset)


def _rejects(out):
    return sorted((r.table, r.source, r.row, r.field, r.reason) for r in out.rejects.collect())


# A ratings + trust pair as the public trust datasets ship them: no header, no users or
# items file, Unix seconds, a trust file with a weight column.
RATINGS = "10,11,5,1000000000\n10,12,3,1000000060\n11,11,2,1000000120\n12,13,4,notatime\n13,12,,1000000180\n"
TRUST = "10,11,1\n11,12,1\n12,10,1\n13,13,1\n14,10,1\n"


def _trust_files(root, ratings=RATINGS, trust=TRUST, **interactions):
    (root / "ratings.txt").write_text(ratings)
    (root / "trust.txt").write_text(trust)
    return {"interactions": {"path": str(root / "ratings.txt"), "options": {"header": "false"},
                             "columns": {"user_id": 0, "item_id": 1, "weight": 2, "ts": 3},
                             "constants": {"event": "rating"}, "timestamp": "unix-seconds", **interactions},
            "edges": {"path": str(root / "trust.txt"), "options": {"header": False},
                      "columns": {"src": 0, "dst": 1, "weight": 2}, "constants": {"kind": "trust"}}}


def test_headerless_ratings_and_trust_only(spark, tmp_path):
    """No users or items file: users are the ids of both files, items those the ratings
    name, without text; constants give the event and the edge kind; Unix seconds."""
    cfg = _files_cfg(_trust_files(tmp_path), "dataset.event_weights={rating: 1.0}")
    out = _validated(spark, cfg)
    assert sorted(r.user_id for r in out.users.collect()) == ["10", "11", "12", "13", "14"]
    items = {r.item_id: (r.title, r.text) for r in out.items.collect()}
    assert items == {"11": (None, None), "12": (None, None), "13": (None, None)}  # accepted without text
    got = sorted((r.user_id, r.item_id, r.event, r.weight, str(r.ts)) for r in out.interactions.collect())
    assert got == [("10", "11", "rating", 5.0, "2001-09-09 01:46:40"), ("10", "12", "rating", 3.0, "2001-09-09 01:47:40"),
                   ("11", "11", "rating", 2.0, "2001-09-09 01:48:40")]
    assert sorted((r.src, r.dst, r.kind, r.weight) for r in out.edges.collect()) == [
        ("10", "11", "trust", 1.0), ("11", "12", "trust", 1.0), ("12", "10", "trust", 1.0), ("14", "10", "trust", 1.0)]
    assert _rejects(out) == [
        ("edges", "trust.txt", 4, "dst", "self edge"),
        ("interactions", "ratings.txt", 4, "ts", "unparseable timestamp as unix-seconds: notatime"),
        ("interactions", "ratings.txt", 5, "weight", "missing rating")]
    files = {(r.table, r.source): (r.read, r.accepted, r.rejected) for r in out.stats.collect()}
    assert files[("interactions", "ratings.txt")] == (5, 3, 2) and files[("edges", "trust.txt")] == (5, 4, 1)
    assert files[("items", "ratings.txt (item ids)")] == (3, 3, 0)


def test_positive_at_keeps_low_ratings_apart_and_binary_weights(spark, tmp_path):
    cfg = _files_cfg(_trust_files(tmp_path), "dataset.event_weights={rating: 1.0}", "dataset.positive_at=4",
                     "dataset.rating_weight=binary")
    out = _validated(spark, cfg)
    got = sorted((r.user_id, r.item_id, r.event, r.weight) for r in out.interactions.collect())
    assert got == [("10", "11", "rating", 1.0), ("10", "12", "low_rating", 1.0), ("11", "11", "low_rating", 1.0)]
    from socialrec.data.split import positives

    assert [(r.user_id, r.item_id) for r in positives(out.interactions).collect()] == [("10", "11")]


@pytest.mark.parametrize("shape", ["double-colon", "tab", "whitespace", "millis", "iso-date", "pattern"])
def test_delimiters_and_time_shapes(spark, tmp_path, shape):
    rows = [("1", "100", "4", 978300760), ("1", "200", "5", 978302109), ("2", "100", "3", 978301968)]
    when = {"millis": lambda t: str(t * 1000), "iso-date": lambda t: "2001-01-01", "pattern": lambda t: "01/01/2001 10:30"}
    stamp = when.get(shape, str)
    sep = {"double-colon": "::", "tab": "\t", "whitespace": "  \t "}.get(shape, ",")
    text = "".join(sep.join([u, i, r, stamp(t)]) + "\n" for u, i, r, t in rows) + sep.join(["3", "100"]) + "\n"
    if shape == "whitespace":
        text = "   " + text.replace("\n", "  \n")  # leading and trailing blanks too
    (tmp_path / "r.dat").write_text(text)
    fs = {"path": str(tmp_path / "r.dat"), "columns": {"user_id": 0, "item_id": 1, "weight": 2, "ts": 3},
          "constants": {"event": "rating"},
          "timestamp": {"millis": "unix-millis", "iso-date": "iso", "pattern": "dd/MM/yyyy HH:mm"}.get(
              shape, "unix-seconds")}
    if shape == "whitespace":
        fs["format"] = "text"
    else:
        fs["options"] = {"header": "false", "sep": sep}
    out = _validated(spark, _files_cfg({"interactions": fs}, "dataset.event_weights={rating: 1.0}"))
    got = sorted((r.user_id, r.item_id, r.weight) for r in out.interactions.collect())
    assert got == [("1", "100", 4.0), ("1", "200", 5.0), ("2", "100", 3.0)]
    ts = {str(r.ts) for r in out.interactions.collect()}
    expected = {"iso-date": {"2001-01-01 00:00:00"}, "pattern": {"2001-01-01 10:30:00"}}.get(
        shape, {"2000-12-31 22:12:40", "2000-12-31 22:35:09", "2000-12-31 22:32:48"})
    assert ts == expected
    (reject,) = _rejects(out)  # the short last line
    assert reject[:3] == ("interactions", "r.dat", 4)
    assert reject[4] in ("missing timestamp",) or reject[4].startswith("malformed")


def test_json_lines_with_nested_fields(spark, tmp_path):
    """Amazon-review-like JSON lines: a dotted path into nested records; the review text
    becomes item text only where a mapping says so."""
    recs = [{"reviewerID": "A1", "asin": "B01", "overall": 5.0, "unixReviewTime": 1400000000,
             "meta": {"title": "Kettle", "about": "Steel kettle"}},
            {"reviewerID": "A2", "asin": "B02", "overall": 1.0, "unixReviewTime": 1400000100,
             "meta": {"title": "Mug"}},
            {"reviewerID": "A2", "asin": "B01", "overall": 4.0, "unixReviewTime": 1400000200, "meta": {}}]
    (tmp_path / "reviews.json").write_text("\n".join(json.dumps(r) for r in recs) + "\n{broken\n")
    ia = {"path": str(tmp_path / "reviews.json"), "format": "json", "constants": {"event": "rating"},
          "columns": {"user_id": "reviewerID", "item_id": "asin", "weight": "overall", "ts": "unixReviewTime"}}
    items = {"path": str(tmp_path / "reviews.json"), "format": "json",
             "columns": {"item_id": "asin", "title": "meta.title", "text": "meta.about"}}
    out = _validated(spark, _files_cfg({"interactions": ia, "items": items}, "dataset.event_weights={rating: 1.0}"))
    assert {r.item_id: (r.title, r.text) for r in out.items.collect()} == {"B01": ("Kettle", "Steel kettle"),
                                                                           "B02": ("Mug", None)}
    assert sorted((r.user_id, r.item_id, r.weight) for r in out.interactions.collect()) == [
        ("A1", "B01", 5.0), ("A2", "B01", 4.0), ("A2", "B02", 1.0)]
    reasons = {(r.table, r.row, r.reason) for r in out.rejects.collect()}
    assert ("items", 3, "duplicate of reviews.json row 1") in reasons  # B01 again
    assert ("interactions", 4, "malformed JSON record") in reasons and ("items", 4, "malformed JSON record") in reasons


def test_missing_columns_stop_naming_them(spark, tmp_path):
    files = _trust_files(tmp_path)
    files["interactions"]["constants"] = {}
    with pytest.raises(SourceError, match=r"dataset.files.interactions: .*ratings.txt has no event column "
                                          r"\(it has _c0, _c1, _c2, _c3\): map one in dataset.files.interactions"
                                          r".columns or give a value .* \(e.g. event: rating\)"):
        load_raw(spark, _files_cfg(files).dataset)
    files = _trust_files(tmp_path)
    files["interactions"]["columns"]["ts"] = 7
    with pytest.raises(SourceError, match=r"columns: ts -> 7: no such column in .*ratings.txt \(it has _c0, _c1, "
                                          r"_c2, _c3\)"):
        load_raw(spark, _files_cfg(files).dataset)
    (tmp_path / "h.csv").write_text("u,i,r\n1,2,3\n")
    with pytest.raises(SourceError, match=r"user_id -> 0: no such column .*\(it has u, i, r\); a file without a "
                                          r"header line names its columns by position: set options.header"):
        load_raw(spark, _files_cfg({"interactions": {"path": str(tmp_path / "h.csv"), "columns": {"user_id": "0"},
                                                     "constants": {"event": "rating", "ts": "2020-01-01"}}}).dataset)
    with pytest.raises(ConfigError, match="dataset.files.interactions: is required by the files adapter"):
        _files_cfg({"edges": files["edges"]})
    with pytest.raises(ConfigError, match=r"dataset.files.interactions.timestamp: must be one of auto, iso, "
                                          r"unix-seconds, unix-millis or a Spark datetime pattern"):
        _files_cfg({"interactions": {**files["interactions"], "timestamp": "epoch"}})


def test_a_pattern_the_value_does_not_fit_is_a_reject_on_both_lines(spark, tmp_path):
    """1/2/2011 under dd/MM/yyyy: Spark 3.5's default parser policy would raise (the old
    parser reads it); the session sets CORRECTED, so it is a reject with the raw value."""
    (tmp_path / "r.csv").write_text("1,100,4,02/01/2011 10:30\n1,200,5,1/2/2011 10:30\n")
    fs = {"path": str(tmp_path / "r.csv"), "options": {"header": "false"}, "timestamp": "dd/MM/yyyy HH:mm",
          "columns": {"user_id": 0, "item_id": 1, "weight": 2, "ts": 3}, "constants": {"event": "rating"}}
    out = _validated(spark, _files_cfg({"interactions": fs}, "dataset.event_weights={rating: 1.0}"))
    assert [str(r.ts) for r in out.interactions.collect()] == ["2011-01-02 10:30:00"]
    assert _rejects(out) == [("interactions", "r.csv", 2, "ts", "unparseable timestamp as dd/MM/yyyy HH:mm: "
                                                                 "1/2/2011 10:30")]
