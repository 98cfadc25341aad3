"""The adapters on the real datasets in ../shared/data: counts pinned to the published
sizes, and for every file rows read = accepted + rejected (and = the file's rows).

Marked ``realdata``; skipped where ../shared/data is absent (CI has it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, load_config
from socialrec.data.ingest import validate_dataset
from socialrec.data.sources import load_raw

from .conftest import SHARED_DATA

pytestmark = pytest.mark.realdata


def _cfg(name: str, *sets: str):
    return load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml", CONF_DIR / "datasets" / f"{name}.yaml"],
                       [f"dataset.path={SHARED_DATA / _folder(name)}", *sets])


def _folder(name: str) -> str:
    return {"movielens-100k": "movielens-100k", "movielens-latest": "movielens-latest-small",
            "lastfm-hetrec": "lastfm-hetrec-2k", "stackexchange-beer": "stackexchange-beer",
            "stackexchange-ai": "stackexchange-ai"}[name]


def _ingest(spark, name: str, *sets: str):
    if not (SHARED_DATA / _folder(name)).is_dir():
        pytest.skip(f"{SHARED_DATA / _folder(name)} not present")
    cfg = _cfg(name, *sets)
    out = validate_dataset(load_raw(spark, cfg.dataset), cfg.dataset)
    stats = {(r.table, r.source): (r.read, r.accepted, r.rejected) for r in out.stats.collect()}
    for key, (read, acc, rej) in stats.items():
        assert read == acc + rej, key
    return out, stats


def _lines(path: Path, header: bool = False) -> int:
    with open(path, "rb") as fh:
        n = sum(1 for line in fh if line.strip())
    return n - (1 if header else 0)


def _reasons(out, table: str) -> dict[str, int]:
    rows = out.rejects.where(F.col("table") == table).groupBy(
        F.regexp_replace("reason", r"[0-9]+", "N").alias("r")).count().collect()
    return {r.r: r["count"] for r in rows}


def test_movielens_100k(spark):
    out, stats = _ingest(spark, "movielens-100k")
    assert stats[("users", "u.user")] == (943, 943, 0)
    assert stats[("items", "u.item")] == (1682, 1682, 0)
    assert stats[("interactions", "u.data")] == (100_000, 100_000, 0)
    toy = out.items.where("item_id = '1'").first()
    assert toy.title == "Toy Story (1995)" and toy.tags == ["animation", "children's", "comedy"]
    assert "cowboy doll" in toy.text  # the plot from plots.json
    assert out.items.where("item_id = '1373'").first().created_at.year == 1971  # "4-Feb-1971"
    assert out.interactions.agg(F.sum("weight")).first()[0] == 352_986  # sum of the explicit ratings
    assert out.edges.count() == 0


def test_movielens_100k_binary_weights(spark):
    out, _ = _ingest(spark, "movielens-100k", "dataset.rating_weight=binary")
    assert {r.weight for r in out.interactions.select("weight").distinct().collect()} == {1.0}


def test_movielens_latest(spark):
    out, stats = _ingest(spark, "movielens-latest")
    root = SHARED_DATA / "movielens-latest-small"
    assert stats[("interactions", "ratings.csv")] == (100_836, 100_836, 0)
    assert stats[("interactions", "tags.csv")][0] == 3_683 == _lines(root / "tags.csv", header=True)
    assert stats[("items", "movies.csv")] == (9_742, 9_742, 0)
    assert stats[("users", "ratings.csv+tags.csv (user ids)")] == (610, 610, 0)
    toy = out.items.where("item_id = '1'").first()
    assert "Woody" in toy.text  # an 'agrees' overview
    # Only overviews whose TMDb id agrees with links.csv are used: a MISMATCH movie has none.
    import csv

    with open(root / "overviews_id_check.csv", newline="") as fh:
        mismatch = next(r["movieId"] for r in csv.DictReader(fh) if r["status"] == "MISMATCH")
    with open(root / "overviews.csv", newline="", encoding="utf-8") as fh:
        wrong = next((r["overview"] for r in csv.DictReader(fh) if r["movieId"] == mismatch), None)
    text = out.items.where(F.col("item_id") == mismatch).first().text
    assert wrong and wrong[:40] not in text
    tags = out.interactions.where("event = 'tag'")
    assert tags.where("detail is null").count() == 0


def test_lastfm_hetrec(spark):
    out, stats = _ingest(spark, "lastfm-hetrec")
    root = SHARED_DATA / "lastfm-hetrec-2k"
    assert stats[("interactions", "user_artists.dat")] == (92_834, 92_834, 0)
    assert stats[("edges", "user_friends.dat")] == (25_434, 25_434, 0)  # 12,717 friendships, each way
    assert stats[("items", "artists.dat")] == (17_632, 17_632, 0)
    tagged = stats[("interactions", "user_taggedartists.dat")]
    assert tagged[0] == 186_479 == _lines(root / "user_taggedartists.dat", header=True)
    assert out.users.count() == 1_892
    edges = out.edges
    assert edges.count() == edges.select("src", "dst").distinct().count()  # no duplicates
    assert edges.join(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")), ["src", "dst"]).count() == 25_434
    reasons = _reasons(out, "interactions")
    assert set(reasons) == {"unknown item: N", "timestamp before N: N-N-N N:N:N"}  # tags of absent artists; 1956/57
    assert reasons["unknown item: N"] + reasons["timestamp before N: N-N-N N:N:N"] == tagged[2]
    assert out.items.where("item_id = '89'").first().title == "Lady Gaga"
    assert "pop" in out.items.where("item_id = '89'").first().tags


@pytest.mark.parametrize("site, questions, answers, users", [("stackexchange-beer", 1029, 2277, 6863),
                                                             ("stackexchange-ai", 604, 1004, 4931)])
def test_stackexchange(spark, site, questions, answers, users):
    out, stats = _ingest(spark, site)
    root = SHARED_DATA / site
    assert out.items.count() == questions
    posts_read = stats[("items", "Posts.xml")][0] + stats[("interactions", "Posts.xml")][0]
    assert posts_read == _lines(root / "Posts.xml") - 3  # minus the XML header, <posts> and </posts>
    assert stats[("interactions", "Posts.xml")][0] == answers
    assert stats[("users", "Users.xml")] == (users, users, 0)
    assert stats[("interactions", "Comments.xml")][0] == _lines(root / "Comments.xml") - 3
    assert stats[("interactions", "Votes.xml")][0] == _lines(root / "Votes.xml") - 3
    reasons = _reasons(out, "interactions")
    assert any(r.startswith("vote type N (up vote) carries no user") for r in reasons)
    fav = out.interactions.where("event = 'favourite'").count()
    assert 0 < fav <= {"stackexchange-beer": 397, "stackexchange-ai": 408}[site]
    q = out.items.where("text like '%<p>%'").count()
    assert q == 0  # HTML stripped
    assert out.items.where("size(tags) = 0 or tags is null").count() == 0
    e = out.edges
    assert e.where("kind != 'replied_to' or src = dst").count() == 0 and e.count() > 0
    assert _reasons(out, "edges") == {"self edge": stats[("edges", "Posts.xml+Comments.xml (derived replies)")][2]}


def test_missing_dataset_path_fails_at_once(spark, tmp_path):
    from socialrec.data.readers import SourceError

    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / "movielens-100k.yaml"],
                      [f"dataset.path={tmp_path}"])
    with pytest.raises(SourceError, match=r"lacks u\.data, u\.item, u\.user, u\.genre"):
        load_raw(spark, cfg.dataset)
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / "lastfm-hetrec.yaml"],
                      [f"dataset.path={tmp_path}/nope"])
    with pytest.raises(SourceError, match="nope is not a readable folder; expected user_artists.dat"):
        load_raw(spark, cfg.dataset)


@pytest.mark.slow  # ~8 min: every model on 100k ratings (make test-all)
def test_pipeline_on_movielens_100k(spark, tmp_path):
    """The whole pipeline on MovieLens-100K with Microsoft Recommenders' protocol
    (stratified 75/25 per user, seed 42, k=10, seen items removed): popularity's numbers
    are deterministic here (hash-seeded split, ties broken by id) and pinned."""
    if not (SHARED_DATA / "movielens-100k").is_dir():
        pytest.skip("movielens-100k not present")
    from socialrec.pipeline import run_stage

    # ALS and the hybrid at the values tuning chose on this data (conf/base.yaml's grid;
    # the test layer's small grid is for the generated network): one fit each, not six.
    cfg = _cfg("movielens-100k", f"storage.root={tmp_path / 'wh'}", "als.tune=false", "als.rank=64", "als.reg=0.3",
               "als.alpha=1.0", "als.max_iter=15", "hybrid.candidates=50", "hybrid.blend=[als_z,transformer_z,w2v_z]",
               "evaluation.models=[popularity,als,w2v_content,transformer_content,hybrid]")  # no graph here
    out = run_stage(spark, cfg, "run", run_id="ml100k")
    # Per-user round(0.75 n), half to even: the same totals as python_stratified_split.
    assert out["split"] == {"train": 74_992, "test": 25_008}
    def at10(model, segment="all"):
        return {r["metric"]: r["value"] for r in out["metrics"]
                if r["k"] == 10 and r["model"] == model and r["segment"] == segment}

    got = at10("popularity")
    content = at10("w2v_content")
    assert 0.03 < content["ndcg"] < got["ndcg"]  # text alone is far behind popularity on MovieLens
    # MiniLM over title, genres and plot: measured 0.1280 (the embedding does not depend
    # on the test layer's small Word2Vec settings); ahead of Word2Vec, behind popularity.
    assert out["embed"]["embedded"] == 1682 and out["embed"]["no_text"] == 0
    tc = at10("transformer_content")
    assert tc["ndcg"] == pytest.approx(0.1280, abs=0.002)
    assert content["ndcg"] < tc["ndcg"] < got["ndcg"]
    # Spark ALS reaches the best published number on this protocol (BiVAE 0.475), and the
    # hybrid adds the transformer on top (measured 0.4921 and 0.4953).
    als = at10("als")
    hyb = at10("hybrid")
    assert als["ndcg"] >= 0.48 and hyb["ndcg"] >= 0.48
    expected = {"precision": 0.224072, "recall": 0.109543, "ndcg": 0.247982, "map": 0.134300,
                "mrr": 0.464053, "hit_rate": 0.826087}
    for m, v in expected.items():
        assert got[m] == pytest.approx(v, abs=1e-5), m
    assert {r["n_users"] for r in out["metrics"] if r["segment"] == "all"} == {943}
    # Beyond accuracy and segments on real data: popularity shows ~40 films in all, the
    # transformer half the catalogue; MovieLens has no graph (no with_friends rows).
    assert got["coverage"] < 0.05 < 0.3 < tc["coverage"] and got["novelty"] < tc["novelty"]
    segments = {r["segment"]: r["n_users"] for r in out["metrics"] if r["model"] == "als" and r["metric"] == "ndcg"}
    assert set(segments) == {"all", "cold_items", "light_users"} and 200 < segments["light_users"] < 300
    assert at10("als", "light_users")["ndcg"] < als["ndcg"]
