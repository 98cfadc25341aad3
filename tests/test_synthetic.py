"""The generated social network: deterministic, sized by conf, and with the structure
it promises (topic homophily in follows, topical text, interest-driven interactions)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from socialrec.data.synthetic import generate
from socialrec.data.vocab import TOPICS

SMALL = dict(users=240, posts=480, topics=6, follows_mean=8.0, interactions_per_user_mean=15.0,
             corrupt_rate=0.0, partitions=3)


@pytest.fixture(scope="module")
def net(spark):
    return generate(spark, seed=11, **SMALL)


def _set(df):
    return {tuple(r) for r in df.collect()}


def test_deterministic_for_a_seed_whatever_the_partitioning(spark, net):
    again = generate(spark, seed=11, **{**SMALL, "partitions": 5})
    for name in ("users", "items", "interactions", "edges"):
        assert _set(getattr(net, name)) == _set(getattr(again, name)), name
    other = generate(spark, seed=12, **SMALL)
    assert _set(other.interactions) != _set(net.interactions)


def test_sizes_follow_the_config(net):
    assert net.users.count() == 240
    assert net.items.count() == 480
    n_edges, n_ia = net.edges.count(), net.interactions.count()
    assert 240 * 8 * 0.6 < n_edges < 240 * 8 * 1.4
    assert 240 * 15 * 0.6 < n_ia < 240 * 15 * 1.4
    assert net.edges.where("src = dst").count() == 0  # corrupt_rate 0: no self follows


def test_follows_are_homophilous(net):
    topic = lambda c: (F.substring(F.col(c), 2, 10).cast("int") % 6)  # primary topic = index % topics
    same = net.edges.select((topic("src") == topic("dst")).cast("int").alias("s")).agg(F.avg("s")).first()[0]
    assert same > 0.55  # 1/6 for random follows


def test_post_text_uses_its_topic_vocabulary(net):
    names = list(TOPICS)[:6]
    rows = net.items.select("item_id", "text", "tags").limit(60).collect()
    for r in rows:
        topic = int(r.item_id[1:]) % 6
        nouns, adjs, verbs = TOPICS[names[topic]]
        words = set(r.text.lower().replace(".", " ").replace(",", " ").replace("?", " ").replace(":", " ").split())
        assert len(words & set(nouns + adjs + verbs)) >= 2, r.text
        assert r.tags.startswith(names[topic] + "|")
        assert 10 <= len(r.text.split()) <= 60


def test_interactions_follow_interest_and_time(net):
    ia = net.interactions
    user_topic = F.substring("user_id", 2, 10).cast("int") % 6
    item_topic = F.substring("item_id", 2, 10).cast("int") % 6
    on_topic = ia.select((user_topic == item_topic).cast("int").alias("m")).agg(F.avg("m")).first()[0]
    assert on_topic > 0.5
    events = {r.event for r in ia.select("event").distinct().collect()}
    assert events == {"view", "like", "comment", "share"}
    joined = ia.join(net.items.select("item_id", F.col("created_at").alias("c")), "item_id")
    assert joined.where(F.col("ts") < F.col("c")).count() == 0  # nobody engages before a post exists


def test_corruption_produces_each_bad_kind(spark):
    raw = generate(spark, seed=3, **{**SMALL, "corrupt_rate": 0.05})
    ia = raw.interactions
    assert ia.where("user_id is null").count() > 0
    assert ia.where("event = 'poke'").count() > 0
    assert ia.where("ts = '2026-13-45 25:61:00' or ts like '1965%'").count() > 0
    assert ia.where("item_id like 'p-deleted-%'").count() > 0
    assert raw.edges.where("src = dst").count() > 0


def test_too_few_users_for_topics(spark):
    with pytest.raises(ValueError, match="at least topics"):
        generate(spark, users=3, posts=100, topics=6)


def test_topics_the_configuration_allows_are_the_vocabularies():
    from socialrec.core.choices import SYNTHETIC_TOPICS

    assert tuple(TOPICS) == SYNTHETIC_TOPICS
