"""No leakage from a graph derived from the interactions: on a hand-made Stack Exchange
dump (read by the real adapter) where the only path from an answerer to the question
they answered is the reply edge that very answer made, the social models never rank
that question from it, under every evaluation protocol; a reply edge made by a train
pair still brings its friend's items."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, GraphConfig, HybridConfig, load_config
from socialrec.core.schemas import EDGES
from socialrec.data.ingest import validate
from socialrec.data.sources import load_raw
from socialrec.data.split import PROTOCOLS, split, stratified_split, to_pairs
from socialrec.features.graph import recommend_social
from socialrec.models.hybrid import build_catalogue, candidates, social_inputs
from socialrec.stages.inputs import social_graph

T0 = datetime(2020, 1, 1)
N = 16  # threads: asker 100+i asks question 1000+i, answerer 200+i answers it (post 3000+i)
FILLERS = [str(5000 + j) for j in range(10)]  # questions of user 999 that people only favourite
D, B0, Q_OLD, X = "300", "100", "2000", "2001"  # d answered b0's old question; b0 and later d favourite x
DS = "leak"


def _ts(days: float) -> str:
    return (T0 + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000")


def _xml(path: Path, root: str, rows: list[dict]) -> None:
    body = "\n".join("  <row " + " ".join(f'{k}="{v}"' for k, v in r.items()) + " />" for r in rows)
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<{root}>\n{body}\n</{root}>\n', encoding="utf-8")


def _dump(folder: Path) -> None:
    """Each thread: the asker comments on their own question first (hours into day 0)
    and favourites fillers (days 4-6); the answerer favourites fillers (days 1-3) and
    answers the question late (day 40): the answer is the answerer's newest pair, the
    one the time-ordered protocols hold out. In odd threads the asker then comments on
    the answer (day 41): a reply edge asker -> answerer that also reveals the answer."""
    users = [{"Id": u, "DisplayName": f"u{u}", "CreationDate": _ts(0)}
             for u in ["999", D] + [str(100 + i) for i in range(N)] + [str(200 + i) for i in range(N)]]
    q = {"PostTypeId": "1", "Body": "&lt;p&gt;text&lt;/p&gt;", "Tags": "&lt;beer&gt;"}
    posts = [{"Id": str(1000 + i), **q, "OwnerUserId": str(100 + i), "Title": f"Question {i}",
              "CreationDate": _ts(0)} for i in range(N)]
    posts += [{"Id": f, **q, "OwnerUserId": "999", "Title": f"Filler {f}", "CreationDate": _ts(0)} for f in FILLERS]
    posts += [{"Id": Q_OLD, **q, "OwnerUserId": B0, "Title": "Old question", "CreationDate": _ts(0)},
              {"Id": X, **q, "OwnerUserId": "999", "Title": "Item x", "CreationDate": _ts(0)}]
    posts += [{"Id": str(3000 + i), "PostTypeId": "2", "ParentId": str(1000 + i), "OwnerUserId": str(200 + i),
               "CreationDate": _ts(40 + i / 24)} for i in range(N)]
    posts.append({"Id": "4000", "PostTypeId": "2", "ParentId": Q_OLD, "OwnerUserId": D, "CreationDate": _ts(2)})
    comments = [{"Id": str(6000 + i), "PostId": str(1000 + i), "UserId": str(100 + i), "CreationDate": _ts(i / 24)}
                for i in range(N)]
    comments += [{"Id": str(7000 + i), "PostId": str(3000 + i), "UserId": str(100 + i),
                  "CreationDate": _ts(41 + i / 24)} for i in range(1, N, 2)]
    favs = [(str(200 + i), FILLERS[(i + j) % len(FILLERS)], 1 + j + i / 100) for i in range(N) for j in range(3)]
    favs += [(str(100 + i), FILLERS[(i + 5 + j) % len(FILLERS)], 4 + j + i / 100) for i in range(N) for j in range(3)]
    favs += [(B0, X, 3), (D, FILLERS[0], 4), (D, FILLERS[1], 5), (D, X, 45)]
    votes = [{"Id": str(8000 + n), "PostId": p, "VoteTypeId": "5", "UserId": u, "CreationDate": _ts(t)}
             for n, (u, p, t) in enumerate(favs)]
    folder.mkdir(parents=True)
    _xml(folder / "Users.xml", "users", users)
    _xml(folder / "Posts.xml", "posts", posts)
    _xml(folder / "Comments.xml", "comments", comments)
    _xml(folder / "Votes.xml", "votes", votes)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    from socialrec.core.storage import Storage

    tmp = tmp_path_factory.mktemp("leak")
    _dump(tmp / "se")
    cfg = load_config([CONF_DIR / "base.yaml"], ["dataset.name=stackexchange", f"dataset.path={tmp / 'se'}"])
    out = validate(load_raw(spark, cfg.dataset), dataset=DS, event_weights=cfg.dataset.event_weights,
                   edge_kinds=cfg.dataset.edge_kinds, max_weight=cfg.dataset.max_weight)
    storage = Storage(root=str(tmp / "warehouse"))
    try:
        storage.merge(out.edges, EDGES)
        pairs = to_pairs(out.interactions).localCheckpoint()
        items = out.items.localCheckpoint()
    finally:
        out.release()
    return storage, pairs, items


def test_reply_edges_carry_the_pairs_they_reveal(spark, world):
    storage, pairs, _ = world
    edges = {(r.src, r.dst): r for r in storage.read(spark, EDGES, DS).collect()}
    assert len(edges) == N + N // 2 + 1  # an answer edge per thread, a comment edge per odd one, d -> b0
    a = edges[("203", "103")]
    assert (a.kind, a.weight, a.ts) == ("replied_to", 1.0, T0 + timedelta(days=40 + 3 / 24))
    assert [(e.detail, e.ts, [tuple(p) for p in e.pairs]) for e in a.evidence] == [
        ("3003", a.ts, [("203", "1003")])]
    c = edges[("103", "203")]  # a comment on 203's answer: reveals 203's pair as well
    assert [(e.detail, [tuple(p) for p in e.pairs]) for e in c.evidence] == [("7003", [("103", "1003"), ("203", "1003")])]
    assert [tuple(p) for p in edges[(D, B0)].evidence[0].pairs] == [(D, Q_OLD)]
    assert pairs.count() == 2 * N + 3 * N * 2 + 5  # questions, fillers (3 each), d's 4 and b0's x
    # A rerun's MERGE compares the evidence too: the same rows commit nothing, a changed
    # evidence list is an update.
    stored = storage.read(spark, EDGES, DS).localCheckpoint()
    before = storage.version(spark, EDGES)
    storage.merge(stored, EDGES, scope={"dataset": DS})
    assert storage.version(spark, EDGES) == before
    thinned = stored.withColumn("evidence", F.when((F.col("src") == D) & (F.col("dst") == B0), F.array())
                                .otherwise(F.col("evidence")))
    storage.merge(thinned, EDGES, scope={"dataset": DS})
    assert storage.version(spark, EDGES) == before + 1
    assert storage.read(spark, EDGES, DS).where(F.size("evidence") == 0).count() == 1
    storage.merge(stored, EDGES, scope={"dataset": DS})  # back as ingested, for the other tests


def _split(pairs, protocol):
    return split(pairs, protocol, 0.75, 42, cold_share=0.2, cold_history=2)


def _ids(df, user):
    return {r.item_id for r in df.where(F.col("user_id") == user).select("item_id").collect()}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_social_models_never_rank_an_item_from_the_edge_its_test_pair_made(spark, world, protocol):
    storage, pairs, items = world
    train, test = (df.localCheckpoint() for df in _split(pairs, protocol))
    parts = [("test", train)]
    if protocol == "stratified":  # the hybrid's own validation split of train: its ranker's view
        hc = HybridConfig()
        fit, _ = stratified_split(train, hc.val_ratio, hc.seed)
        parts.append(("validation", fit.localCheckpoint()))
    for what, part in parts:
        held = {(r.user_id, r.item_id) for r in pairs.join(part, ["user_id", "item_id"], "left_anti").collect()}
        graph, _, info = social_graph(spark, storage, dataset=DS, train=part, cfg=GraphConfig(), with_nodes=False)
        tied = {(r.src, r.dst) for r in graph.collect()}
        leaks = [i for i in range(N) if (str(200 + i), str(1000 + i)) in held]
        assert leaks, f"{protocol}/{what}: no answer held out; the world tests nothing here"
        for i in leaks:
            a, b, q = str(200 + i), str(100 + i), str(1000 + i)
            # The only ties of a and b come from a's answer (and b's comment on it).
            assert (a, b) not in tied and (b, a) not in tied, (protocol, what, i)
        # Independent of what else is hidden, no graph is the full one here.
        assert int(info["graph.visible_edges"]) < int(info["graph.edges"])
        if what == "validation":
            continue
        cold = None if protocol != "cold_items" else test.select("item_id")
        recs = recommend_social(train, graph, 10, candidates=cold)
        cat = build_catalogue(train, items, als_items=None, content={},
                              allowed=None if cold is None else sorted(r[0] for r in cold.distinct().collect()))
        feats = candidates(train, cat, als_users=None, n_per_source=10,
                           social=social_inputs(train, graph, cat, nodes=None)).where(F.col("social") > 0)
        for i in leaks:
            a, q = str(200 + i), str(1000 + i)
            assert q not in _ids(recs, a) and q not in _ids(feats, a), (protocol, i)
        # A reply made by a train pair still helps: d answered b0's old question in train,
        # b0 favourited x in train, and d's favourite of x is held out.
        if (D, Q_OLD) not in held and (B0, X) not in held and (D, X) in held and (cold is None or X in cat.ids):
            assert X in _ids(recs, D) and X in _ids(feats, D), protocol
        elif protocol in ("chrono", "leave_last", "time_cut"):
            pytest.fail(f"{protocol}: d's favourite of x should be the held-out pair with its reply in train")
