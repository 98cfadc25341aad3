"""The streaming path (socialrec.stream): items and interactions appended in batches reach
fresh_recommendations and trending after each availableNow run, with scores equal to
cosines computed here from the engine; the per-user cap and expiry; the reject path
with the stream going on; exactly once after a kill mid-batch (reliability, separate
process); the scoring kernel and the velocity window by hand."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from socialrec.core.config import ConfigError, EmbedConfig, GraphConfig, StreamConfig, load_config
from socialrec.core.schemas import EDGES, INTERACTIONS, ITEMS, USERS
from socialrec.core.storage import Storage
from socialrec.features.trending import velocity
from socialrec.stream import CRASH_ENV, REASONS, run_stream, score_block

ROOT = Path(__file__).resolve().parents[1]
DS = "synthetic"  # a label here (the CLI run in the restart test needs a known dataset name)
BEER = ["u1", "u2", "u3"]
AI = ["u4", "u5", "u6"]
SEED_ITEMS = {
    "b1": "Dry hopping an IPA with Citra and Mosaic hops for a juicy aroma",
    "b2": "How long should a stout condition in the bottle before carbonation is done?",
    "b3": "Choosing a yeast strain for a Belgian tripel fermented warm",
    "a1": "Training a convolutional neural network with stochastic gradient descent",
    "a2": "How does attention in transformer language models weigh the tokens?",
    "a3": "Reinforcement learning agents that learn a policy from rewards",
}
EVENTS = {"view": 1.0, "like": 2.0, "comment": 3.0, "share": 4.0}


def _now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _items(spark, rows):
    """rows: (item_id, author_id, text, created_at)."""
    return spark.createDataFrame(
        [(DS, i, a, None, t, None, "post", None, c, None) for i, a, t, c in rows], ITEMS.schema)


def _interactions(spark, rows):
    """rows: (user_id, item_id, event, weight, ts)."""
    return spark.createDataFrame([(DS, u, i, e, float(w), ts, None) for u, i, e, w, ts in rows], INTERACTIONS.schema)


def _stream_cfg(**over) -> StreamConfig:
    return StreamConfig(**{"min_score": 0.1, "per_user": 3, "sources": ["history"], "follow_bonus": 0.1, **over})


def _run(spark, storage, **over):
    return run_stream(spark, storage, dataset=DS, stream=_stream_cfg(**over), emb=EmbedConfig(),
                      event_weights=EVENTS, max_weight=1e6)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Six users (three read beer posts, three read AI posts), six seed items embedded by
    the engine, history profiles built by the graph stage: a warehouse each test copies."""
    from socialrec.stages.embed import embed_stage
    from socialrec.stages.graph import graph_stage

    root = tmp_path_factory.mktemp("stream-world") / "warehouse"
    storage = Storage(root=str(root))
    t0 = _now() - timedelta(days=30)
    storage.merge(spark.createDataFrame([(DS, u, u, None, t0) for u in BEER + AI], USERS.schema), USERS)
    storage.merge(_items(spark, [(i, "u1" if i[0] == "b" else "u4", t, t0) for i, t in SEED_ITEMS.items()]), ITEMS)
    pairs = [(u, i, "like", 2.0, t0 + timedelta(hours=n)) for n, (u, i) in enumerate(
        [(u, i) for u in BEER for i in ("b1", "b2", "b3")] + [(u, i) for u in AI for i in ("a1", "a2", "a3")])]
    storage.merge(_interactions(spark, pairs), INTERACTIONS)
    storage.merge(spark.createDataFrame([(DS, "u2", "u1", "follow", 1.0, None, None), (DS, "u5", "u4", "follow", 1.0, None, None)],
                                        EDGES.schema), EDGES)
    embed_stage(spark, storage, dataset=DS, emb=EmbedConfig())
    graph_stage(spark, storage, dataset=DS, cfg=GraphConfig(walk_length=4, walks_per_node=2, vector_size=8,
                                                            max_iter=1, directed=True))
    return root


@pytest.fixture
def wh(world, tmp_path):
    root = tmp_path / "warehouse"
    shutil.copytree(world, root)
    return Storage(root=str(root))


@pytest.fixture(scope="module")
def encoder():
    from socialrec.features.encoder import get_encoder

    return get_encoder(None, device="cpu", threads=1)


def _fresh(spark, storage):
    return {(r.user_id, r.item_id): r for r in storage.read(spark, "fresh_recommendations", DS).collect()}


def _expected_scores(spark, storage, encoder, texts: dict[str, str]):
    """user -> item -> cosine of the user's history profile and the item's centred vector,
    computed here: the engine's vectors, centred with the stored catalogue's mean."""
    from socialrec.models.retrieval import centre, unit_rows

    emb = storage.read(spark, "item_embeddings", DS).where(F.col("vector").isNotNull()).collect()
    cat = np.array([r.vector for r in emb], dtype=np.float64)
    mean = unit_rows(cat).mean(axis=0)
    ids = list(texts)
    M = centre(encoder.encode([texts[i] for i in ids]), mean).astype(np.float64)
    prof = {r.user_id: np.asarray(r.vector, dtype=np.float64)
            for r in storage.read(spark, "user_profiles", DS).where(F.col("source") == "history").collect()}
    return {u: dict(zip(ids, M @ p)) for u, p in prof.items()}


def _commit_time(spark, storage, table, version):
    row = spark.sql(f"DESCRIBE HISTORY delta.`{storage.location(table)}`").where(F.col("version") == version).first()
    return row.timestamp


def test_new_items_reach_the_users_they_match_batch_after_batch(spark, wh, encoder):
    _run(spark, wh)  # first start: from the latest commit on, nothing yet
    assert _fresh(spark, wh) == {}
    # batch 1: one beer post (by u1, followed by u2), one AI post
    new1 = {"n1": "Which hops give a lager a crisp noble bitterness?",
            "n2": "Fine-tuning a pretrained transformer model on a small text dataset"}
    wh.append(_items(spark, [("n1", "u1", new1["n1"], _now()), ("n2", "u4", new1["n2"], _now())]), ITEMS)
    v1 = wh.version(spark, ITEMS)
    stats = _run(spark, wh)
    assert (stats.items, stats.embedded, stats.rejected["items"]) == (2, 2, 0)
    exp = _expected_scores(spark, wh, encoder, new1)
    got = _fresh(spark, wh)
    want = {}
    for u, scores in exp.items():
        for i, s in scores.items():
            author = "u1" if i == "n1" else "u4"
            if u == author:
                continue  # one's own post is not pushed back
            bonus = 0.1 if (u, author) in (("u2", "u1"), ("u5", "u4")) else 0.0
            if s + bonus >= 0.1:
                want[(u, i)] = s + bonus
    assert set(got) == set(want)
    for key, s in want.items():
        assert got[key].score == pytest.approx(s, abs=1e-4)
    # the beer post goes to the beer readers, the AI post to the AI readers
    assert {u for u, i in got if i == "n1"} >= {"u2", "u3"}
    assert {u for u, i in got if i == "n2"} >= {"u5", "u6"}
    assert all(got[(u, "n1")].score > got.get((u, "n2"), got[(u, "n1")]).score - 1e-9 for u in ("u2", "u3"))
    assert got[("u2", "n1")].reason == "new post from u1, whom you follow"
    assert got[("u3", "n1")].reason == REASONS["history"]
    arrived = _commit_time(spark, wh, "items", v1)
    assert {r.arrived_at for r in got.values()} == {arrived}
    assert all(r.scored_at >= r.arrived_at for r in got.values())
    # the streamed items' vectors are in item_embeddings: the batch embed stage keeps them
    emb = {r.item_id for r in wh.read(spark, "item_embeddings", DS).collect()}
    assert {"n1", "n2"} <= emb

    # batch 2: three more beer posts and one posted a week ago (embedded, not pushed)
    new2 = {"n3": "Brewing a session IPA with a low alcohol malt bill",
            "n4": "Sanitising fermentation buckets between homebrew batches",
            "n5": "Adjusting mash water chemistry for a hoppy pale ale"}
    wh.append(_items(spark, [(i, "u2", t, _now()) for i, t in new2.items()]
                     + [("old", "u2", "Kegging a porter and forcing carbonation", _now() - timedelta(days=7))]), ITEMS)
    _run(spark, wh)
    got = _fresh(spark, wh)
    assert not any(i == "old" for _, i in got)
    assert "old" in {r.item_id for r in wh.read(spark, "item_embeddings", DS).collect()}
    exp.update({u: {**exp[u], **s} for u, s in _expected_scores(spark, wh, encoder, new2).items()})
    # per_user 3: u3 keeps its three best beer posts of the five, by score
    u3 = sorted(((s, i) for i, s in exp["u3"].items() if s >= 0.1), reverse=True)[:3]
    assert sorted(i for (u, i) in got if u == "u3") == sorted(i for _, i in u3)
    assert max(sum(1 for (u, _) in got if u == x) for x in BEER + AI) <= 3

    # expiry: a start with nothing new still removes the rows whose item arrived too long ago
    time.sleep(1.0)
    _run(spark, wh, expiry_hours=0.5 / 3600)
    assert _fresh(spark, wh) == {}
    wh.append(_items(spark, [("n6", "u4", "Gradient clipping keeps recurrent network training stable", _now())]),
              ITEMS)
    _run(spark, wh)
    assert {i for _, i in _fresh(spark, wh)} == {"n6"}


def test_malformed_rows_go_to_rejects_and_the_stream_goes_on(spark, wh):
    _run(spark, wh)
    future = (_now() + timedelta(days=30)).replace(microsecond=0)
    bad = [("x1", "u1", "   ", _now()), ("x2", "nobody", "A post about hops from an unknown author", _now()),
           ("x3", "u1", "A post about yeast from the future", future),
           ("x4", "u1", "<script>alert('hi')</script>", _now()),
           ("g1", "u4", "Word embeddings learned by a skip-gram model", _now())]
    wh.append(_items(spark, bad), ITEMS)
    v = wh.version(spark, ITEMS)
    later = _now()
    wh.append(_interactions(spark, [("u1", "b1", "like", 2.0, later), ("u1", "b1", "teleport", 1.0, later),
                                    ("u2", "b2", "view", -1.0, later), ("ghost", "b2", "view", 1.0, later),
                                    ("u3", "missing", "view", 1.0, later)]), INTERACTIONS)
    stats = _run(spark, wh)
    assert stats.rejected == {"items": 4, "interactions": 4}
    rej = {(r.table, r.field, r.reason): r for r in wh.read(spark, "rejects", DS).collect()}
    assert set(rej) == {
        ("items", "text", "no title and no text"),
        ("items", "author_id", "unknown author: nobody"),
        ("items", "created_at", f"timestamp in the future: {future.isoformat(sep=' ')}"),
        ("items", "text", "nothing to embed in text once markup is removed"),
        ("interactions", "event", "unknown event kind: teleport (known: view, like, comment, share)"),
        ("interactions", "weight", "weight must be a positive finite number: -1.0"),
        ("interactions", "user_id", "unknown user: ghost"),
        ("interactions", "item_id", "unknown item: missing"),
    }
    assert rej[("items", "author_id", "unknown author: nobody")].source == f"stream:items@v{v}"
    assert '"item_id":"x2"' in rej[("items", "author_id", "unknown author: nobody")].raw
    assert {i for _, i in _fresh(spark, wh)} == {"g1"}  # the good row of the same commit went on
    trend = wh.read(spark, "trending", DS).collect()
    assert [(r.item_id, r.events, r.weight) for r in trend] == [("b1", 1, 2.0)]
    # the stream goes on: the next commit is processed, the rejects are not repeated
    wh.append(_items(spark, [("g2", "u1", "Harvesting homegrown Cascade hops for a wet-hop ale", _now())]), ITEMS)
    stats = _run(spark, wh)
    assert stats.rejected == {"items": 0, "interactions": 0} and stats.items == 1
    assert "g2" in {i for _, i in _fresh(spark, wh)}
    assert wh.read(spark, "rejects", DS).count() == 8


def test_trending_buckets_and_velocity_over_batches(spark, wh):
    _run(spark, wh, trend_bucket_minutes=5)
    base = _now().replace(second=0, microsecond=0) - timedelta(minutes=40)
    base = base - timedelta(minutes=base.minute % 5)  # a bucket boundary
    b1 = [("u1", "b1", "like", 2.0, base + timedelta(minutes=1)), ("u2", "b1", "view", 1.0, base + timedelta(minutes=4)),
          ("u4", "a1", "share", 4.0, base + timedelta(minutes=12))]
    b2 = [("u3", "b1", "comment", 3.0, base + timedelta(minutes=3)), ("u5", "a1", "view", 1.0, base + timedelta(minutes=31))]
    for rows in (b1, b2):
        wh.append(_interactions(spark, rows), INTERACTIONS)
        _run(spark, wh, trend_bucket_minutes=5)
    got = {(r.item_id, r.bucket_start): (r.events, r.weight) for r in wh.read(spark, "trending", DS).collect()}
    assert got == {("b1", base): (3, 6.0), ("a1", base + timedelta(minutes=10)): (1, 4.0),
                   ("a1", base + timedelta(minutes=30)): (1, 1.0)}
    # velocity over the 30 minutes to base + 35 min: buckets starting after base + 5 min
    v = velocity(wh.read(spark, "trending", DS), as_of=base + timedelta(minutes=35), window_minutes=30,
                 ts="bucket_start", events="events")
    assert {r.item_id: (r.events, r.weight, r.velocity) for r in v.collect()} == {"a1": (2, 5.0, 10.0)}
    # the same definition on the raw events gives the same answer
    raw = wh.read(spark, "interactions", DS)
    v2 = velocity(raw, as_of=base + timedelta(minutes=35), window_minutes=30)
    assert {r.item_id: (r.events, r.weight, r.velocity) for r in v2.collect()} == {"a1": (2, 5.0, 10.0)}


def test_score_block_by_hand():
    items = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    hist = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # user 1 has no history profile
    soc = np.array([[0.0, 1.0], [0.6, 0.8], [0.0, 0.0]], dtype=np.float32)
    out = score_block({"history": hist, "social": soc}, items, follows=[set(), {2}, set()], own=[set(), set(), {2}],
                      follow_bonus=0.5, min_score=0.5, per_user=2)
    # user 0: history 1, 0.6, 0; social 0, 0.8, 1 -> best 1 (history), 0.8 (social), 1 (social); top 2 by score, item
    assert out[0] == [(0, 1.0, "history"), (2, 1.0, "social")]
    # user 1: social only 0.6, 1.0, 0.8; item 2 followed: 1.3 -> follow
    assert [(j, round(s, 6), r) for j, s, r in out[1]] == [(2, 1.3, "follow"), (1, 1.0, "social")]
    # user 2: own post 2 left out; history 0, 0.8 -> only item 1 passes 0.5
    assert [(j, round(s, 6), r) for j, s, r in out[2]] == [(1, 0.8, "history")]
    assert score_block({"history": hist}, items[:0]) == [[], [], []]


def test_stream_config_is_validated():
    with pytest.raises(ConfigError, match="stream.trigger"):
        load_config(overrides=["stream.trigger=sometimes"])
    with pytest.raises(ConfigError, match="stream.trend_window_minutes"):
        load_config(overrides=["stream.trend_window_minutes=7"])
    with pytest.raises(ConfigError, match="stream.interval"):
        load_config(overrides=["stream.interval=soon"])
    with pytest.raises(ConfigError, match="stream.sources"):
        load_config(overrides=["stream.sources=[friends]"])
    assert load_config(overrides=["stream.trigger=continuous", "stream.interval=2 seconds"]).stream.interval == "2 seconds"


# --------------------------------------------------------------------------- restart after a kill

CLI_SETTINGS = ["stream.min_score=0.1", "stream.per_user=3", "stream.sources=[history]", "stream.follow_bonus=0.1"]


def _cli_stream(storage: Storage, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "PYSPARK_PYTHON": sys.executable}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    cmd = [sys.executable, "-m", "socialrec", "--env", "test", "--set", f"storage.root={storage.root}",
           *[x for kv in CLI_SETTINGS for x in ("--set", kv)], "stream"]
    # its own process group: the crash point kills the driver and its JVM together
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          start_new_session=True)


def _state(spark, storage):
    fresh = {(r.user_id, r.item_id): (round(r.score, 4), r.reason)
             for r in storage.read(spark, "fresh_recommendations", DS).collect()}
    trend = {(r.item_id, r.bucket_start): (r.events, r.weight) for r in storage.read(spark, "trending", DS).collect()}
    rejects = sorted((r.table, r.reason) for r in storage.read(spark, "rejects", DS).collect())
    return fresh, trend, rejects


@pytest.mark.slow
@pytest.mark.reliability
def test_a_kill_mid_batch_neither_loses_nor_duplicates(spark, world, tmp_path):
    """The CLI is SIGKILLed right after a micro-batch's trending addition (then after its
    fresh MERGE) committed and before the checkpoint recorded the batch; the restarted
    stream replays the batch. The end state equals an uninterrupted run's."""
    ref, crashed = (Storage(root=str(tmp_path / n / "warehouse")) for n in ("ref", "crashed"))
    t = _now() - timedelta(minutes=20)
    items = [("k1", "u1", "Bottle conditioning a saison with fresh yeast", _now()),
             ("k2", "u4", "Batch normalisation speeds up deep network training", _now()),
             ("k3", "u1", "   ", _now())]  # rejected
    events = [("u1", "b1", "like", 2.0, t), ("u2", "b1", "view", 1.0, t), ("u4", "a2", "share", 4.0, t),
              ("u5", "a2", "teleport", 1.0, t)]  # one rejected
    for wh in (ref, crashed):
        shutil.copytree(world, wh.root)
        _run(spark, wh)  # first start: the queries will read from the next commit on
        wh.append(_items(spark, items), ITEMS)
        wh.append(_interactions(spark, events), INTERACTIONS)
    _run(spark, ref)
    want = _state(spark, ref)
    assert want[0] and want[1] == {("b1", t.replace(second=0, microsecond=0) - timedelta(minutes=t.minute % 5)): (2, 3.0),
                                   ("a2", t.replace(second=0, microsecond=0) - timedelta(minutes=t.minute % 5)): (1, 4.0)}

    first = _cli_stream(crashed, crash="trending-after-add")
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    ck = Path(crashed.root) / "_checkpoints" / "stream" / DS
    assert (ck / "trending" / "offsets" / "0").exists() and not (ck / "trending" / "commits" / "0").exists()
    assert _state(spark, crashed)[1] == want[1]  # the addition was committed before the kill
    second = _cli_stream(crashed, crash="fresh-after-merge")
    assert second.returncode in (0, -signal.SIGKILL), second.stderr[-3000:]
    third = _cli_stream(crashed)
    assert third.returncode == 0, third.stderr[-3000:]
    assert (ck / "trending" / "commits" / "0").exists() and (ck / "fresh" / "commits" / "0").exists()
    assert _state(spark, crashed) == want  # replayed: nothing lost, nothing counted twice


def test_continuous_mode_waits_for_the_first_commit_then_places_it(spark, wh):
    """trigger continuous: nothing committed since the first start, so the queries wait;
    a post appended while they run reaches fresh_recommendations within the run."""
    import threading

    _run(spark, wh)  # first start: fixes where the queries begin
    out = {}
    runner = threading.Thread(target=lambda: out.update(stats=_run(spark, wh, trigger="continuous",
                                                                   interval="1 second", run_for=45.0)))
    runner.start()
    time.sleep(5)
    wh.append(_items(spark, [("c1", "u4", "Dropout regularisation in deep neural networks", _now())]), ITEMS)
    runner.join()
    assert out["stats"].batches["fresh"] >= 1 and out["stats"].items == 1
    got = _fresh(spark, wh)
    assert {i for _, i in got} == {"c1"} and {u for u, _ in got} >= {"u5", "u6"}
