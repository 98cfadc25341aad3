"""The generic files adapter: CSV, JSON lines and Parquet exports with a column mapping."""

from __future__ import annotations

import json

import pytest

from socialrec.core.config import CONF_DIR, ConfigError, load_config
from socialrec.data.ingest import validate
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
    with pytest.raises(ConfigError, match="dataset.files.items.format: 'xlsx' is not one of csv, json, parquet"):
        _cfg(export, items={"path": "x", "format": "xlsx"})
