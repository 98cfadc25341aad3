"""Typed, layered configuration: YAML files, later ones overriding earlier, then --set.

``load_config(["conf/base.yaml", "conf/env/local.yaml"], ["evaluation.k=[5,10]"])`` merges
the files in order (mappings merge key by key; any other value replaces), applies the
``--set`` overrides (values parsed as YAML, so ``5``, ``0.5``, ``[5,10]`` and ``true`` get
their types), then builds the typed ``Config`` below. Every problem raises
``ConfigError`` naming the key and what is wrong with it.

When a dataset is named and ``conf/datasets/<name>.yaml`` exists next to the base file,
it is layered after the files given (but before ``--set``), so
``--set dataset.name=movielens-100k`` picks up that dataset's defaults.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from socialrec.data.vocab import TOPICS


def _find_conf_dir():
    """``socialrec/conf`` inside an installed wheel, else the repository's ``conf/``.

    Under spark-submit ``--py-files socialrec.whl`` the package is imported from the zip,
    so the packaged conf is read through importlib.resources (a zip-aware path).
    """
    here = Path(__file__).resolve().parents[1]  # the socialrec package (this is socialrec/core/config.py)
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "base.yaml").exists():
            return candidate
    packaged = importlib.resources.files("socialrec") / "conf"
    if (packaged / "base.yaml").is_file():
        return packaged
    return here.parents[1] / "conf"


CONF_DIR = _find_conf_dir()


class ConfigError(ValueError):
    """A configuration value is missing, unknown, or invalid; the message names the key."""


# --------------------------------------------------------------------------- schema


@dataclass
class SparkConfig:
    master: str | None = "local[*]"
    app_name: str = "socialrec"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    ui: bool = False
    progress: bool = True
    log_level: str = "WARN"
    # Where Spark checkpoints RDD lineage (ALS): must be storage every executor reaches.
    # null: a temporary folder in local mode, else <storage.root>/_checkpoints.
    checkpoint_dir: str | None = None
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class JarsConfig:
    # local: jars resolved once by `socialrec setup` into cache_dir and passed as
    # spark.jars (no repository is contacted at run time); packages: coordinates passed
    # as spark.jars.packages (clusters that reach a repository); none: the platform
    # provides them (Databricks, or jars baked into the cluster image).
    mode: str = "local"
    cache_dir: str | None = None
    delta: str = "io.delta:delta-spark_4.1_2.13:4.4.0"
    spark_nlp: str = "com.johnsnowlabs.nlp:spark-nlp_2.13:7.0.0"
    # auto: load Spark NLP when its jar is in the cache; true: require it; false: never.
    use_spark_nlp: str = "auto"


@dataclass
class StorageConfig:
    # Delta tables as paths <root>/<table> (a folder, hdfs://, s3a://, abfss://, dbfs:/,
    # /Volumes/...); reports and checkpoints go under it as well.
    root: str = "./warehouse"
    # "catalog.schema" (or "schema") of a metastore: tables are then managed or
    # external metastore tables <catalog>.<schema>.<table>, the schema created if absent.
    catalog: str | None = None


@dataclass
class SyntheticConfig:
    users: int = 2000
    posts: int = 6000
    topics: int = 12
    follows_mean: float = 12.0
    interactions_per_user_mean: float = 40.0
    homophily: float = 0.8
    social_share: float = 0.2
    popularity_skew: float = 2.5
    corrupt_rate: float = 0.001
    days: int = 90
    end: str = "2026-10-01T00:00:00"
    partitions: int = 8


@dataclass
class FileSourceConfig:
    """One table of the generic ``files`` adapter: where, how, and which column is which."""

    path: str | None = None
    format: str = "csv"  # csv | json | parquet
    options: dict[str, str] = field(default_factory=dict)  # reader options, e.g. {sep: ";"}
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> column in the file


@dataclass
class DatasetConfig:
    name: str = "synthetic"
    # Which adapter reads it (default: the name); the name labels the rows in the tables,
    # so two Stack Exchange sites can share a warehouse as stackexchange-beer / -ai.
    adapter: str | None = None
    path: str | None = None
    seed: int = 7
    rating_weight: str = "explicit"  # explicit: the rating value; binary: 1.0 for every rating
    max_weight: float = 1_000_000.0  # larger interaction / edge weights are rejected as corrupt
    files: dict[str, FileSourceConfig] = field(default_factory=dict)
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "like": 2.0, "comment": 3.0, "share": 4.0}
    )
    edge_kinds: list[str] = field(default_factory=lambda: ["follow", "friend", "trust", "replied_to"])
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class EvaluationConfig:
    protocol: str = "stratified"
    ratio: float = 0.75
    seed: int = 42
    cold_share: float = 0.2  # cold_items: share of the items whose every pair goes to test
    auc_depth: int = 1000  # cold_items: recommendations ranked per user (the whole cold set when smaller), for AUC
    cold_history: int = 2  # cold_users: train pairs a cold user keeps (their earliest)
    time_cut: str | None = None  # time_cut: ISO timestamp (UTC); null: the ratio quantile of the pairs' times
    k: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    models: list[str] = field(default_factory=lambda: ["popularity", "w2v_content", "transformer_content"])
    metrics: list[str] = field(
        default_factory=lambda: ["precision", "recall", "ndcg", "map", "mrr", "hit_rate",
                                 "coverage", "novelty", "diversity"]
    )
    segments: list[str] = field(default_factory=lambda: ["all", "cold_items", "light_users", "with_friends",
                                                         "light_with_friends"])
    light_users: float = 0.25  # light_users segment: this quantile of test users' train-pair counts and below
    repeats: int = 1  # seeds evaluated: seed, seed + 1, ...; summary rows carry mean and std


@dataclass
class ReportConfig:
    enabled: bool = True
    dir: str | None = None  # null: <storage.root>/reports/<run_id> for a local root, else ./reports/<run_id>
    projection_items: int = 2000  # items in the 2-D embedding projection (a seeded sample)


@dataclass
class TrackingConfig:
    mlflow: str | None = None  # an MLflow tracking URI (file:./mlruns, http://host:5000, databricks); null: off
    experiment: str = "socialrec"


@dataclass
class TokenizeConfig:
    engine: str = "spark-ml"  # spark-ml | spark-nlp (needs the Spark NLP jar)
    lowercase: bool = True
    strip_html: bool = True
    strip_urls: bool = True
    stopwords: str = "english"  # a StopWordsRemover language, or none
    min_token_length: int = 2


@dataclass
class Word2VecConfig:
    engine: str = "spark"  # spark | gensim
    vector_size: int = 100
    window: int = 5
    min_count: int = 2
    max_iter: int = 5  # Spark's default is 1
    partitions: int = 2  # Spark's default is 1; more is faster and less accurate
    step_size: float = 0.025
    max_sentence_length: int = 1000
    seed: int = 42
    sif_a: float = 0.001
    max_driver_tokens: int = 20_000_000  # gensim engine: the most tokens collected to the driver


@dataclass
class EmbedConfig:
    model: str = "all-MiniLM-L6-v2"  # the name item_embeddings rows carry (a new name embeds anew)
    model_path: str | None = None  # a local model folder; null: the packaged all-MiniLM-L6-v2
    fields: list[str] = field(default_factory=lambda: ["text"])  # item fields embedded, joined by ". "
    strip_html: bool = True  # remove markup (tags, script/style elements, entities) before embedding
    device: str = "auto"  # auto | cpu | cuda | cuda:<n> (auto: the task's GPU, else CUDA, else CPU)
    dtype: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | float32 | float16 | bfloat16
    batch_size: int = 64  # texts per forward pass (GPU: 1024-4096)
    arrow_batch: int = 1024  # rows per Arrow batch handed to the UDF
    max_length: int | None = None  # tokens; null: the model's max_seq_length
    threads: int | None = None  # torch CPU threads per task; null: spark.task.cpus
    partitions: int | None = None  # tasks the texts are spread over; null: Spark's default parallelism


@dataclass
class ALSConfig:
    rank: int = 64
    reg: float = 0.3  # Spark's regParam (scaled per user/item by their number of pairs)
    alpha: float = 1.0  # confidence = 1 + alpha * r
    max_iter: int = 15
    confidence: str = "linear"  # r from the pair's weight: linear | log | binary
    log_epsilon: float = 1.0  # confidence log: r = log(1 + weight / log_epsilon)
    tune: bool = True  # pick rank/reg/alpha from grid on a validation split carved from train
    grid: dict[str, list[float]] = field(
        default_factory=lambda: {"rank": [64], "reg": [0.1, 0.3, 1.0], "alpha": [1.0, 3.0]})
    val_ratio: float = 0.8  # share of each user's train pairs used for fitting while tuning
    seed: int = 42
    # Cold-start bridge inputs, concatenated: transformer and/or w2v; []: no bridge.
    bridge: list[str] = field(default_factory=lambda: ["transformer", "w2v"])
    bridge_reg: float = 3.0  # ridge penalty of the embedding -> item factor map
    # Spark ALS's user and item blocks (Spark's default 10: the published results); null:
    # one per 500,000 training pairs, at least 2 (from the data, not the cores, so results
    # do not depend on the machine; 1.9x faster fits on 2 cores, see docs/configuration.md).
    blocks: int | None = 10


@dataclass
class HybridConfig:
    candidates: int = 50  # top-N unseen items taken from each source (ALS, transformer, Word2Vec, popular)
    val_ratio: float = 0.8  # share of each user's train pairs the components are fitted on to train the ranker
    objective: str = "listwise"  # listwise (validation nDCG, coordinate ascent) | pairwise | pointwise (logistic)
    blend: list[str] = field(default_factory=lambda: ["als_z", "transformer_z", "w2v_z", "social_z", "graph_z",
                                                      "profile_z"])
    reg: float = 0.0  # the ranker's L2 regularisation
    min_gain: float = 0.002  # listwise: a weight change is kept only if validation nDCG rises by more
    seed: int = 42
    # The trending signal: each item's engagement velocity over this many hours up to the
    # newest train pair, as a candidate source and a feature; null: off.
    trend_hours: float | None = None


@dataclass
class GraphConfig:
    directed: bool = False  # false: every edge also counts in reverse (friendship, reply ties)
    weighted: bool = True  # false: every edge weighs 1
    walk_length: int = 20  # nodes per walk
    walks_per_node: int = 10
    p: float = 1.0  # node2vec return parameter (small: walks go back)
    q: float = 1.0  # node2vec in-out parameter (small: walks move out, large: stay local)
    vector_size: int = 64
    window: int = 5
    max_iter: int = 5
    engine: str = "spark"  # Word2Vec engine over the walks: spark | gensim
    partitions: int = 1  # Spark Word2Vec partitions (1: bit-identical reruns)
    max_edges: int = 50_000_000  # largest graph whose adjacency is broadcast for the walks
    seed: int = 42
    hops: int = 1  # neighbour aggregation rounds for user_profiles (source social)
    attention: float = 0.0  # beta: neighbour weights x exp(beta * cos(own profiles)); 0: edge weights only
    social_candidates: int = 500  # friends' items kept per user (social proof features; the source takes the top N)
    recent_days: float | None = None  # social candidates: only friends' pairs this recent; null: all


@dataclass
class ContentConfig:
    variant: str = "mean"  # item vector used by w2v_content: mean | sif
    center: bool = True  # subtract the catalogue's mean item vector before cosine
    half_life_days: float | None = None  # time decay of history weights; null: none
    own_posts_weight: float = 0.0  # weight of a user's own posts in their profile; 0: not used


@dataclass
class StreamConfig:
    """``socialrec stream``: new items into fresh_recommendations, new interactions into trending."""

    trigger: str = "available_now"  # available_now: process what has arrived, then stop | continuous
    interval: str = "5 seconds"  # continuous: a micro-batch every interval (when there is new data)
    run_for: float | None = None  # continuous: stop after this many seconds; null: until stopped
    checkpoint: str | None = None  # null: <storage.root>/_checkpoints/stream/<dataset>
    starting_version: str = "latest"  # first start only: latest, or a commit version of items/interactions
    max_files_per_trigger: int = 1000  # Delta source admission control: files read per micro-batch
    per_user: int = 20  # fresh_recommendations kept per user (best scores)
    expiry_hours: float = 48.0  # rows whose item arrived longer ago are removed; older posts are not pushed
    min_score: float = 0.2  # the least profile cosine (plus bonus) for a new item to enter a feed
    sources: list[str] = field(default_factory=lambda: ["history", "social"])  # user_profiles sources scored
    follow_bonus: float = 0.1  # added when the user follows the item's author
    trend_bucket_minutes: int = 5  # trending: engagement summed per item per bucket
    trend_window_minutes: int = 60  # velocity: engagement weight per hour over this window (whole buckets)
    trend_retention_hours: float = 48.0  # trending buckets older than this are removed


@dataclass
class ExplainConfig:
    """The explain stage: reasons and an explanation for every recommendation row."""

    enabled: bool = True  # run and evaluate end with the explain stage
    model_path: str | None = None  # a local Hugging Face causal-LM folder; null: template explanations only
    top: int = 3  # rows per user and model (rank <= top) that get a generated explanation
    models: list[str] = field(default_factory=list)  # models whose rows are generated for; []: every model
    similar: int = 2  # past items named as similar (0: none)
    min_similarity: float = 0.2  # the least centred cosine for a past item to count as similar
    people: int = 3  # people from the user's network named (0: none)
    text_chars: int = 200  # characters of the item's text in the prompt
    max_chars: int = 240  # guardrail: longest explanation kept
    max_sentences: int = 2  # guardrail: most sentences kept
    max_new_tokens: int = 60  # tokens generated per explanation
    batch_size: int = 16  # prompts per generate call
    device: str = "auto"  # auto (the task's GPU, else CUDA, else CPU) | cpu | cuda | cuda:<n>
    dtype: str = "auto"  # auto (bfloat16/float16 on CUDA, float32 on CPU) | float32 | float16 | bfloat16
    threads: int | None = None  # torch CPU threads per task; null: spark.task.cpus
    partitions: int | None = None  # tasks the prompts are spread over; null: Spark's default parallelism


@dataclass
class RecommendConfig:
    k: int = 10


@dataclass
class RunConfig:
    id: str | None = None


@dataclass
class Config:
    spark: SparkConfig = field(default_factory=SparkConfig)
    jars: JarsConfig = field(default_factory=JarsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    word2vec: Word2VecConfig = field(default_factory=Word2VecConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    als: ALSConfig = field(default_factory=ALSConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, secrets redacted (see ``redact``): what the
        runs table, the report and MLflow record."""
        return redact(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Keys whose values are secrets (Spark's own spark.redaction.regex, widened): credentials
# passed as spark.conf (fs.s3a.secret.key, fs.azure.account.key.*), reader options
# (a JDBC password) or tracking settings never reach runs.config, reports or MLflow.
SECRET_KEY = re.compile(r"(?i)secret|password|passwd|token|credential|access[._-]?key|account[._-]?key|"
                        r"private[._-]?key|api[._-]?key|sas")
URI_CREDENTIALS = re.compile(r"(://)[^/@\s:]+:[^/@\s]+@")
REDACTED = "*** (redacted)"
# A run id names report folders and goes into table filters: no path tricks ("..").
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RUN_ID_RULE = "must start with a letter or digit and hold only letters, digits, '-', '_' and '.' (at most 128)"


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret-looking key's value replaced and user:password@ in
    URIs removed."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if key and SECRET_KEY.search(key) and value:
            return REDACTED
        return URI_CREDENTIALS.sub(r"\1***@", value)
    return value


# The same tuple as socialrec.data.split.PROTOCOLS (a test checks), kept here so config needs no pyspark.
PROTOCOLS = ("random", "stratified", "chrono", "leave_last", "time_cut", "cold_items", "cold_users")
METRIC_NAMES = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage", "novelty", "diversity")
SEGMENT_NAMES = ("all", "cold_items", "light_users", "with_friends", "light_with_friends")
# hybrid-no-<signal>: the hybrid without one signal (its candidates and features), the ablation rows.
HYBRID_SIGNALS = ("als", "transformer", "w2v", "popular")
# hybrid-social: the hybrid plus the social signals (friends' items, node embeddings,
# neighbour-aggregated profiles); social: friends' items alone.
MODELS = ("popularity", "als", "w2v_content", "transformer_content", "hybrid",
          *(f"hybrid-no-{s}" for s in HYBRID_SIGNALS), "hybrid-social", "social")
DATASETS = ("synthetic", "movielens-100k", "movielens-latest", "lastfm-hetrec", "stackexchange", "files")
FILE_TABLES = ("users", "items", "interactions", "edges")
FILE_FORMATS = ("csv", "json", "parquet")
JAR_MODES = ("local", "packages", "none")
STREAM_TRIGGERS = ("available_now", "continuous")
INTERVAL = re.compile(r"[0-9]+(\.[0-9]+)? *(milliseconds?|seconds?|minutes?|hours?)")


# --------------------------------------------------------------------------- loading


def default_conf_files(env: str = "local") -> list[Path]:
    """The packaged base file plus one environment layer, ``conf/env/<env>.yaml``
    (local, cluster, gpu, databricks, test)."""
    files = [CONF_DIR / "base.yaml"]
    env_file = CONF_DIR / "env" / f"{env}.yaml"
    if not env_file.is_file():
        known = sorted(p.name[:-5] for p in (CONF_DIR / "env").iterdir() if p.name.endswith(".yaml"))
        raise ConfigError(f"environment {env!r}: no file {env_file}; known: {', '.join(known)}")
    files.append(env_file)
    return files


def load_config(
    files: list[str | os.PathLike] | None = None,
    overrides: list[str] | None = None,
    env: str = "local",
) -> Config:
    """Load and validate the configuration (see module docstring)."""
    paths = [Path(p) for p in files] if files else default_conf_files(env)
    raw: dict[str, Any] = {}
    for path in paths:
        raw = _deep_merge(raw, _read_yaml(path))
    parsed_overrides = [_parse_override(o) for o in overrides or []]
    # The dataset layer is chosen by the name as it stands after all overrides.
    probe = _deep_merge(raw, {})
    for key, value in parsed_overrides:
        _set_path(probe, key, value)
    name = (probe.get("dataset") or {}).get("name") or "synthetic"
    ds_file = CONF_DIR / "datasets" / f"{name}.yaml"
    if ds_file.exists() and ds_file not in paths:
        raw = _deep_merge(raw, _read_yaml(ds_file))
    for key, value in parsed_overrides:
        _set_path(raw, key, value)
    cfg = _build(Config, raw, "")
    validate(cfg)
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path}: not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. evaluation.k=10")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "<top level>"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a section (mapping), got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{key}: unknown key; allowed here: {', '.join(sorted(names))}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        kwargs[f.name] = _coerce(hints[f.name], raw[f.name], key)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is list:
        (inner,) = args
        if not isinstance(value, list):
            value = [value]  # a single value where a list is expected: k: 10 -> [10]
        return [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = args
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_coerce(kt, k, key): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - schema bug


# storage.catalog: one or two plain identifiers ("schema" or "catalog.schema"); they are
# put into SQL, so nothing else is accepted.
CATALOG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def validate(cfg: Config) -> None:
    """Check value ranges and choices; raise ConfigError naming the first bad key."""

    def bad(key: str, why: str) -> None:
        raise ConfigError(f"{key}: {why}")

    if cfg.storage.catalog is not None and not CATALOG_NAME.fullmatch(cfg.storage.catalog):
        bad("storage.catalog", f"{cfg.storage.catalog!r} is not catalog.schema or schema of plain identifiers "
                               "(letters, digits, underscores; not starting with a digit)")
    if not cfg.storage.root:
        bad("storage.root", "must be a folder or URI")
    ev = cfg.evaluation
    if ev.protocol not in PROTOCOLS:
        bad("evaluation.protocol", f"{ev.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if not 0.0 < ev.ratio < 1.0:
        bad("evaluation.ratio", f"must be between 0 and 1 (exclusive), got {ev.ratio}")
    if not 0.0 < ev.cold_share < 1.0:
        bad("evaluation.cold_share", f"must be between 0 and 1 (exclusive), got {ev.cold_share}")
    if ev.auc_depth < 1:
        bad("evaluation.auc_depth", f"must be at least 1, got {ev.auc_depth}")
    if "auc" in ev.metrics and ev.protocol != "cold_items":
        bad("evaluation.metrics", "auc needs the whole candidate list ranked, which only the cold_items protocol does")
    if not ev.k or any(k < 1 for k in ev.k):
        bad("evaluation.k", f"must be one or more positive integers, got {ev.k}")
    if ev.cold_history < 0:
        bad("evaluation.cold_history", f"must be 0 or more, got {ev.cold_history}")
    if ev.time_cut is not None:
        try:
            datetime.fromisoformat(ev.time_cut)
        except ValueError:
            bad("evaluation.time_cut", f"must be an ISO timestamp such as 2026-06-01T00:00:00, got {ev.time_cut!r}")
    if not 0.0 < ev.light_users < 1.0:
        bad("evaluation.light_users", f"must be between 0 and 1 (exclusive), got {ev.light_users}")
    if ev.repeats < 1:
        bad("evaluation.repeats", f"must be at least 1, got {ev.repeats}")
    if not ev.segments:
        bad("evaluation.segments", "must name at least one segment, e.g. [all]")
    for sname in ev.segments:
        if sname not in SEGMENT_NAMES:
            bad("evaluation.segments", f"unknown segment {sname!r}; known: {', '.join(SEGMENT_NAMES)}")
    if not ev.models:
        bad("evaluation.models", "must list at least one model")
    if len(set(ev.models)) != len(ev.models):
        bad("evaluation.models", f"lists a model twice: {ev.models}")
    if cfg.report.projection_items < 2:
        bad("report.projection_items", f"must be at least 2, got {cfg.report.projection_items}")
    for m in ev.models:
        if m not in MODELS:
            bad("evaluation.models", f"unknown model {m!r}; known: {', '.join(MODELS)}")
    for m in ev.metrics:
        if m not in METRIC_NAMES:
            bad("evaluation.metrics", f"unknown metric {m!r}; known: {', '.join(METRIC_NAMES)}")
    if cfg.recommend.k < 1:
        bad("recommend.k", f"must be at least 1, got {cfg.recommend.k}")
    if cfg.tokenize.engine not in ("spark-ml", "spark-nlp"):
        bad("tokenize.engine", f"{cfg.tokenize.engine!r} is not one of spark-ml, spark-nlp")
    if cfg.tokenize.min_token_length < 1:
        bad("tokenize.min_token_length", "must be at least 1")
    w = cfg.word2vec
    if w.engine not in ("spark", "gensim"):
        bad("word2vec.engine", f"{w.engine!r} is not one of spark, gensim")
    for name in ("vector_size", "window", "min_count", "max_iter", "partitions", "max_sentence_length"):
        if getattr(w, name) < 1:
            bad(f"word2vec.{name}", f"must be at least 1, got {getattr(w, name)}")
    if not 0 < w.step_size < 1:
        bad("word2vec.step_size", f"must be between 0 and 1, got {w.step_size}")
    if w.sif_a <= 0:
        bad("word2vec.sif_a", f"must be positive, got {w.sif_a}")
    if cfg.content.variant not in ("mean", "sif"):
        bad("content.variant", f"{cfg.content.variant!r} is not one of mean, sif")
    if cfg.content.half_life_days is not None and cfg.content.half_life_days <= 0:
        bad("content.half_life_days", f"must be positive (or null for no decay), got {cfg.content.half_life_days}")
    if cfg.content.own_posts_weight < 0:
        bad("content.own_posts_weight", f"must be 0 or more, got {cfg.content.own_posts_weight}")
    a = cfg.als
    for name in ("rank", "max_iter"):
        if getattr(a, name) < 1:
            bad(f"als.{name}", f"must be at least 1, got {getattr(a, name)}")
    for name in ("reg", "alpha", "log_epsilon"):
        if getattr(a, name) <= 0:
            bad(f"als.{name}", f"must be positive, got {getattr(a, name)}")
    if a.confidence not in ("linear", "log", "binary"):
        bad("als.confidence", f"{a.confidence!r} is not one of linear, log, binary")
    for key, values in a.grid.items():
        if key not in ("rank", "reg", "alpha", "max_iter"):
            bad(f"als.grid.{key}", "unknown; the grid takes rank, reg, alpha, max_iter")
        if not values or any(v <= 0 for v in values):
            bad(f"als.grid.{key}", f"must be one or more positive values, got {values}")
    if not 0.0 < a.val_ratio < 1.0:
        bad("als.val_ratio", f"must be between 0 and 1 (exclusive), got {a.val_ratio}")
    for b in a.bridge:
        if b not in ("transformer", "w2v"):
            bad("als.bridge", f"{b!r} is not one of transformer, w2v (an empty list: no bridge)")
    if a.bridge_reg <= 0:
        bad("als.bridge_reg", f"must be positive, got {a.bridge_reg}")
    if a.blocks is not None and a.blocks < 1:
        bad("als.blocks", f"must be at least 1 (or null: from the number of training pairs), got {a.blocks}")
    h = cfg.hybrid
    if h.candidates < 1:
        bad("hybrid.candidates", f"must be at least 1, got {h.candidates}")
    if not 0.0 < h.val_ratio < 1.0:
        bad("hybrid.val_ratio", f"must be between 0 and 1 (exclusive), got {h.val_ratio}")
    if h.objective not in ("listwise", "pairwise", "pointwise"):
        bad("hybrid.objective", f"{h.objective!r} is not one of listwise, pairwise, pointwise")
    from socialrec.models.hybrid import FEATURES

    for f in h.blend:
        if f not in FEATURES:
            bad("hybrid.blend", f"unknown feature {f!r}; known: {', '.join(FEATURES)}")
    if h.reg < 0:
        bad("hybrid.reg", f"must be 0 or more, got {h.reg}")
    if h.min_gain < 0:
        bad("hybrid.min_gain", f"must be 0 or more, got {h.min_gain}")
    if h.trend_hours is not None and h.trend_hours <= 0:
        bad("hybrid.trend_hours", f"must be positive (or null: off), got {h.trend_hours}")
    e = cfg.embed
    if not e.model or not all(ch.isalnum() or ch in "-_./" for ch in e.model):
        bad("embed.model", f"must be letters, digits, '-', '_', '.' or '/', got {e.model!r}")
    for f in e.fields:
        if f not in ("title", "text", "tags"):
            bad("embed.fields", f"unknown item field {f!r}; known: title, text, tags")
    if not e.fields:
        bad("embed.fields", "must name at least one of title, text, tags")
    def device_and_dtype(section: str, device: str, dtype: str) -> None:
        dev = device.split(":", 1)
        if dev[0] not in ("auto", "cpu", "cuda") or (len(dev) == 2 and (dev[0] != "cuda" or not dev[1].isdigit())):
            bad(f"{section}.device", f"{device!r} is not one of auto, cpu, cuda, cuda:<n>")
        if dtype not in ("auto", "float32", "float16", "bfloat16"):
            bad(f"{section}.dtype", f"{dtype!r} is not one of auto, float32, float16, bfloat16")

    device_and_dtype("embed", e.device, e.dtype)
    for name in ("batch_size", "arrow_batch", "max_length", "threads", "partitions"):
        v = getattr(e, name)
        if v is not None and v < 1:
            bad(f"embed.{name}", f"must be at least 1, got {v}")
    g = cfg.graph
    for name in ("walk_length", "walks_per_node", "vector_size", "window", "max_iter", "partitions", "max_edges",
                 "hops", "social_candidates"):
        if getattr(g, name) < 1:
            bad(f"graph.{name}", f"must be at least 1, got {getattr(g, name)}")
    if g.walk_length < 2:
        bad("graph.walk_length", f"must be at least 2 (a walk of one node has no context), got {g.walk_length}")
    for name in ("p", "q"):
        if getattr(g, name) <= 0:
            bad(f"graph.{name}", f"must be positive, got {getattr(g, name)}")
    if g.attention < 0:
        bad("graph.attention", f"must be 0 or more, got {g.attention}")
    if g.engine not in ("spark", "gensim"):
        bad("graph.engine", f"{g.engine!r} is not one of spark, gensim")
    if g.recent_days is not None and g.recent_days <= 0:
        bad("graph.recent_days", f"must be positive (or null for all), got {g.recent_days}")
    if cfg.spark.shuffle_partitions < 1:
        bad("spark.shuffle_partitions", "must be at least 1")
    if cfg.jars.mode not in JAR_MODES:
        bad("jars.mode", f"{cfg.jars.mode!r} is not one of {', '.join(JAR_MODES)}")
    if cfg.jars.use_spark_nlp not in ("auto", "true", "false"):
        bad("jars.use_spark_nlp", f"must be auto, true or false, got {cfg.jars.use_spark_nlp!r}")
    ds = cfg.dataset
    if not ds.name or not all(ch.isalnum() or ch in "-_." for ch in ds.name):
        bad("dataset.name", f"must be letters, digits, '-', '_' or '.', got {ds.name!r}")
    adapter = ds.adapter or ds.name
    if adapter not in DATASETS:
        key = "dataset.adapter" if ds.adapter else "dataset.name"
        bad(key, f"unknown dataset {adapter!r}; known: {', '.join(DATASETS)} (or set dataset.adapter)")
    if ds.rating_weight not in ("explicit", "binary"):
        bad("dataset.rating_weight", f"must be explicit or binary, got {ds.rating_weight!r}")
    for table, fs in ds.files.items():
        if table not in FILE_TABLES:
            bad(f"dataset.files.{table}", f"unknown table; known: {', '.join(FILE_TABLES)}")
        if fs.format not in FILE_FORMATS:
            bad(f"dataset.files.{table}.format", f"{fs.format!r} is not one of {', '.join(FILE_FORMATS)}")
        if not fs.path:
            bad(f"dataset.files.{table}.path", "is required")
        for canon, col in fs.columns.items():
            if not col or "`" in col or any(ord(ch) < 32 for ch in col):
                bad(f"dataset.files.{table}.columns.{canon}", f"{col!r} is not a usable column name "
                                                              "(empty, a backtick or a control character)")
    if adapter == "files":
        for table in ("users", "items", "interactions"):
            if table not in ds.files:
                bad(f"dataset.files.{table}", "is required by the files adapter")
    if not ds.max_weight > 0:
        bad("dataset.max_weight", f"must be positive, got {ds.max_weight}")
    if not cfg.dataset.event_weights:
        bad("dataset.event_weights", "must name at least one event kind")
    for ev_name, w in cfg.dataset.event_weights.items():
        if w <= 0:
            bad(f"dataset.event_weights.{ev_name}", f"must be positive, got {w}")
    syn = cfg.dataset.synthetic
    for name in ("users", "posts", "topics", "days", "partitions"):
        if getattr(syn, name) < 1:
            bad(f"dataset.synthetic.{name}", f"must be at least 1, got {getattr(syn, name)}")
    if syn.users < 2:
        bad("dataset.synthetic.users", "must be at least 2 (users follow each other)")
    if syn.topics > len(TOPICS):
        bad("dataset.synthetic.topics", f"at most {len(TOPICS)} topic vocabularies ship, got {syn.topics}")
    for name in ("homophily", "social_share", "corrupt_rate"):
        v = getattr(syn, name)
        if not 0.0 <= v <= 1.0:
            bad(f"dataset.synthetic.{name}", f"must be between 0 and 1, got {v}")
    for name in ("follows_mean", "interactions_per_user_mean", "popularity_skew"):
        if getattr(syn, name) <= 0:
            bad(f"dataset.synthetic.{name}", f"must be positive, got {getattr(syn, name)}")
    st = cfg.stream
    if st.trigger not in STREAM_TRIGGERS:
        bad("stream.trigger", f"{st.trigger!r} is not one of {', '.join(STREAM_TRIGGERS)}")
    if not INTERVAL.fullmatch(st.interval):
        bad("stream.interval", f"{st.interval!r} is not an interval such as '5 seconds' or '1 minute'")
    if st.run_for is not None and st.run_for <= 0:
        bad("stream.run_for", f"must be positive (or null: until stopped), got {st.run_for}")
    if st.starting_version != "latest" and not str(st.starting_version).isdigit():
        bad("stream.starting_version", f"must be latest or a commit version (0, 1, ...), got {st.starting_version!r}")
    for name in ("max_files_per_trigger", "per_user", "trend_bucket_minutes", "trend_window_minutes"):
        if getattr(st, name) < 1:
            bad(f"stream.{name}", f"must be at least 1, got {getattr(st, name)}")
    if st.trend_window_minutes % st.trend_bucket_minutes:
        bad("stream.trend_window_minutes", f"must be a multiple of stream.trend_bucket_minutes "
                                           f"({st.trend_bucket_minutes}), got {st.trend_window_minutes}")
    for name in ("expiry_hours", "trend_retention_hours"):
        if getattr(st, name) <= 0:
            bad(f"stream.{name}", f"must be positive, got {getattr(st, name)}")
    if not -1.0 <= st.min_score <= 2.0:
        bad("stream.min_score", f"must be between -1 and 2 (a cosine plus the follow bonus), got {st.min_score}")
    if st.follow_bonus < 0:
        bad("stream.follow_bonus", f"must be 0 or more, got {st.follow_bonus}")
    if not st.sources or any(x not in ("history", "social") for x in st.sources):
        bad("stream.sources", f"must list history and/or social, got {st.sources}")
    x = cfg.explain
    device_and_dtype("explain", x.device, x.dtype)
    for name in ("top", "max_sentences", "max_new_tokens", "batch_size", "text_chars", "threads", "partitions"):
        v = getattr(x, name)
        if v is not None and v < 1:
            bad(f"explain.{name}", f"must be at least 1, got {v}")
    for name, hi in (("similar", 10), ("people", 10)):
        if not 0 <= getattr(x, name) <= hi:
            bad(f"explain.{name}", f"must be between 0 and {hi}, got {getattr(x, name)}")
    if not -1.0 <= x.min_similarity <= 1.0:
        bad("explain.min_similarity", f"must be a cosine between -1 and 1, got {x.min_similarity}")
    if x.max_chars < 40:
        bad("explain.max_chars", f"must be at least 40 (one sentence), got {x.max_chars}")
    for m in x.models:
        if m not in cfg.evaluation.models:
            bad("explain.models", f"{m!r} is not one of evaluation.models ({', '.join(cfg.evaluation.models)})")
    if cfg.run.id is not None and not RUN_ID.fullmatch(cfg.run.id):
        bad("run.id", f"{RUN_ID_RULE}, got {cfg.run.id!r}")
