"""Issue 29's "done when": a header-less ratings file and a header-less trust file, no
other file, go through `socialrec run` with a conf of a dozen lines and give metrics for
every model that needs no item text, hybrid-social included; the text stages and the
content models say they had nothing to work on instead of stopping the run."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.storage import Storage
from socialrec.data.synthetic import generate
from socialrec.pipeline import run_stage

# The user's whole conf (paths filled in below).
CONF = """\
dataset:
  name: trustnet
  adapter: files
  event_weights: {rating: 1.0}
  edge_kinds: [trust]
  positive_at: 3
  files:
    interactions: {path: RATINGS, options: {header: "false"}, timestamp: unix-seconds,
                   columns: {user_id: 0, item_id: 1, weight: 2, ts: 3}, constants: {event: rating}}
    edges: {path: TRUST, format: text, columns: {src: 0, dst: 1}, constants: {kind: trust}}
"""


@pytest.fixture(scope="module")
def byo(spark, tmp_path_factory):
    """A ratings + trust pair written from the generated network: user, item, a 1-5
    rating from the kind of engagement, Unix seconds; trust = follows, space-separated."""
    root = tmp_path_factory.mktemp("byo")
    net = generate(spark, users=300, posts=600, interactions_per_user_mean=20.0, corrupt_rate=0.0, seed=11)
    stars = F.create_map(*[F.lit(x) for kv in {"view": 2, "like": 4, "comment": 3, "share": 5}.items() for x in kv])
    ratings = (net.interactions.groupBy("user_id", "item_id")
               .agg(F.max(F.element_at(stars, F.col("event"))).alias("r"), F.min("ts").alias("ts"))
               .select(F.concat_ws(",", "user_id", "item_id", F.col("r").cast("string"),
                                   F.unix_timestamp(F.to_timestamp("ts")).cast("string")).alias("line"))
               .orderBy("line").toPandas())  # bounded: the test network's pairs
    trust = net.edges.where("kind = 'follow'").select(F.concat_ws(" ", "src", "dst").alias("line")).orderBy(
        "line").toPandas()
    (root / "ratings.csv").write_text("\n".join(ratings.line) + "\n")
    (root / "trust.txt").write_text("\n".join(trust.line) + "\n")
    conf = root / "trustnet.yaml"
    conf.write_text(CONF.replace("RATINGS", str(root / "ratings.csv")).replace("TRUST", str(root / "trust.txt")))
    assert len(CONF.splitlines()) <= 12
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml", conf],
                      [f"storage.root={root / 'warehouse'}", "evaluation.k=[10]"])
    return cfg, run_stage(spark, cfg, "run", run_id="byo"), len(ratings), len(trust)


def test_ingest_derives_users_and_items_without_text(spark, byo):
    cfg, result, n_ratings, n_trust = byo
    storage = Storage(cfg.storage.root)
    ingest = result["ingest"]
    files = {(f["table"], f["source"]): f for f in ingest["files"]}
    assert files[("interactions", "ratings.csv")]["read"] == n_ratings
    assert files[("edges", "trust.txt")]["read"] == n_trust
    assert files[("interactions", "ratings.csv")]["accepted"] == n_ratings  # nothing wrong in these files
    items = storage.read(spark, "items", "trustnet")
    assert items.count() == result["tokenize"]["no_text"] == items.where("title is null and text is null").count()
    low = storage.read(spark, "interactions", "trustnet").where("event = 'low_rating'").count()
    assert low == ingest["low_ratings"] > 0  # the "views" (2 stars) are below positive_at 3
    users = storage.read(spark, "users", "trustnet").count()
    ids = storage.read(spark, "interactions", "trustnet").select("user_id").union(
        storage.read(spark, "edges", "trustnet").select("src")).union(
        storage.read(spark, "edges", "trustnet").select("dst")).distinct().count()
    assert users == ids


def test_text_stages_skip_and_say_so(byo):
    _, result, _, _ = byo
    n_items = result["ingest"]["tables"]["items"]
    assert result["tokenize"]["items"] == 0 and result["tokenize"]["no_text"] == n_items
    assert result["word2vec"]["skipped"].startswith("no item of dataset 'trustnet' has a token")
    assert result["embed"]["no_text"] == n_items and result["embed"]["embedded"] == 0


def test_metrics_for_every_model_that_needs_no_text(spark, byo):
    cfg, result, _, _ = byo
    storage = Storage(cfg.storage.root)
    ndcg = {r.model: r.value for r in storage.read(spark, "metrics").where(
        "run_id = 'byo' and segment = 'all' and metric = 'ndcg' and k = 10").collect()}
    for model in ("popularity", "als", "hybrid", "hybrid-social"):
        assert 0 < ndcg[model] < 1, (model, ndcg)
    assert ndcg["als"] > ndcg["popularity"]  # the generated tastes are learnable
    # The low ratings are no positives: none of them is a test pair.
    test = storage.read(spark, "splits").where("dataset = 'trustnet' and part = 'test'")
    low = storage.read(spark, "interactions", "trustnet").where("event = 'low_rating'")
    assert test.join(low, ["user_id", "item_id"]).count() == 0
    for model in ("w2v_content", "transformer_content"):
        assert result["recommend"][model] == 0 and model not in ndcg
