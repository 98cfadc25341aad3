"""Social-graph signals: walks that follow edges (lengths, bias, weights, determinism),
node embeddings, neighbour aggregation on a hand-computed 4-node graph, and social
candidate counts."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from pyspark.sql import functions as F

from socialrec.features import graph as G


def _edges(spark, rows, kind="follow"):
    return spark.createDataFrame([("d", s, t, kind, float(w), None) for s, t, w in rows],
                                 "dataset string, src string, dst string, kind string, weight double, ts timestamp")


def _walks(df):
    return {(r.start, r.walk): list(r.path) for r in df.collect()}


# A directed graph with a dead end (e has no out-edge) and an isolated user nowhere in it.
DIRECTED = [("a", "b", 1), ("b", "c", 1), ("c", "a", 1), ("c", "d", 2), ("d", "e", 1), ("b", "a", 1)]


def test_graph_edges_directed_undirected_and_unweighted(spark):
    e = _edges(spark, [("a", "b", 2), ("b", "a", 1), ("a", "c", 3)]).unionByName(
        _edges(spark, [("a", "b", 1)], kind="trust"))
    d = {(r.src, r.dst): r.weight for r in G.graph_edges(e, directed=True).collect()}
    assert d == {("a", "b"): 3.0, ("b", "a"): 1.0, ("a", "c"): 3.0}  # kinds summed per ordered pair
    u = {(r.src, r.dst): r.weight for r in G.graph_edges(e, directed=False).collect()}
    assert u == {("a", "b"): 4.0, ("b", "a"): 4.0, ("a", "c"): 3.0, ("c", "a"): 3.0}
    assert {r.weight for r in G.graph_edges(e, directed=False, weighted=False).collect()} == {1.0}


@pytest.mark.parametrize("directed", [True, False])
def test_walks_follow_existing_edges_with_the_configured_length(spark, directed):
    g = G.graph_edges(_edges(spark, DIRECTED), directed=directed)
    allowed = {(r.src, r.dst) for r in g.collect()}
    walks = _walks(G.random_walks(g, walk_length=6, walks_per_node=3, p=0.5, q=2.0, seed=1))
    starts = {s for s, _ in allowed}
    assert {s for s, _ in walks} == starts  # every node with an out-edge, no isolated user
    assert len(walks) == 3 * len(starts)
    for (start, _), path in walks.items():
        assert path[0] == start
        assert all((a, b) in allowed for a, b in zip(path, path[1:]))
        if len(path) < 6:  # only a dead end stops a walk early
            assert directed and path[-1] == "e"
        else:
            assert len(path) == 6
    if not directed:
        assert all(len(p) == 6 for p in walks.values())


def test_walks_are_determined_by_the_seed_not_by_partitioning(spark):
    g = G.graph_edges(_edges(spark, DIRECTED), directed=False)
    one = _walks(G.random_walks(g, walk_length=8, walks_per_node=4, p=0.25, q=4.0, seed=7, partitions=1))
    again = _walks(G.random_walks(g, walk_length=8, walks_per_node=4, p=0.25, q=4.0, seed=7, partitions=3))
    other = _walks(G.random_walks(g, walk_length=8, walks_per_node=4, p=0.25, q=4.0, seed=8))
    assert one == again
    assert one != other


def test_edge_weights_and_the_return_parameter_steer_the_walk():
    # Star: hub 0 to leaves 1 (weight 9) and 2 (weight 1); leaves link back to the hub.
    ids = np.array(["h", "x", "y"], dtype=object)
    adj = G.Adjacency(ids, np.array([0, 0, 1, 2]), np.array([1, 2, 0, 0]), np.array([9.0, 1.0, 1.0, 1.0]))
    _, paths = G.walk_block(adj, np.array([0]), walk_length=2, walks_per_node=4000, seed=3)
    share = np.mean(paths[:, 1] == 1)
    assert 0.87 < share < 0.93  # 9 / 10
    # Ring of 6 (undirected): p small -> walks go back where they came from; p large -> rarely.
    n = 6
    src = np.array([i for i in range(n)] + [(i + 1) % n for i in range(n)])
    dst = np.array([(i + 1) % n for i in range(n)] + [i for i in range(n)])
    ring = G.Adjacency(np.array([str(i) for i in range(n)], dtype=object), src, dst, np.ones(2 * n))

    def returns(p):
        _, P = G.walk_block(ring, np.arange(n), walk_length=12, walks_per_node=50, p=p, q=1.0, seed=5)
        return np.mean(P[:, 2:] == P[:, :-2])

    assert returns(0.05) > 0.9  # b(return) = 20 against 1 for the other neighbour
    assert returns(20.0) < 0.05
    assert abs(returns(1.0) - 0.5) < 0.05  # first order: both neighbours equally likely


def test_node_embeddings_for_connected_users_only(spark):
    # Two triangles joined by nothing: nodes embed near their own triangle.
    rows = [("a", "b", 1), ("b", "c", 1), ("c", "a", 1), ("x", "y", 1), ("y", "z", 1), ("z", "x", 1)]
    g = G.graph_edges(_edges(spark, rows), directed=False)
    vec = {r.user_id: np.array(r.vector) for r in
           G.node_embeddings(g, walk_length=10, walks_per_node=20, vector_size=8, window=3, max_iter=10,
                             seed=1).collect()}
    assert set(vec) == {"a", "b", "c", "x", "y", "z"}  # "lonely" users without edges: no vector

    def cos(u, v):
        return float(vec[u] @ vec[v] / np.linalg.norm(vec[u]) / np.linalg.norm(vec[v]))

    assert cos("a", "b") > cos("a", "x")
    assert cos("y", "z") > cos("y", "c")


# The 4-node graph of the aggregation tests: a follows b (weight 1) and c (weight 3);
# b follows c; c follows nobody; d (no history) follows a.
FOUR = [("a", "b", 1), ("a", "c", 3), ("b", "c", 2), ("d", "a", 1)]
OWN = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}


def _profiles(spark, **kw):
    own = spark.createDataFrame(list(OWN.items()), "user_id string, vector array<float>")
    g = G.graph_edges(_edges(spark, FOUR), directed=True)
    return {r.user_id: (np.array(r.vector), r.n_neighbours) for r in G.aggregate_profiles(own, g, **kw).collect()}


def test_aggregation_on_a_hand_computed_four_node_graph(spark):
    h = _profiles(spark, hops=1)
    # h_a = e_a + 1/4 e_b + 3/4 e_c = (1,0) + (0,.25) + (.75,.75)
    np.testing.assert_allclose(h["a"][0], [1.75, 1.0], rtol=1e-6)
    np.testing.assert_allclose(h["b"][0], [1.0, 2.0], rtol=1e-6)  # e_b + e_c
    np.testing.assert_allclose(h["c"][0], [1.0, 1.0], rtol=1e-6)  # no neighbour: e_c
    np.testing.assert_allclose(h["d"][0], [1.0, 0.0], rtol=1e-6)  # no history: e_a alone
    assert {u: n for u, (_, n) in h.items()} == {"a": 2, "b": 1, "c": 0, "d": 1}
    two = _profiles(spark, hops=2)
    # hop 2 reads hop 1: h_a = e_a + 1/4 h1_b + 3/4 h1_c = (1,0) + (.25,.5) + (.75,.75)
    np.testing.assert_allclose(two["a"][0], [2.0, 1.25], rtol=1e-6)
    np.testing.assert_allclose(two["d"][0], [1.75, 1.0], rtol=1e-6)  # h1_a


def test_attention_reweights_neighbours_by_similarity(spark):
    beta = 2.0
    h = _profiles(spark, hops=1, attention=beta)
    # a's neighbours: b with cos(e_a, e_b) = 0, c with cos = 1/sqrt(2)
    wb, wc = 1.0 * np.exp(0.0), 3.0 * np.exp(beta / np.sqrt(2))
    ab, ac = wb / (wb + wc), wc / (wb + wc)
    np.testing.assert_allclose(h["a"][0], np.array([1.0, 0.0]) + ab * np.array([0.0, 1.0]) + ac * np.array([1.0, 1.0]),
                               rtol=1e-5)
    np.testing.assert_allclose(h["d"][0], [1.0, 0.0], rtol=1e-6)  # d has no own profile: cos taken as 0


def test_history_profiles_weight_and_normalise(spark):
    pairs = spark.createDataFrame([("u", "i", 1.0), ("u", "j", 3.0), ("v", "k", 1.0)],
                                  "user_id string, item_id string, weight double")
    vecs = spark.createDataFrame([("i", [1.0, 0.0]), ("j", [0.0, 1.0]), ("k", None)],
                                 "item_id string, vector array<float>")
    got = {r.user_id: (r.vector, r.n_items) for r in G.history_profiles(pairs, vecs).collect()}
    assert set(got) == {"u"}  # v's only item has no vector
    np.testing.assert_allclose(got["u"][0], np.array([1.0, 3.0]) / np.sqrt(10), rtol=1e-6)
    assert got["u"][1] == 2


def test_social_candidate_counts_recency_and_own_items_left_out(spark):
    t = lambda d: datetime(2026, 3, d)  # noqa: E731
    pairs = spark.createDataFrame(
        [("u", "x", t(1)),  # u already has x
         ("a", "x", t(2)), ("a", "y", t(3)), ("b", "y", t(5)), ("b", "z", t(9)), ("c", "w", t(10)),
         ("a", "z", t(4))],
        "user_id string, item_id string, ts timestamp")
    g = G.graph_edges(_edges(spark, [("u", "a", 1), ("u", "b", 1), ("c", "u", 1)]), directed=True)
    got = [(r.user_id, r.item_id, r.n_people, r.last.day) for r in
           G.social_items(pairs, g).orderBy("user_id", F.desc("n_people"), F.desc("last")).collect()]
    # u follows a and b: y (a, b; last day 5), z (a, b; last 9) -> z first by recency; x is u's own
    assert got == [("c", "x", 1, 1), ("u", "z", 2, 9), ("u", "y", 2, 5)]
    recent = [(r.user_id, r.item_id, r.n_people) for r in G.social_items(pairs, g, recent_days=6).collect()]
    assert sorted(recent) == [("u", "y", 1), ("u", "z", 2)]  # pairs from day 4 on: b's y; a's and b's z
    assert G.social_items(pairs, g, limit=1).where(F.col("user_id") == "u").count() == 1
    recs = G.recommend_social(pairs, g, 5).orderBy("user_id", "rank").collect()
    assert [(r.user_id, r.item_id, r.rank, r.score) for r in recs] == [
        ("c", "x", 1, 1.0), ("u", "z", 1, 2.0), ("u", "y", 2, 2.0)]
    assert recs[1].explanation == "2 people you follow engaged with this"


def test_graph_stage_writes_node_embeddings_and_profiles(spark, storage):
    """The stage on a directed graph with a dead end and an isolated user: vectors for
    the users in the graph only, history and social profiles, a rerun leaves the same rows."""
    from socialrec.core.config import GraphConfig
    from socialrec.core.schemas import EDGES, INTERACTIONS, ITEM_EMBEDDINGS, NODE_EMBEDDINGS, USER_PROFILES, USERS
    from socialrec.stages.graph import graph_stage

    t = datetime(2026, 3, 1)
    users = ["a", "b", "c", "d", "e", "lonely"]
    storage.merge(spark.createDataFrame([("d", u, None, None, None) for u in users], USERS.schema), USERS)
    storage.merge(spark.createDataFrame([("d", s, t_, "follow", float(w), None, None) for s, t_, w in DIRECTED],
                                        EDGES.schema), EDGES)
    storage.merge(spark.createDataFrame(
        [("d", u, i, "like", 1.0, t, None) for u, i in [("a", "i1"), ("b", "i2"), ("c", "i1"), ("c", "i2"),
                                                        ("lonely", "i2")]], INTERACTIONS.schema), INTERACTIONS)
    storage.merge(spark.createDataFrame([("d", "i1", "m", 2, [1.0, 0.0], "h1", t), ("d", "i2", "m", 2, [0.0, 1.0], "h2", t),
                                         ("d", "i3", "m", 2, [1.0, 1.0], "h3", t)], ITEM_EMBEDDINGS.schema), ITEM_EMBEDDINGS)
    cfg = GraphConfig(directed=True, walk_length=5, walks_per_node=3, vector_size=4, max_iter=2)
    out = graph_stage(spark, storage, dataset="d", cfg=cfg, embed_model="m")
    assert out["nodes"] == 5 and out["users_without_vector"] == 1 and out["edges"] == len(DIRECTED)
    nodes = {r.user_id: r.degree for r in storage.read(spark, NODE_EMBEDDINGS, "d").collect()}
    assert nodes == {"a": 1, "b": 2, "c": 2, "d": 1, "e": None}  # e: reached, never leaves
    prof = {(r.source, r.user_id): r for r in storage.read(spark, USER_PROFILES, "d").collect()}
    assert {u for s, u in prof if s == "history"} == {"a", "b", "c", "lonely"}
    # social: own history or a neighbour with one; d follows e (no history) only -> no row
    assert {u for s, u in prof if s == "social"} == {"a", "b", "c", "lonely"}
    assert prof[("social", "a")].n_neighbours == 1 and prof[("social", "lonely")].n_neighbours == 0
    assert prof[("history", "a")].n_items == 1 and prof[("social", "a")].hops == 1
    before = sorted((r.source, r.user_id, tuple(r.vector)) for r in storage.read(spark, USER_PROFILES, "d").collect())
    graph_stage(spark, storage, dataset="d", cfg=cfg, embed_model="m")
    after = sorted((r.source, r.user_id, tuple(r.vector)) for r in storage.read(spark, USER_PROFILES, "d").collect())
    assert before == after and storage.read(spark, NODE_EMBEDDINGS, "d").count() == 5


def test_models_see_only_edges_and_posts_known_by_the_end_of_train(spark):
    from socialrec.data.split import known_by, newest_pair

    train = spark.createDataFrame([("u", datetime(2026, 3, 1)), ("v", datetime(2026, 3, 5))], "user_id string, ts timestamp")
    edges = spark.createDataFrame([("a", datetime(2026, 3, 5)), ("b", datetime(2026, 3, 5, 0, 0, 1)), ("c", None)],
                                  "src string, ts timestamp")
    newest = newest_pair(train)
    assert sorted(r.src for r in known_by(edges, "ts", newest).collect()) == ["a", "c"]  # b: one second later
    assert known_by(edges, "ts", None).count() == 3  # no train pair: nothing to compare with
