"""Evaluation segments by hand, the summary table, and the report's pieces."""

from __future__ import annotations

from datetime import datetime

import pytest

from socialrec.core.config import CONF_DIR, load_config
from socialrec.evaluation.report import format_summary, plot_metrics_at_k, shown_rows, write_report
from socialrec.evaluation.segments import evaluation_segments

T = datetime(2026, 1, 1)


def test_segments_by_hand(spark, storage):
    # Train pairs per user: u1 1, u2 2, u3 3, u4 8; u5 has none (a new user).
    train = [(u, f"i{j}") for u, n in (("u1", 1), ("u2", 2), ("u3", 3), ("u4", 8)) for j in range(n)]
    # Test: "new" has no train pair (a cold item); u5 is only in test.
    test = [("u1", "i5"), ("u2", "new"), ("u3", "i7"), ("u4", "new"), ("u5", "i1")]
    tr = spark.createDataFrame(train, "user_id string, item_id string")
    te = spark.createDataFrame(test, "user_id string, item_id string")
    edges = spark.createDataFrame([("synthetic", "u3", "u1", "follow", 1.0, T), ("synthetic", "u9", "u4", "friend", 1.0, T)],
                                  "dataset string, src string, dst string, kind string, weight double, ts timestamp")
    storage.merge(edges, "edges")
    seg, info = evaluation_segments(spark, storage, dataset="synthetic", train=tr, test=te,
                                    segments=["all", "cold_items", "light_users", "with_friends"], light_share=0.4)
    got: dict[str, set] = {}
    for r in seg.collect():
        got.setdefault(r.segment, set()).add((r.user_id, r.item_id))
    assert got["all"] == set(test)
    assert got["cold_items"] == {("u2", "new"), ("u4", "new")}
    # Train counts of the 5 test users: 0, 1, 2, 3, 8; the 0.4 quantile is 1 -> u5 and u1.
    assert info["light_users.max_train_pairs"] == "1"
    assert got["light_users"] == {("u5", "i1"), ("u1", "i5")}
    assert got["with_friends"] == {("u3", "i7")}  # u3 follows someone; u1 and u4 are only followed
    with pytest.raises(ValueError, match="unknown segment 'heavy'"):
        evaluation_segments(spark, storage, dataset="synthetic", train=tr, test=te, segments=["heavy"])


def _row(model, metric, k, value, segment="all", seed=42, std=None, n_seeds=None):
    return {"model": model, "metric": metric, "k": k, "value": value, "segment": segment, "seed": seed,
            "std": std, "n_seeds": n_seeds, "n_users": 10}


def test_summary_prefers_rows_over_seeds_and_lists_segments():
    rows = [_row("als", "ndcg", 10, 0.30, seed=42), _row("als", "ndcg", 10, 0.32, seed=43),
            _row("als", "ndcg", 10, 0.31, seed=None, std=0.0141, n_seeds=2),
            _row("als", "ndcg", 10, 0.05, segment="cold_items", seed=None, std=0.01, n_seeds=2)]
    assert shown_rows(rows) == [rows[2], rows[3]]
    text = format_summary(rows)
    assert "mean ± std over 2 seeds" in text and "0.3100±0.0141" in text
    assert "cold_items" in text and "0.0500" in text
    single = format_summary([_row("pop", "ndcg", 10, 0.2), _row("pop", "auc", 0, 0.5)])
    assert "±" not in single and "0.5000" in single


def test_report_without_item_vectors(spark, storage, tmp_path):
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml"], [f"storage.root={storage.root}"])
    rows = [_row(m, metric, k, v * k / 10) for m, v in (("als", 0.3), ("popularity", 0.1))
            for metric in ("ndcg", "recall") for k in (5, 10)]
    rows += [_row("als", "coverage", 10, 0.4), _row("popularity", "coverage", 10, 0.02),
             _row("als", "ndcg", 10, 0.1, segment="light_users")]
    index = write_report(spark, storage, cfg, run_id="r1", rows=rows, params={"als.reg": "0.3"},
                         timings={"split": 1.0}, out=tmp_path / "r1")
    page = index.read_text(encoding="utf-8")
    # No item vectors in an empty warehouse: three plots, no projection.
    assert page.count("data:image/png;base64,") == 3 and not (tmp_path / "r1" / "embeddings.png").exists()
    assert "<b>0.3000</b>" in page and "als.reg" in page and "Segment: light users" in page
    assert "No test users in segment(s) cold_items, with_friends" in page
    lines = (tmp_path / "r1" / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("model,segment,metric,k,value") and len(lines) == len(rows) + 1
    assert plot_metrics_at_k([r for r in rows if r["k"] == 10], tmp_path / "x.png") is None  # one k: no curve
