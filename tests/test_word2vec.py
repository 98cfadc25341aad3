"""Word2Vec engines, item vectors (mean and SIF, checked by hand) and the w2v_content
recommender on a hand-made fixture."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.data.synthetic import generate
from socialrec.features.tokenize import tokenize
from socialrec.features.word2vec import check_spark_limit, item_vectors, train_word_vectors
from socialrec.models.content import recommend_by_content


@pytest.fixture(scope="module")
def corpus(spark):
    raw = generate(spark, users=100, posts=1200, topics=4, interactions_per_user_mean=5.0, corrupt_rate=0.0,
                   partitions=2, seed=5)
    return tokenize(raw.items.select("item_id", "title", "text")).cache()  # reused by both engines


def _vec(rows, word):
    return np.array(rows[word], dtype=np.float64)


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("engine", ["spark", "gensim"])
def test_engines_learn_the_topics(corpus, engine):
    wv = train_word_vectors(corpus, engine=engine, vector_size=24, min_count=3, max_iter=5, partitions=1, seed=1)
    rows = {r.word: r.vector for r in wv.collect()}
    assert all(len(v) == 24 for v in rows.values())
    # 4 topics: cooking, football, programming, travel
    assert {"goalkeeper", "penalty", "compiler", "passport"} <= set(rows)
    same = _cos(_vec(rows, "goalkeeper"), _vec(rows, "penalty"))
    other = _cos(_vec(rows, "goalkeeper"), _vec(rows, "compiler"))
    assert same > other
    counts = {r.word: r["count"] for r in wv.select("word", "count").collect()}
    assert min(counts.values()) >= 3


def test_item_vectors_mean_and_sif_by_hand(spark):
    tokens = spark.createDataFrame([("i1", ["a", "b"]), ("i2", ["a", "a", "c"]), ("i3", ["zzz"])],
                                   "item_id string, tokens array<string>")
    wv = spark.createDataFrame([("a", [1.0, 0.0], 3), ("b", [0.0, 1.0], 1), ("c", [2.0, 2.0], 1)],
                               "word string, vector array<float>, count long")
    mean = {r.item_id: r.vector for r in item_vectors(tokens, wv, variant="mean").collect()}
    assert mean["i1"] == pytest.approx([0.5, 0.5]) and mean["i2"] == pytest.approx([4 / 3, 2 / 3])
    assert "i3" not in mean  # no known word: no vector
    a = 0.5
    w = {"a": a / (a + 3 / 5), "b": a / (a + 1 / 5), "c": a / (a + 1 / 5)}
    sif = {r.item_id: r.vector for r in item_vectors(tokens, wv, variant="sif", sif_a=a).collect()}
    expect_i1 = (np.array([1, 0]) * w["a"] + np.array([0, 1]) * w["b"]) / (w["a"] + w["b"])
    assert sif["i1"] == pytest.approx(expect_i1.tolist(), rel=1e-6)


def test_spark_limit_is_named():
    with pytest.raises(ValueError, match="vocabulary \\(3,000,000 words\\) x vector_size \\(100\\)"):
        check_spark_limit(3_000_000, 100)


def test_w2v_content_ranks_by_cosine_and_removes_seen(spark):
    items = spark.createDataFrame(
        [("x1", [1.0, 0.0]), ("x2", [0.9, 0.1]), ("x3", [0.0, 1.0]), ("x4", [0.7, 0.7]), ("x5", [-1.0, 0.0])],
        "item_id string, vector array<float>")
    train = spark.createDataFrame([("u", "x1", 2.0), ("v", "x3", 1.0), ("v", "x1", 1.0)],
                                  "user_id string, item_id string, weight double")
    recs = recommend_by_content(train, items, k=3, center=False)
    got = {}
    for r in recs.orderBy("user_id", "rank").collect():
        got.setdefault(r.user_id, []).append((r.item_id, round(r.score, 4), r.explanation))
    # u's profile is x1 = (1, 0): cosines x2 0.9939, x4 0.7071, x3 0, x5 -1 (x1 seen).
    assert [i for i, _, _ in got["u"]] == ["x2", "x4", "x3"]
    assert got["u"][0][1] == pytest.approx(0.9939, abs=1e-4)
    assert got["u"][0][2] == "similar to x1, which you engaged with"
    # v's profile is the mean of x3 and x1 = (0.5, 0.5): x4 first (cosine 1), then x2.
    assert [i for i, _, _ in got["v"]][:2] == ["x4", "x2"]
    assert got["v"][0][1] == pytest.approx(1.0, abs=1e-4)


def test_word2vec_rejects_unknown_engine(corpus):
    with pytest.raises(ValueError, match="word2vec.engine: 'fasttext'"):
        train_word_vectors(corpus, engine="fasttext")


def test_word_quality_of_a_vocabulary_without_judgements_is_missing_not_an_error():
    """A catalogue with titles only can leave a vocabulary in which no WordSim-353 pair and
    no analogy question is found: gensim raises there; the figures come back missing."""
    import numpy as np

    from socialrec.features.quality import word_quality

    q = word_quality(["zzyzx"], np.ones((1, 4), dtype=np.float32))
    assert np.isnan(q["wordsim353_spearman"]) and q["wordsim353_oov_ratio"] == 1.0
    assert np.isnan(q["analogy_accuracy"]) and q["analogy_questions"] == 0.0
    full = word_quality(["king", "queen", "man", "woman", "tiger", "cat"], np.eye(6, dtype=np.float32))
    assert 0.0 <= full["wordsim353_oov_ratio"] < 1.0 and not np.isnan(full["wordsim353_spearman"])
