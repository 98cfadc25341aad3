"""Adapters on hand-made files in the real formats, with every kind of bad line: each one
lands in rejects with its file, line and reason; read = accepted + rejected per file."""

from __future__ import annotations

import pytest

from socialrec.config import CONF_DIR, load_config
from socialrec.ingest import validate
from socialrec.readers import SourceError
from socialrec.sources import load_raw

GENRES = "\n".join(f"g{i}|{i}" for i in range(19)) + "\n"
FLAGS = "|".join(["0"] * 18 + ["1"])


@pytest.fixture
def ml100k(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "u.genre").write_text(GENRES)
    (d / "u.user").write_bytes(b"1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|wr\xffiter|32067\n")
    (d / "u.item").write_bytes(
        b"1|Caf\xe9 (1995)|01-Jan-1995||http://x|" + FLAGS.encode() + b"\n"          # latin-1 e-acute: fine
        b"2|Two (1996)|31-Feb-1996||http://x|" + FLAGS.encode() + b"\n"            # impossible date
        b"3|Three (1997)|01-Jan-1997\n"                                            # truncated line
    )
    (d / "u.data").write_text(
        "1\t1\t5\t881250949\n"
        "2\t1\t3\t881250950\n"
        "1\t1\t5\t881250949\n"        # duplicate event
        "1,1,4,881250951\n"           # wrong delimiter
        "9\t1\t4\t881250952\n"        # unknown user
        "1\t7\t4\t881250953\n"        # unknown item
        "2\t1\tfive\t881250954\n"     # non-numeric rating
        "2\t1\t4\tyesterday\n"        # unparseable time
    )
    return d


def test_movielens_format_bad_lines(spark, ml100k):
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / "movielens-100k.yaml"],
                      [f"dataset.path={ml100k}"])
    out = validate(load_raw(spark, cfg.dataset), dataset="t", event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds)
    rejects = {(r.source, r.row): (r.field, r.reason) for r in out.rejects.collect()}
    assert rejects == {
        ("u.user", 3): ("line", "encoding error: undecodable bytes in line"),
        ("u.item", 2): ("created_at", "unparseable timestamp: 31-Feb-1996"),
        ("u.item", 3): ("line", "malformed line: expected 24 fields separated by '|', got 3"),
        ("u.data", 3): ("user_id,item_id,event,ts,detail", "duplicate of u.data row 1"),
        ("u.data", 4): ("line", "malformed line: expected 4 fields separated by '\\t', got 1"),
        ("u.data", 5): ("user_id", "unknown user: 9"),
        ("u.data", 6): ("item_id", "unknown item: 7"),
        ("u.data", 7): ("weight", "weight is not a number: five"),
        ("u.data", 8): ("ts", "unparseable timestamp: yesterday"),
    }
    assert out.rejects.where("source = 'u.data' and row = 4").first().raw == "1,1,4,881250951"
    assert out.items.first().title == "Café (1995)"
    stats = {r.source: (r.read, r.accepted, r.rejected) for r in out.stats.collect()}
    assert stats == {"u.user": (3, 2, 1), "u.item": (3, 1, 2), "u.data": (8, 2, 6)}


def test_missing_files_are_named(spark, ml100k):
    (ml100k / "u.data").unlink()
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / "movielens-100k.yaml"],
                      [f"dataset.path={ml100k}"])
    with pytest.raises(SourceError, match=r"movielens-100k: .*/ml lacks u\.data \(expected u\.data, u\.item"):
        load_raw(spark, cfg.dataset)


def test_cli_names_a_missing_dataset_folder(tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "socialrec", "ingest", "--set", "dataset.name=movielens-100k",
         "--set", f"dataset.path={tmp_path / 'nowhere'}", "--set", f"storage.root={tmp_path / 'wh'}",
         "--set", "spark.progress=false"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "nowhere is not a readable folder; expected u.data, u.item, u.user, u.genre in it" in proc.stderr
