"""The benchmark suite's arithmetic and its single-process peers (no timings asserted)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bench package sits beside lib/

from bench import compare, fit_exponent, rows_table, verdict  # noqa: E402
from bench.projection import markdown, project  # noqa: E402
from bench.scale import _why, exponents, table  # noqa: E402


def test_compare_direction_and_words():
    fast = compare("top-k", "b", "ours", "peer", "s", 2.0, 8.0)
    assert fast["advantage"] == pytest.approx(4.0) and verdict(fast) == "ours 4.00x faster"
    slow = compare("als", "b", "ours", "peer", "s", 10.0, 0.5)
    assert slow["advantage"] == pytest.approx(0.05) and verdict(slow) == "peer 20.00x faster"
    rate = compare("embeddings", "b", "ours", "peer", "texts/s", 171.0, 139.0, better="higher")
    assert rate["advantage"] == pytest.approx(171 / 139) and verdict(rate) == "ours 1.23x faster"
    quality = compare("als", "b", "ours", "peer", "nDCG@10", 0.4921, 0.4945, better="higher")
    assert quality["advantage"] == pytest.approx(0.4921 / 0.4945) and verdict(quality) == "peer +0.0024"
    assert verdict(compare("als", "b", "ours", "peer", "AUC", 0.8622, 0.8619, better="higher")) == "level"
    rho = compare("word2vec", "b", "ours", "peer", "rho", -0.04, 0.10, better="higher")
    assert rho["advantage"] is None and verdict(rho) == "peer +0.1400"  # a ratio of signed scores means nothing
    assert verdict(compare("x", "b", "o", "p", "GiB", 2.0, 3.0)) == "ours 1.50x smaller"
    missing = compare("tokenise", "b", "ours", "peer", "tokens/s", None, 5.0, better="higher", check="not run")
    assert missing["advantage"] is None and verdict(missing) == "-"
    with pytest.raises(ValueError, match="better"):
        compare("x", "b", "o", "p", "s", 1.0, 1.0, better="faster")
    lines = rows_table([fast, missing])
    assert lines[2] == "| top-k | b | ours | peer | s | 2.00 | 8.00 | ours 4.00x faster |  |"
    assert lines[3].endswith("| - | 5 | - | not run |")


def test_fit_exponent_recovers_a_power_law():
    sizes = [1_000, 4_000, 16_000, 64_000]
    assert fit_exponent(sizes, [3.0 * n ** 1.5 for n in sizes]) == pytest.approx(1.5)
    assert fit_exponent(sizes, [7.0] * 4) == pytest.approx(0.0)
    # Least squares on logs: (1, 1), (2, 4), (4, 8) -> hand-computed slope.
    xs, ys = [math.log(1), math.log(2), math.log(4)], [math.log(1), math.log(4), math.log(8)]
    mx, my = sum(xs) / 3, sum(ys) / 3
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert fit_exponent([1, 2, 4], [1, 4, 8]) == pytest.approx(slope)
    assert fit_exponent([10], [1.0]) is None
    assert fit_exponent([10, 10], [1.0, 2.0]) is None
    assert fit_exponent([10, 20], [0.0, 1.0]) is None  # a zero cost has no logarithm: one point left


def _size(users, factor, peak, heap=None):
    stages = [("ingest", 4.0 * factor), ("embed", 10.0 * factor), ("recommend:als", 5.0 * factor ** 2),
              ("recommend:popularity", 1.0 * factor)]
    return {"users": users, "wall_s": 20.0 * factor, "tree_peak_gib": peak,
            "counts": {"users": users, "items": users, "interactions": 40 * users, "edges": 12 * users},
            "stages": [{"stage": name, "seconds": sec, "peak_gib": peak, "jobs": 3 * factor,
                        **({"heap_gib": heap} if heap else {})} for name, sec in stages]}


def test_scale_exponents_and_table():
    done = [_size(1000, 1, 2.0), _size(2000, 2, 2.0), _size(4000, 4, 2.0)]
    ex = exponents(done)
    assert ex["ingest"]["time"] == pytest.approx(1.0)
    # with heap figures, memory exponents follow the heap, not the resident memory
    heaped = [_size(1000, 1, 9.0, heap=0.5), _size(2000, 2, 9.0, heap=1.0), _size(4000, 4, 9.0, heap=2.0)]
    assert exponents(heaped)["embed"]["memory"] == pytest.approx(1.0)
    assert exponents(heaped)["total"]["memory"] == pytest.approx(1.0)
    # heap 2 GiB at 160,000 interactions growing as n^1: a 12g heap fills at 6x that, 960,000 (24,000 users)
    res = {"sizes": heaped, "exponents": exponents(heaped), "failure": None, "skipped": [],
           "settings": {"driver_memory": "12g"}}
    assert table(res)[-1] == ("Heap (projected): at its fitted growth (heap ~ n^1.00) `ingest` would fill the 12 GiB "
                              "driver heap first, near 960,000 interactions (~24,000 users).")
    assert ex["recommend:als"]["time"] == pytest.approx(2.0)
    assert ex["ingest"]["memory"] == pytest.approx(0.0)
    assert ex["total"]["time"] == pytest.approx(1.0)
    failure = {"users": 8000, "stage": "recommend:als", "why": "JVM out of memory (java.lang.OutOfMemoryError)"}
    lines = table({"sizes": done, "exponents": ex, "failure": failure, "skipped": []})
    assert "Fastest-growing time: `recommend:als` (time ~ n^2.00)." in lines
    assert lines[0].startswith("Sizes: 1,000 users, 1,000 posts, 40,000 interactions, 12,000 edges")
    assert "| recommend:als | 5.0 | 3 | 2.00 | 2.0 | 20.0 | 6 | 2.00 | 2.0 | 80.0 | 12 | 2.00 | 2.0 | 2.00 | 0.00 |" in lines
    assert lines[-4].startswith("| **whole pipeline** (process wall time, peaks) | 20.0 | 12 | 2.00 | 2.0 | 40.0 | 24 |")
    assert lines[-2] == ("Largest size that completed: 4,000 users. Next size, 8,000 users: failed in stage "
                         "`recommend:als` — JVM out of memory (java.lang.OutOfMemoryError).")


def test_failure_reasons():
    assert _why("...\njava.lang.OutOfMemoryError: Java heap space\n", 1, False, 60) == \
        "JVM out of memory (java.lang.OutOfMemoryError)"
    assert _why("", -9, False, 60).startswith("killed (SIGKILL")
    assert _why("anything", -9, True, 600) == "over the 600 s cap"
    assert _why("WARN noise\nValueError: bad size\n", 1, False, 60) == "exit 1: ValueError: bad size"
    only = {"sizes": [], "exponents": {}, "skipped": [],
            "failure": {"users": 20000, "stage": "recommend:hybrid-social", "why": "over the 1800 s cap"}}
    assert table(only) == ["No size completed. 20,000 users: failed in stage `recommend:hybrid-social` — over the "
                           "1800 s cap."]


def test_projection_by_hand():
    done = [_size(1000, 1, 2.0), _size(2000, 2, 2.0), _size(4000, 4, 2.0)]
    curve = {"sizes": done, "exponents": exponents(done)}
    target = {"users": 400_000, "interactions": 16_000_000, "items": 400_000}
    p = project(curve, cores=2, target=target, gpu_texts_per_s=1000.0, gpu_nodes=4, hours=1.0, efficiency=0.5,
                retrieval_gflops=50.0, candidate_items=1000, dim=10, executor_cores=8)
    by = {s["stage"]: s for s in p["stages"]}
    # ingest: 16 s x 2 cores at 160,000 interactions, linear to 16M (x100): 3,200 core-s.
    assert by["ingest"]["core_hours"] == pytest.approx(16 * 2 * 100 / 3600)
    assert by["ingest"]["measured_per_unit_core_s"] == pytest.approx(32 / 160_000)
    # recommend stages stay linear even with a measured exponent of 2 (their top-k is priced apart):
    # the slope of (40k, 5 s), (80k, 20 s), (160k, 80 s) by hand is 4,800 / 7,466.67 s per 1,000 interactions.
    assert by["recommend:als"]["exponent"] == pytest.approx(2.0) and not by["recommend:als"]["exponent_applied"]
    slope = 4800 / (7466.6667 * 1000)
    assert by["recommend:als"]["core_hours"] == pytest.approx(slope * 2 * 16_000_000 / 3600, rel=1e-6)
    # the transformer stage on GPU nodes: 400,000 texts at 1,000/s each = 400 node-seconds.
    assert by["embed"]["on"] == "GPU" and by["embed"]["gpu_node_hours"] == pytest.approx(400 / 3600)
    assert p["gpu_wall_hours"] == pytest.approx(100 / 3600)
    # retrieval: 2 x 400,000 users x 1,000 items x 10 dims at 25 GFLOP/s a core, one model (als).
    r = p["retrieval"]
    assert r["passes"] == 1
    assert r["window_core_hours"] == pytest.approx(2 * 400_000 * 1000 * 10 / 25e9 / 3600)
    assert r["exhaustive_core_hours"] == pytest.approx(2 * 400_000 * 400_000 * 10 / 25e9 / 3600)
    cpu = (16 * 2 * 100 + 4 * 2 * 100) / 3600 + by["recommend:als"]["core_hours"] + r["window_core_hours"]
    assert p["cpu_core_hours"] == pytest.approx(cpu)
    assert p["cores_needed"] == pytest.approx(cpu / (1.0 * 0.5))
    assert p["executors"] == max(1, -(-int(cpu / 0.5) // 8))
    assert p["target"]["edges"] == 12 * 400_000  # edges per user as measured
    assert p["heap_gib_measured"] == 2.0  # no heap figures in this curve: resident memory stands in
    assert p["adjacency_gib"] == pytest.approx(2 * 4_800_000 * 16 / 2**30)
    assert "within `graph.max_edges` (50,000,000)" in "\n".join(markdown(p))
    big = project(curve, cores=2, target={"users": 100_000_000, "interactions": 10_000_000_000,
                                          "items": 1_000_000_000})
    assert big["target"]["edges"] == 1_200_000_000
    assert "the walker must become a join-based one" in "\n".join(markdown(big))
    assert by["ingest"]["basis"] == "marginal"  # proportional fixtures: the slope is the average
    text = "\n".join(markdown(p))
    assert "| embed | items | " in text and "GPU-node-hours" in text and "a candidate window" in text


def test_python_tokenizer_peer_matches_the_spark_ml_engine(spark):
    """The tokenisation benchmark's single-process peer must produce the engine's tokens."""
    from pyspark.ml.feature import StopWordsRemover

    from bench.text import PythonTokenizer
    from socialrec.features.tokenize import tokenize

    rows = [("a", "Hello", "It's <b>GREAT</b> &amp; see https://x.io/y?z=1 now!"),
            ("b", None, "東京タワー is tall; 'quoted' words... ok"),
            ("c", "Beer", "<script>var x = 1;</script>IPA's hops — a 2nd pour, don't stop"),
            ("d", "", ""),
            ("e", "Emoji 🍺 only", "🍺🍺 the and of")]
    items = spark.createDataFrame(rows, "item_id string, title string, text string")
    ours = {r.item_id: list(r.tokens) for r in tokenize(items).collect()}
    peer = PythonTokenizer(StopWordsRemover.loadDefaultStopWords("english"))
    theirs = {i: peer(t, x) for i, t, x in rows}
    assert theirs == ours
    assert theirs["a"] == ["hello", "great", "see"]
    assert "東" in theirs["b"] and "tall" in theirs["b"] and "quoted" in theirs["b"]


def test_projection_prices_the_marginal_cost_not_the_fixed_one():
    """Seconds = 30 fixed + 0.001 per interaction: the projection must use 0.001, not the average."""
    from bench.projection import marginal

    sizes = []
    for users in (1000, 2000, 4000):
        n = 10 * users
        sizes.append({"users": users, "wall_s": 1.0, "tree_peak_gib": 1.0,
                      "counts": {"users": users, "items": users, "interactions": n, "edges": users},
                      "stages": [{"stage": "split", "seconds": 30 + 0.001 * n, "peak_gib": 1.0, "heap_gib": 0.5},
                                 {"stage": "metrics", "seconds": 12.0, "peak_gib": 1.0, "heap_gib": 0.5}]})
    assert marginal(sizes, "split", "interactions") == pytest.approx(0.001)
    assert marginal(sizes, "metrics", "interactions") is None  # flat: no slope, the average is used
    assert marginal(sizes[:1], "split", "interactions") is None
    p = project({"sizes": sizes, "exponents": exponents(sizes)}, cores=2,
                target={"users": 1_000_000, "interactions": 10_000_000, "items": 1_000_000})
    by = {s["stage"]: s for s in p["stages"]}
    assert by["split"]["core_hours"] == pytest.approx(0.001 * 2 * 10_000_000 / 3600)
    assert by["metrics"]["basis"] == "average"
    assert by["metrics"]["core_hours"] == pytest.approx(12.0 / 40_000 * 2 * 10_000_000 / 3600)


def test_suite_report_assembles_rows_curve_and_projection():
    from bench.__main__ import report, rerender, retrieval_gflops

    done = [_size(1000, 1, 3.0, heap=0.5), _size(2000, 2, 3.0, heap=1.0), _size(4000, 4, 3.0, heap=2.0)]
    curve = {"sizes": done, "exponents": exponents(done), "failure": None, "skipped": [{"users": 8000,
                                                                                         "expected_s": 321.0}],
             "settings": {"models": ["popularity", "als"], "driver_memory": "12g", "posts_per_user": 1.0,
                          "interactions_per_user": 10.0}}
    big = compare("top-k", "top-10 retrieval 100,000 users x 100,000 items", "blockwise", "(none)", "s", 141.9, None,
                  check="54 GFLOP/s effective")
    results = [{"name": "embed", "rc": 0, "wall_s": 340.0, "peak_gib": 8.0, "rows": [big]},
               {"name": "als", "rc": 1, "wall_s": 12.0, "peak_gib": 1.0, "rows": []},
               {"name": "scale", "rc": 0, "wall_s": 900.0, "peak_gib": 9.0, "rows": [], "curve": curve,
                "markdown": table(curve)}]
    assert retrieval_gflops([big]) == 54.0
    md, payload = report(results, stamp="20261129T000000Z", machine="test box, 2 cores", quick=False, wall=1252.0)
    assert md.startswith("# socialrec benchmark suite, 20261129T000000Z\n\nMachine: test box, 2 cores. "
                         "Mode: default sizes. Suite wall time 20.9 min.")
    assert "| als | 1 | 12 | 1.00 |" in md  # a failed module is listed with its exit status
    assert "Not run: 8,000 users (projected 321 s, over the time budget)." in md
    assert "## Paper-scale projection (a projection, not a measurement)" in md
    assert payload["projection"]["retrieval"]["gflops_measured"] == 54.0
    assert [m["name"] for m in payload["modules"]] == ["embed", "als", "scale"]
    assert rerender(json.loads(json.dumps(payload, default=float))) == md  # --report: the same page from the JSON


def test_peak_samplers(spark):
    import time

    from bench import PeakRSS, PeakSampler
    from bench.scale import JvmHeap

    class Ramp(PeakSampler):
        every = 0.01

        def __init__(self):
            super().__init__()
            self.values = iter([3, 9, 4] + [1] * 10_000)

        def sample(self):
            return next(self.values)

    with Ramp() as r:
        time.sleep(0.2)
    assert r.peak == 9  # the highest sample, not the last one

    class Broken(PeakSampler):
        every = 0.01
        calls = 0

        def sample(self):
            self.calls += 1
            if self.calls == 2:  # the first sample of the thread
                raise RuntimeError("session closed")
            return 5

    with Broken() as b:
        time.sleep(0.1)
    assert b.peak == 5 and b.calls == 3  # the sampler thread stopped at the first failure; the exit sample counted

    with PeakRSS() as mem:
        blob = bytearray(64 * 2**20)  # 64 MiB touched
        blob[::4096] = b"x" * len(blob[::4096])
        time.sleep(0.3)
    assert mem.peak >= 64 * 2**20
    del blob
    with JvmHeap(spark) as heap:
        spark.range(200_000).selectExpr("id", "repeat('x', 20) AS s").cache().count()
    assert 0 < heap.peak < 64 * 2**30


def test_bridge_bench_scores_and_the_in_objective_map():
    """bench.bridge's nDCG@10/AUC over hand-ranked lists, and its CG map solving the
    normal equations of the confidence-weighted loss."""
    import numpy as np

    from bench.bridge import in_objective_map, scores

    T = np.array([[False, True, False, False], [True, False, False, True], [False, False, False, False]])
    S = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    nd, auc = scores(T, S)
    # user 0: hit at rank 2 -> 1/log2(3); user 1: hits at ranks 3 and 4 of 4 over an ideal of 2;
    # user 2 has no test pair and is not scored
    d = 1 / np.log2(np.arange(2, 6))
    assert nd == pytest.approx((d[1] / d[0] + (d[2] + d[3]) / (d[0] + d[1])) / 2)
    assert auc == pytest.approx((2 / 3 + 0 / 4) / 2)  # user 0: above 2 of 3 negatives; user 1: below both
    rng = np.random.default_rng(0)
    X, U = rng.normal(size=(30, 5)), rng.normal(size=(12, 3))
    R = (rng.random((12, 30)) < 0.3) * rng.integers(1, 5, size=(12, 30)).astype(float)
    W = in_objective_map(X, U, R, alpha=1.0, lam=2.0, iters=500)
    Cm, P = 1.0 + R, (R > 0).astype(float)
    grad = X.T @ ((Cm * (U @ (X @ W).T - P)).T @ U) + 2.0 * W  # zero at the minimum
    assert np.abs(grad).max() < 1e-5 * np.abs(X.T @ ((Cm * P).T @ U)).max()  # CG's relative tolerance
