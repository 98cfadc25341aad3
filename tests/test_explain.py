"""The explain stage (socialrec.explain): reasons and template sentences checked against a
hand-built world (vectors, follows, train pairs and components chosen so every reason is
known in advance), the generation path with a tiny randomly initialised causal LM built
here (real folder, real loading and generate calls, no downloaded weights), and the
guardrails on crafted outputs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, ConfigError, ExplainConfig, GraphConfig, load_config
from socialrec.core.schemas import EDGES, ITEM_EMBEDDINGS, ITEMS, RECOMMENDATIONS, SPLITS, USERS
from socialrec.core.storage import Storage
from socialrec.explain import Names, build_prompt, cap, guard, normalise, plain_text, unlisted_mentions
from socialrec.explain.generator import Generator, inspect_causal_model, random_causal_lm
from socialrec.features.encoder import ModelError
from socialrec.stages.explain import explain_stage

DS = "tiny"
T0 = datetime(2026, 1, 1)
TITLES = {"i1": "Hop harvest notes", "i2": "Dry hopping guide", "i3": "Lager yeast tips", "i4": "Stout recipes",
          "i5": "<b>Barrel</b> aging", "i6": None, "i7": "Porter"}
VECTORS = {"i1": [1, 0, 0, 0], "i2": [0.95, 0.31, 0, 0], "i3": [0, 1, 0, 0], "i4": [0, 0, 1, 0],
           "i5": [0, 0, 0.2, 1], "i7": [0.3, 0, 0, 1]}  # i6: no vector
# Centred cosines of these (socialrec.models.retrieval.centre): i1~i2 0.912, i5~i7 0.896, i2~i3 0.001,
# every other pair below 0.
TRAIN = [("u1", "i1", 1), ("u1", "i3", 2), ("u2", "i2", 3), ("u2", "i4", 4), ("u3", "i2", 5), ("u3", "i5", 6),
         ("u4", "i1", 7)]  # (user, item, day)
FOLLOWS = [("u1", "u2"), ("u1", "u3"), ("u4", "u1"), ("u2", "u3"), ("u2", "u4")]
RECS = [  # (model, user, rank, item, components)
    ("hybrid", "u1", 1, "i2", {"als": 0.1, "transformer": 0.9, "social": 0.3, "ranker": 1.3}),
    ("hybrid", "u1", 2, "i4", {"social": 0.5, "transformer": 0.1, "ranker": 0.6}),
    ("hybrid", "u1", 3, "i5", {"trending": 0.4, "social": 0.0, "ranker": 0.4}),
    ("hybrid", "u4", 1, "i3", {"als": 0.7, "popular": 0.2, "ranker": 0.9}),
    ("hybrid", "u2", 1, "i1", {"graph": 0.2, "als": -0.1, "ranker": 0.1}),
    ("hybrid", "u3", 1, "i7", {"transformer": 0.5, "ranker": 0.5}),
    ("popularity", "u4", 1, "i2", {"popularity": 2.0}),
    ("popularity", "u2", 1, "i6", {"popularity": 0.0}),
]
EXPECTED = {  # (model, user, rank) -> (template, signal, similar, people, network, engaged)
    ("hybrid", "u1", 1): ('Similar to "Hop harvest notes", which you engaged with. Cy and Bob from your network '
                          'engaged with it too.', "transformer", ["i1"], ["u3", "u2"], 2, 2),
    ("hybrid", "u1", 2): ("Bob from your network engaged with this.", "social", [], ["u2"], 1, 1),
    ("hybrid", "u1", 3): ("Trending: engagement with it is rising fast. Cy from your network engaged with it too.",
                          "trending", [], ["u3"], 1, 1),
    ("hybrid", "u4", 1): ("People who engaged with what you did also engaged with this. Ann from your network "
                          "engaged with it too.", "als", [], ["u1"], 1, 1),
    ("hybrid", "u2", 1): ('user u4 from your network engaged with this. It is similar to "Dry hopping guide", which you '
                          'engaged with.', "graph", ["i2"], ["u4"], 1, 2),
    ("hybrid", "u3", 1): ('Similar to "Barrel aging", which you engaged with.', "transformer", ["i5"], [], 0, 0),
    ("popularity", "u4", 1): ('Popular: 2 people engaged with this. It is similar to "Hop harvest notes", which you '
                              'engaged with.', "popular", ["i1"], [], 0, 2),
    ("popularity", "u2", 1): ("Picked for you from your activity.", None, [], [], 0, 0),
}
WORDS = "this is a great pick for you because it matches what you like and people engaged with similar posts .".split()


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-world") / "warehouse"
    storage = Storage(root=str(root))
    names = {"u1": "Ann", "u2": "Bob", "u3": "Cy", "u4": None}
    storage.merge(spark.createDataFrame([(DS, u, n, None, T0) for u, n in names.items()], USERS.schema), USERS)
    text = {"i6": "A question about water chemistry for pale ales, with a long body of text that goes on"}
    storage.merge(spark.createDataFrame([(DS, i, "u1", t, text.get(i, f"About {i}"), None, "post", None, T0, None)
                                         for i, t in TITLES.items()], ITEMS.schema), ITEMS)
    storage.merge(spark.createDataFrame([(DS, i, "all-MiniLM-L6-v2", 4, [float(x) for x in v], "h", T0)
                                         for i, v in VECTORS.items()], ITEM_EMBEDDINGS.schema), ITEM_EMBEDDINGS)
    storage.merge(spark.createDataFrame([(DS, s, d, "follow", 1.0, T0, None) for s, d in FOLLOWS], EDGES.schema), EDGES)
    rows = [(DS, "stratified", 42, "train", u, i, 1.0, T0 + timedelta(days=d), 1) for u, i, d in TRAIN]
    rows.append((DS, "stratified", 42, "test", "u1", "i2", 1.0, T0 + timedelta(days=9), 1))
    storage.merge(spark.createDataFrame(rows, SPLITS.schema), SPLITS)
    recs = [("r1", DS, "stratified", m, u, r, i, 1.0, c, "own", None, None) for m, u, r, i, c in RECS]
    storage.merge(spark.createDataFrame(recs, RECOMMENDATIONS.schema), RECOMMENDATIONS)
    return storage


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return random_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model", words=WORDS)


def _explain(spark, storage, **cfg):
    return explain_stage(spark, storage, run_id="r1", dataset=DS, protocol="stratified", seed=42,
                         cfg=ExplainConfig(**cfg), graph=GraphConfig(directed=True))


def _rows(spark, storage):
    df = storage.read(spark, RECOMMENDATIONS).where(F.col("run_id") == "r1")
    return {(r.model, r.user_id, r.rank): r for r in df.collect()}


def test_template_explains_every_row_from_the_reasons(spark, world):
    out = _explain(spark, world)
    assert out["rows"] == len(RECS) and out["explained_by"] == {"template": len(RECS)} and out["generated"] == 0
    rows = _rows(spark, world)
    for key, (text, signal, similar, people, network, engaged) in EXPECTED.items():
        r = rows[key]
        assert r.explanation == text, key
        assert r.explained_by == "template"
        assert (r.reasons.signal, list(r.reasons.similar), list(r.reasons.people), r.reasons.network,
                r.reasons.engaged) == (signal, similar, people, network, engaged), key
    # A second pass changes nothing (the MERGE commits nothing when no value changed).
    version = world.version(spark, RECOMMENDATIONS)
    _explain(spark, world)
    assert world.version(spark, RECOMMENDATIONS) == version


def test_generated_explanations_pass_the_guardrails(spark, world, tiny_lm):
    out = _explain(spark, world, model_path=tiny_lm, top=1, models=["hybrid"], max_new_tokens=24, batch_size=2)
    assert out["generated"] == 4  # the rank-1 rows of hybrid: u1, u2, u3, u4
    rows = _rows(spark, world)
    known = Names.of([t for t in TITLES.values() if t], ["Ann", "Bob", "Cy"])
    verdicts = []
    for key, r in rows.items():
        text, signal, similar, people, *_ = EXPECTED[key]
        assert (r.reasons.signal, list(r.reasons.people)) == (signal, people)  # the reasons do not depend on the path
        if key[0] == "hybrid" and key[2] == 1:
            verdicts.append(r.explained_by)
            assert r.explained_by in ("model", "fallback:empty", "fallback:unlisted-mention"), r.explained_by
            if r.explained_by == "model":
                assert r.explanation != text and len(r.explanation) <= 240
                assert r.explanation == cap(plain_text(r.explanation), max_chars=240, max_sentences=2)
                assert set(r.explanation.replace(".", " ").split()) <= set(WORDS)  # only the model's vocabulary
                assert unlisted_mentions(r.explanation, [], known) == []
            else:
                assert r.explanation == text  # the template stands in
        else:
            assert (r.explained_by, r.explanation) == ("template", text), key
    assert "model" in verdicts
    assert sum(out["explained_by"].values()) == len(RECS)


def test_engine_loads_a_local_folder_and_batches_like_single_prompts(tiny_lm):
    gen = Generator(tiny_lm, device="cpu", max_new_tokens=12, batch_size=2)
    assert not gen.chat
    prompts = [build_prompt(title="Hop harvest notes", snippet="notes", signal="transformer",
                            similar=["Dry hopping guide"], people=["Bob"], network=3, engaged=4),
               build_prompt(title="Porter", snippet=None, signal="popular", similar=[], people=[], network=0,
                            engaged=1),
               "a short one"]
    batched = gen.generate(prompts)
    assert batched == [gen.generate([p])[0] for p in prompts]  # left padding changes nothing
    assert all(set(t.replace(".", " ").split()) <= set(WORDS) for t in batched) and any(batched)
    assert '"Dry hopping guide"' in prompts[0] and "Bob and 2 others from the user's network" in prompts[0]
    assert "1 person engaged with it in total" in prompts[1]


def test_model_folders_are_checked_before_loading(tmp_path, tiny_lm):
    assert inspect_causal_model(tiny_lm) == "llama"
    with pytest.raises(ModelError, match="not found .*explain.model_path"):
        inspect_causal_model(tmp_path / "nowhere")
    bad = tmp_path / "remote"
    bad.mkdir()
    for f in ("tokenizer.json", "model.safetensors"):
        (bad / f).write_text("{}")
    (bad / "config.json").write_text(json.dumps({"model_type": "llama", "auto_map": {"AutoModel": "x.Model"}}))
    with pytest.raises(ModelError, match="custom code"):
        inspect_causal_model(bad)
    (bad / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ModelError, match="not a causal language model"):
        inspect_causal_model(bad)
    (bad / "model.safetensors").unlink()
    (bad / "pytorch_model.bin").write_text("x")
    with pytest.raises(ModelError, match="pickled"):
        inspect_causal_model(bad)


def test_guardrails_on_crafted_outputs():
    known = Names.of(["Toy Story (1995)", "Toy Story 2 (1999)", "Matrix, The (1999)", "Heat (1995)", "maya_42",
                      "leo_7", "Hop harvest notes"])
    allowed = ["Toy Story 2 (1999)", "maya_42"]
    kw = dict(allowed=allowed, known=known, max_chars=120, max_sentences=2)
    assert guard('You loved "Toy Story 2", and maya_42 watched it too.', **kw) == (
        'You loved "Toy Story 2", and maya_42 watched it too.', "model")
    # Markup, links, markdown and emoji are removed; a label the model echoes is dropped.
    assert guard("Explanation: <b>Because</b> **you** liked it \U0001F600 see https://x.io/a now.", **kw) == (
        "Because you liked it see now.", "model")
    # Only whole sentences, at most two, within max_chars.
    assert guard("One two three. Four five six! Seven eight nine.", **kw) == ("One two three. Four five six!", "model")
    assert guard("an unfinished thought that never", **kw) == (None, "fallback:empty")
    assert guard("Yes.", **kw) == (None, "fallback:empty")
    assert guard(None, **kw) == (None, "fallback:empty")
    assert guard("word " * 40 + "end.", **kw) == (None, "fallback:empty")  # one sentence longer than max_chars
    # Names outside the reasons: a known title (any case, year and article normalised), a
    # one-word title written as a name, a person, a quoted title that is not listed, an @handle.
    for text in ('You might like The Matrix as well.', "It is like Heat in tone.", "leo_7 engaged with it.",
                 'Similar to "Finding Nemo", which you liked.', "Ask @leo_7 about it.", "Fans of toy story agree."):
        assert guard(text, **kw) == (None, "fallback:unlisted-mention"), text
    assert guard("It will heat up your evening.", **kw)[1] == "model"  # a word, not the title "Heat"
    assert unlisted_mentions("Toy Story 2 fans and maya_42 liked it.", allowed, known) == []
    people = Names.of(["Heat (1995)"], ["alvas", "Tim Burnett"])
    assert unlisted_mentions("Alvas and tim burnett liked it.", [], people) == ["tim burnett", "Alvas"]
    assert unlisted_mentions("You liked Heat Wave IPA.", ["Heat Wave IPA"], people) == []  # inside an allowed name
    # A quoted question's "?" does not end the sentence; at most two whole sentences are kept.
    assert cap('Similar to "Is it ale?" and "Why foam?", which you liked. More here. And more.', max_chars=200,
               max_sentences=2) == 'Similar to "Is it ale?" and "Why foam?", which you liked. More here.'

    assert normalise("Matrix, The (1999)") == "the matrix" and normalise("  Hop-harvest NOTES ") == "hop harvest notes"


def test_explain_config_is_validated():
    base = [CONF_DIR / "base.yaml"]
    assert load_config(base).explain == ExplainConfig()
    for key, value, msg in (("explain.top", 0, "explain.top"), ("explain.max_chars", 10, "explain.max_chars"),
                            ("explain.device", "tpu", "explain.device"), ("explain.similar", 20, "explain.similar"),
                            ("explain.models", "[nope]", "explain.models")):
        with pytest.raises(ConfigError, match=msg):
            load_config(base, [f"{key}={value}"])
