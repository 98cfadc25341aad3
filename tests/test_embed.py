"""Transformer embeddings: the engine against sentence-transformers, the pandas UDF against
the engine, the embed stage's incrementality, blank/long text, bad model folders, and the
blockwise content retrieval against brute force. A few dozen texts in all."""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pytest
from pyspark.sql import functions as F

from socialrec.core.config import EmbedConfig
from socialrec.core.schemas import ITEMS
from socialrec.features.embed import EmbedSettings, embedding_column, embedding_text
from socialrec.features.encoder import Encoder, ModelError, default_model_path, get_encoder, inspect_model
from socialrec.models.content import recommend_by_content
from socialrec.stages.embed import embed_stage

TOPICS = {
    "beer": "a hazy IPA brewed with citra hops and a dry finish",
    "ai": "a transformer network trained with attention on a large text corpus",
    "cooking": "slow roasted tomatoes with garlic, basil and olive oil",
    "cycling": "a long gravel ride over the hills with a strong headwind",
}
TEXTS = [f"Post {i}: {TOPICS[t]}, day {i}." for i, t in enumerate(list(TOPICS) * 6)]  # 24 texts
LONG = " ".join(f"word{i % 97} about hops and malt" for i in range(600))  # far past 256 tokens


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(device="cpu", threads=2)


def test_model_info_from_the_folder():
    info = inspect_model(default_model_path())
    assert (info.pooling, info.max_seq_length, info.dim) == (("mean",), 256, 384)


def test_engine_agrees_with_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    texts = TEXTS + [LONG, "ok"]
    ours = encoder.encode(texts)
    st = SentenceTransformer(default_model_path(), device="cpu", local_files_only=True)
    ref = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (26, 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    assert ((ours * ref).sum(axis=1) >= 0.9999).all()


def test_pooling_config_of_the_model_is_honoured(tmp_path, encoder):
    """A copy of the model whose pooling says CLS: the engine follows it, as
    sentence-transformers does, and the vectors are no longer the mean-pooled ones."""
    from sentence_transformers import SentenceTransformer

    src = default_model_path()
    for name in os.listdir(src):
        if name != "1_Pooling":
            os.symlink(os.path.join(src, name), tmp_path / name)
    (tmp_path / "1_Pooling").mkdir()
    pooling = json.loads(open(os.path.join(src, "1_Pooling", "config.json")).read())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    cls = Encoder(str(tmp_path), device="cpu")
    assert cls.info.pooling == ("cls",)
    ours = cls.encode(TEXTS[:8])
    ref = SentenceTransformer(str(tmp_path), device="cpu", local_files_only=True).encode(
        TEXTS[:8], normalize_embeddings=True)
    assert ((ours * ref).sum(axis=1) >= 0.9999).all()
    assert ((ours * encoder.encode(TEXTS[:8])).sum(axis=1) < 0.99).all()


def test_blank_text_has_no_vector_and_long_text_is_truncated(encoder):
    vecs = encoder.encode([None, "", "   \n", LONG, LONG + " and a tail past the limit", float("nan")])
    assert np.isnan(vecs[[0, 1, 2, 5]]).all() and not np.isnan(vecs[[3, 4]]).any()
    # Both texts are cut at the model's 256 tokens, so the tail changes nothing.
    np.testing.assert_allclose(vecs[3], vecs[4], atol=1e-6)
    short = Encoder(device="cpu", max_length=8).encode([LONG, LONG.split(" and ")[0]])
    assert np.isnan(short).sum() == 0 and short.shape == (2, 384)


def test_one_encoder_per_process_and_settings(encoder):
    assert get_encoder(device="cpu", threads=2) is encoder
    assert get_encoder(device="cpu", threads=2, batch_size=8) is not encoder


@pytest.mark.parametrize("case", ["absent", "empty", "pickled", "dense"])
def test_bad_model_folder_fails_at_once_naming_what_is_wrong(tmp_path, case):
    folder = tmp_path / "model"
    if case != "absent":
        folder.mkdir()
    if case == "pickled":
        (folder / "config.json").write_text("{}")
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
        (folder / "vocab.txt").write_text("[PAD]\n")
    if case == "dense":
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (folder / name).write_text("{}")
        (folder / "modules.json").write_text(json.dumps(
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    expected = {
        "absent": f"model directory {folder}: not found",
        "empty": f"model directory {folder}: missing config.json, model.safetensors, tokenizer.json (or vocab.txt)",
        "pickled": "only pickled weights (pytorch_model.bin); safetensors are required",
        "dense": "module 'sentence_transformers.models.Dense' (2_Dense) is not supported",
    }[case]
    with pytest.raises(ModelError) as err:
        inspect_model(folder)
    assert expected in str(err.value)
    with pytest.raises(ModelError):  # the engine checks before it loads anything
        Encoder(str(folder), device="cpu")


def test_udf_vectors_equal_the_engine_vectors(spark, encoder):
    rows = [(f"i{i}", t) for i, t in enumerate(TEXTS + [None, "  ", LONG])]
    df = spark.createDataFrame(rows, "item_id string, text string").repartition(2)
    settings = EmbedSettings(model_path=default_model_path(), device="cpu", batch_size=5)
    embedded, blank = spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0)
    got = {r.item_id: r.vector for r in
           df.select("item_id", embedding_column(F.col("text"), settings, embedded=embedded, blank=blank)
                     .alias("vector")).collect()}
    want = encoder.encode([t for _, t in rows])
    assert (embedded.value, blank.value) == (27, 2)
    for (item, _), ref in zip(rows, want):
        if np.isnan(ref[0]):
            assert got[item] is None, item
        else:
            np.testing.assert_allclose(np.asarray(got[item], dtype=np.float32), ref, atol=1e-5, err_msg=item)


def _items(spark, texts: dict):
    return spark.createDataFrame(
        [("emb", item, None, None, text, None, "post", None, datetime(2026, 1, 1), None) for item, text in texts.items()],
        ITEMS.schema)


def _stored(spark, storage, model="all-MiniLM-L6-v2"):
    return {r.item_id: r for r in storage.read(spark, "item_embeddings", "emb").where(F.col("model") == model).collect()}


def test_embed_stage_embeds_only_what_changed(spark, storage, encoder):
    texts = {f"p{i}": t for i, t in enumerate(TEXTS[:10])}
    texts.update(blank="  ", missing=None)
    storage.merge(_items(spark, texts), ITEMS, scope={"dataset": "emb"})
    emb = EmbedConfig(device="cpu", batch_size=4, arrow_batch=5, partitions=2)
    first = embed_stage(spark, storage, dataset="emb", emb=emb)
    assert {k: first[k] for k in ("items", "embedded", "kept", "no_text")} == \
        {"items": 12, "embedded": 10, "kept": 0, "no_text": 2}  # the two without text get a null vector, no model
    before = _stored(spark, storage)
    assert before["blank"].vector is None and before["missing"].vector is None
    assert {r.dim for r in before.values()} == {384}
    np.testing.assert_allclose(before["p3"].vector, encoder.encode([TEXTS[3]])[0], atol=1e-5)

    again = embed_stage(spark, storage, dataset="emb", emb=emb)  # nothing changed: nothing embedded
    assert (again["embedded"], again["kept"]) == (0, 12)
    assert _stored(spark, storage) == before  # same vectors, hashes and computed_at

    texts["p3"] = "A completely different post about sourdough bread."
    del texts["p4"]
    storage.merge(_items(spark, texts), ITEMS, scope={"dataset": "emb"})
    third = embed_stage(spark, storage, dataset="emb", emb=emb)
    assert (third["items"], third["embedded"], third["kept"]) == (11, 1, 10)
    after = _stored(spark, storage)
    assert "p4" not in after
    np.testing.assert_allclose(after["p3"].vector, encoder.encode([texts["p3"]])[0], atol=1e-5)
    assert after["p3"].content_hash != before["p3"].content_hash
    assert all(after[i] == before[i] for i in after if i != "p3")

    other = embed_stage(spark, storage, dataset="emb", emb=EmbedConfig(model="minilm-64", max_length=64,
                                                                       device="cpu"))
    assert (other["items"], other["embedded"]) == (11, 9)  # a new model embeds every text anew (2 without)
    assert len(_stored(spark, storage)) == 11  # and leaves the first model's rows alone


def test_embed_stage_names_a_bad_model_path(spark, storage, tmp_path):
    with pytest.raises(ModelError, match=f"model directory {tmp_path / 'nope'}: not found"):
        embed_stage(spark, storage, dataset="emb", emb=EmbedConfig(model_path=str(tmp_path / "nope")))


def test_blockwise_retrieval_equals_brute_force(spark):
    """Small blocks force several user and item blocks: the running top-k must equal a
    full numpy ranking."""
    rng = np.random.default_rng(3)
    n_items, n_users, dim, k = 60, 25, 8, 7
    vecs = rng.normal(size=(n_items, dim)).astype(np.float32)
    ids = [f"it{i:03d}" for i in range(n_items)]
    items = spark.createDataFrame([(ids[i], vecs[i].tolist()) for i in range(n_items)],
                                  "item_id string, vector array<float>")
    hist = [(f"u{u}", ids[i], float(rng.integers(1, 4))) for u in range(n_users)
            for i in rng.choice(n_items, size=int(rng.integers(1, 6)), replace=False)]
    train = spark.createDataFrame(hist, "user_id string, item_id string, weight double")
    got = {}
    for r in recommend_by_content(train, items, k=k, block_cells=40, center=False).orderBy("user_id", "rank").collect():
        got.setdefault(r.user_id, []).append(r.item_id)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for u in range(n_users):
        mine = [(ids.index(i), w) for user, i, w in hist if user == f"u{u}"]
        p = sum(w * unit[i].astype(np.float64) for i, w in mine)
        s = unit @ (p / np.linalg.norm(p))
        s[[i for i, _ in mine]] = -np.inf
        assert got[f"u{u}"] == [ids[i] for i in np.argsort(-s, kind="stable")[:k]], u


def test_time_decay_and_own_posts_shape_the_profile(spark):
    items = spark.createDataFrame([("old", [1.0, 0.0]), ("new", [0.0, 1.0]), ("near_old", [0.95, 0.05]),
                                   ("near_new", [0.05, 0.95]), ("mine", [-1.0, 0.2]), ("near_mine", [-1.0, 0.25])],
                                  "item_id string, vector array<float>")
    train = spark.createDataFrame([("u", "old", 3.0, datetime(2026, 1, 1)), ("u", "new", 1.0, datetime(2026, 3, 2))],
                                  "user_id string, item_id string, weight double, ts timestamp")
    plain = recommend_by_content(train, items, k=1, center=False).first()
    decayed = recommend_by_content(train, items, k=1, half_life_days=10.0, center=False).first()
    # Undecayed, "old" weighs 3 to 1 and wins; with a 10-day half-life "old" (60 days
    # older than "new") weighs 3 * 2^-6, so the profile turns to "new".
    assert (plain.item_id, decayed.item_id) == ("near_old", "near_new")
    assert plain.explanation == "similar to old, which you engaged with"
    assert decayed.score > 0.999
    assert decayed.explanation == "similar to new, which you engaged with"
    own = spark.createDataFrame([("u", "mine"), ("w", "mine")], "user_id string, item_id string")
    recs = recommend_by_content(train, items, k=6, own_items=own, own_weight=5.0, center=False).orderBy("user_id", "rank").collect()
    assert [r.item_id for r in recs if r.user_id == "u"][0] == "near_mine"  # the own post dominates the profile
    assert "mine" not in {r.item_id for r in recs}  # and is never recommended back
    w = [r for r in recs if r.user_id == "w"]  # no history, only a post: recommendations from the post alone
    assert w[0].item_id == "near_mine" and w[0].explanation == "matches your own posts"


def test_centring_removes_the_shared_direction(spark):
    """Every item points mostly along x; only y tells them apart. Raw cosine follows the
    shared part, centred cosine the distinguishing one (values computed by hand in numpy:
    raw p 0.9950, b 0.9802, q 0.9754; centred q 0.8144, p -0.7901, b -0.8646)."""
    items = spark.createDataFrame([("a", [10.0, 1.0]), ("p", [20.0, 0.0]), ("q", [3.0, 1.0]), ("b", [10.0, -1.0])],
                                  "item_id string, vector array<float>")
    train = spark.createDataFrame([("u", "a", 1.0)], "user_id string, item_id string, weight double")
    raw = recommend_by_content(train, items, k=3, center=False).orderBy("rank").collect()
    centred = recommend_by_content(train, items, k=3).orderBy("rank").collect()
    assert [r.item_id for r in raw] == ["p", "b", "q"]
    assert [r.item_id for r in centred] == ["q", "p", "b"]
    assert [round(r.score, 4) for r in centred] == [0.8144, -0.7901, -0.8646]


@pytest.mark.gpu
def test_fp16_on_cuda_agrees_with_fp32_on_cpu(encoder):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = Encoder(device="cuda", batch_size=256)
    assert gpu.dtype == "float16"
    texts = TEXTS + [LONG]
    assert ((gpu.encode(texts) * encoder.encode(texts)).sum(axis=1) >= 0.999).all()


def test_markup_is_removed_before_embedding_unless_asked_to_keep_it(spark):
    df = spark.createDataFrame([("Hops &amp; <b>IPA</b>", "<p>Dry</p><script>alert('x')</script> hopping", ["a"])],
                               "title string, text string, tags array<string>")
    clean, raw = df.select(embedding_text(["title", "text", "tags"]),
                           embedding_text(["title", "text", "tags"], html=False)).first()
    assert clean == "Hops & IPA. Dry hopping. a"
    assert raw == "Hops &amp; <b>IPA</b>. <p>Dry</p><script>alert('x')</script> hopping. a"
