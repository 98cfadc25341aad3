"""Config loading: layering, --set typing, and errors that name the bad key."""

from __future__ import annotations

import pytest

from socialrec.core.config import CONF_DIR, ConfigError, load_config

BASE = CONF_DIR / "base.yaml"


def test_defaults_and_local_layer():
    cfg = load_config(env="local")
    assert cfg.dataset.name == "synthetic"
    assert cfg.evaluation.protocol == "stratified"
    assert cfg.evaluation.ratio == 0.75 and cfg.evaluation.seed == 42 and cfg.evaluation.k == [1, 5, 10, 20]
    assert cfg.evaluation.repeats == 1 and cfg.report.enabled and cfg.tracking.mlflow is None
    assert cfg.storage.root == "./warehouse"
    assert cfg.spark.conf["spark.databricks.delta.snapshotPartitions"] == "2"  # from local.yaml


def test_later_files_override_earlier_and_sections_merge(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("evaluation: {protocol: chrono, ratio: 0.8}\nspark: {conf: {x.y: '1'}}\n")
    b.write_text("evaluation: {ratio: 0.6}\nspark: {conf: {x.z: '2'}}\n")
    cfg = load_config([BASE, a, b])
    assert cfg.evaluation.protocol == "chrono"  # kept from a
    assert cfg.evaluation.ratio == 0.6  # b wins
    assert cfg.spark.conf == {"x.y": "1", "x.z": "2"}  # mappings merge key by key


def test_set_overrides_are_typed():
    cfg = load_config([BASE], ["evaluation.k=[5, 20]", "recommend.k=20", "evaluation.ratio=0.5",
                               "spark.ui=true", "dataset.synthetic.users=123", "run.id=abc-1"])
    assert cfg.evaluation.k == [5, 20]
    assert cfg.recommend.k == 20
    assert cfg.evaluation.ratio == 0.5
    assert cfg.spark.ui is True
    assert cfg.dataset.synthetic.users == 123
    assert cfg.run.id == "abc-1"


def test_single_k_becomes_a_list():
    assert load_config([BASE], ["evaluation.k=5"]).evaluation.k == [5]


@pytest.mark.parametrize(
    "override, key, why",
    [
        ("evaluation.protcol=random", "evaluation.protcol", "unknown key"),
        ("evaluation.protocol=weekly", "evaluation.protocol", "not one of random, stratified, chrono"),
        ("evaluation.ratio=1.5", "evaluation.ratio", "between 0 and 1"),
        ("evaluation.ratio=abc", "evaluation.ratio", "expected a number"),
        ("evaluation.k=[0]", "evaluation.k", "positive"),
        ("evaluation.models=[als9]", "evaluation.models", "unknown model 'als9'"),
        ("recommend.k=0", "recommend.k", "at least 1"),
        ("evaluation.protocol=leave_one", "evaluation.protocol",
         "not one of random, stratified, chrono, leave_last, time_cut, cold_items, cold_users"),
        ("evaluation.time_cut=yesterday", "evaluation.time_cut", "ISO timestamp"),
        ("evaluation.cold_history=-1", "evaluation.cold_history", "0 or more"),
        ("evaluation.light_users=1", "evaluation.light_users", "between 0 and 1"),
        ("evaluation.repeats=0", "evaluation.repeats", "at least 1"),
        ("evaluation.segments=[heavy]", "evaluation.segments", "unknown segment 'heavy'"),
        ("evaluation.models=[als,als]", "evaluation.models", "lists a model twice"),
        ("evaluation.metrics=[serendipity]", "evaluation.metrics", "unknown metric 'serendipity'"),
        ("report.projection_items=1", "report.projection_items", "at least 2"),
        ("tracking.mlflow=[1]", "tracking.mlflow", "expected a string"),
        ("dataset.synthetic.users=many", "dataset.synthetic.users", "expected an integer"),
        ("dataset.synthetic.homophily=2", "dataset.synthetic.homophily", "between 0 and 1"),
        ("dataset.event_weights.like=-1", "dataset.event_weights.like", "positive"),
        ("spark.ui=maybe", "spark.ui", "true or false"),
        ("jars.mode=maven", "jars.mode", "not one of"),
        ("run.id=a b", "run.id", "only letters"),
        ("nosuch.key=1", "nosuch", "unknown key"),
        ("dataset.rating_weight=half", "dataset.rating_weight", "explicit or binary"),
        ("dataset.files={likes: {path: x}}", "dataset.files.likes", "unknown table"),
        ("dataset.adapter=files", "dataset.files.interactions", "required by the files adapter"),
        ("dataset.name=netflix", "dataset.name", "unknown dataset 'netflix'; known: synthetic, movielens-100k"),
        ("embed.device=tpu", "embed.device", "'tpu' is not one of auto, cpu, cuda, cuda:<n>"),
        ("embed.device=cuda:x", "embed.device", "not one of"),
        ("embed.dtype=int8", "embed.dtype", "'int8' is not one of"),
        ("embed.fields=[body]", "embed.fields", "unknown item field 'body'"),
        ("embed.batch_size=0", "embed.batch_size", "at least 1"),
        ("embed.model=a b", "embed.model", "must be letters"),
        ("content.half_life_days=0", "content.half_life_days", "must be positive"),
        ("als.blocks=0", "als.blocks", "at least 1 (or null"),
        ("content.own_posts_weight=-1", "content.own_posts_weight", "0 or more"),
        ("graph.walk_length=1", "graph.walk_length", "at least 2"),
        ("graph.walks_per_node=0", "graph.walks_per_node", "at least 1"),
        ("graph.q=0", "graph.q", "must be positive"),
        ("graph.attention=-1", "graph.attention", "0 or more"),
        ("graph.engine=deepwalk", "graph.engine", "not one of spark, gensim"),
        ("graph.recent_days=0", "graph.recent_days", "must be positive"),
        ("graph.directed=sometimes", "graph.directed", "true or false"),
        ("hybrid.blend=[friends_z]", "hybrid.blend", "unknown feature 'friends_z'"),
        ("evaluation.segments=[friends]", "evaluation.segments", "light_with_friends"),
        ("storage.catalog=main.recs; DROP TABLE x", "storage.catalog", "plain identifiers"),
        ("storage.catalog=a.b.c", "storage.catalog", "catalog.schema or schema"),
        ("storage.catalog=main.1x", "storage.catalog", "not starting with a digit"),
        ("storage.root=''", "storage.root", "folder or URI"),
    ],
)
def test_bad_values_name_the_key(override, key, why):
    with pytest.raises(ConfigError) as err:
        load_config([BASE], [override])
    msg = str(err.value)
    assert msg.startswith(key + ":"), msg
    assert why in msg


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluation: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config([BASE, bad])
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config([BASE, listy])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config([BASE], ["evaluation.k"])
    with pytest.raises(ConfigError, match="environment 'moon'"):
        load_config(env="moon")


def test_config_snapshot_roundtrips_to_json():
    import json

    cfg = load_config([BASE], ["evaluation.k=[5,10]"])
    snap = json.loads(cfg.to_json())
    assert snap["evaluation"]["k"] == [5, 10]
    assert snap["dataset"]["synthetic"]["users"] == 2000


def test_gpu_environment_shares_each_gpu_between_tasks():
    cfg = load_config(None, env="gpu")
    conf = cfg.spark.conf
    assert conf["spark.executor.resource.gpu.amount"] == "1"
    tasks_per_gpu = 1 / float(conf["spark.task.resource.gpu.amount"])
    assert tasks_per_gpu == int(conf["spark.executor.cores"]) == 16  # every core feeds the one GPU
    assert conf["spark.executor.resource.gpu.discoveryScript"].endswith("get_gpus_resources.sh")
    assert (cfg.embed.device, cfg.embed.dtype, cfg.embed.threads) == ("auto", "auto", 1)


def test_every_model_config_accepts_has_a_builder():
    """config.MODELS (what evaluation.models may name) and the recommend stage's registry
    list the same models: a model is added in both or neither."""
    from socialrec.core.config import MODELS
    from socialrec.stages.recommend import MODEL_REGISTRY

    assert set(MODEL_REGISTRY) == set(MODELS)


def test_every_stage_has_a_runner():
    from socialrec.pipeline import STAGE_RUNNERS, STAGES

    assert list(STAGE_RUNNERS) == list(STAGES)


def test_base_yaml_states_the_dataclass_defaults():
    """The dataclasses are the only source of defaults: conf/base.yaml, which documents
    them for users, must say the same values (a key it leaves out keeps the default)."""
    from socialrec.core.config import Config, _build, _read_yaml

    assert _build(Config, _read_yaml(BASE), "") == Config()


def test_every_section_checks_itself():
    """Each section validates its own keys (``check``), naming them under the key it is
    given; the choice lists are the ones the implementing modules import."""
    import dataclasses

    from socialrec.core import choices
    from socialrec.core.config import ALSConfig, Config, EmbedConfig
    from socialrec.data import split
    from socialrec.features import embed, encoder, tokenize, word2vec
    from socialrec.models import als, hybrid

    assert all(callable(getattr(getattr(Config(), f.name), "check", None)) for f in dataclasses.fields(Config))
    with pytest.raises(ConfigError, match=r"^als\.confidence: 'cubic' is not one of linear, log, binary$"):
        ALSConfig(confidence="cubic").check()
    with pytest.raises(ConfigError, match=r"^profile\.embed\.fields: unknown item field 'body'"):
        EmbedConfig(fields=["body"]).check("profile.embed")
    assert als.CONFIDENCES is choices.CONFIDENCES and hybrid.FEATURES is choices.HYBRID_FEATURES
    assert split.PROTOCOLS is choices.PROTOCOLS and embed.FIELDS is choices.EMBED_FIELDS
    assert encoder.DTYPES is choices.DTYPES and tokenize.ENGINES is choices.TOKENIZE_ENGINES
    assert word2vec.ENGINES is choices.W2V_ENGINES


def test_model_registry_declares_what_each_model_needs():
    """The feature stages a run needs follow the registry: hybrid-no-<signal> is a spec
    with that signal dropped, not a parsed name."""
    from socialrec.stages.recommend import MODEL_REGISTRY, models_need

    assert MODEL_REGISTRY["hybrid-no-w2v"].options["drop"] == frozenset({"social", "w2v"})
    assert models_need(["hybrid-no-w2v"], "transformer") and not models_need(["hybrid-no-w2v"], "w2v")
    assert models_need(["hybrid-social"], "graph") and not models_need(["hybrid", "social"], "graph")
    assert not models_need(["als"], "w2v") and models_need(["als"], "w2v", bridge=["w2v"])
    assert not models_need(["popularity"], "transformer") and models_need(["transformer_content"], "transformer")


def test_a_users_file_naming_a_preset_refines_it(tmp_path):
    """Layers: base and env < conf/datasets/<name>.yaml < the user's files < --set."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("dataset:\n  name: filmtrust\n  positive_at: 3.5\n")
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml", mine])
    assert cfg.dataset.positive_at == 3.5  # the preset says 3
    assert cfg.dataset.edge_kinds == ["trust"] and "interactions" in cfg.dataset.files  # the rest is the preset's
    assert cfg.spark.master == "local[2]"  # env/test.yaml, under the preset
    assert load_config([CONF_DIR / "base.yaml", mine], ["dataset.positive_at=2"]).dataset.positive_at == 2.0


def test_the_preset_goes_after_base_and_env_wherever_they_are(tmp_path):
    """The repository's conf files passed by path while the package reads its own (a job
    under spark-submit), or copies of them: the preset still goes after base and env
    (base.yaml's embed.fields is [text], the synthetic preset's [title, text])."""
    import shutil

    copy = tmp_path / "copy"
    (copy / "env").mkdir(parents=True)
    shutil.copy(CONF_DIR / "base.yaml", copy / "base.yaml")
    shutil.copy(CONF_DIR / "env" / "cluster.yaml", copy / "env" / "cluster.yaml")
    mine = tmp_path / "small.yaml"
    mine.write_text("dataset: {synthetic: {users: 150}}\n")
    for base in (CONF_DIR, copy):
        cfg = load_config([base / "base.yaml", base / "env" / "cluster.yaml", mine])
        assert cfg.embed.fields == ["title", "text"] and cfg.dataset.synthetic.users == 150, base
