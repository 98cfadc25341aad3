"""Typed, layered configuration: YAML files, later ones overriding earlier, then --set.

``load_config(["conf/base.yaml", "conf/env/local.yaml"], ["evaluation.k=[5,10]"])`` merges
the files in order (mappings merge key by key; any other value replaces), applies the
``--set`` overrides (values parsed as YAML, so ``5``, ``0.5``, ``[5,10]`` and ``true`` get
their types), then builds the typed ``Config`` below. Every problem raises
``ConfigError`` naming the key and what is wrong with it.

When a dataset is named and ``conf/datasets/<name>.yaml`` exists next to the base file,
it is layered after the last base or environment file given (``base.yaml``,
``env/<name>.yaml``) and before the files after it (the user's own) and ``--set``, so
``--set dataset.name=movielens-100k`` picks up that dataset's defaults and a user's
file naming a preset refines it.
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

from socialrec.core.choices import (
    ALS_GRID_KEYS,
    BRIDGE_KINDS,
    CONFIDENCES,
    CONTENT_VARIANTS,
    DATASETS,
    DEVICES,
    DTYPES,
    EMBED_FIELDS,
    FILE_FORMATS,
    FILE_TABLES,
    HYBRID_FEATURES,
    HYBRID_OBJECTIVES,
    JAR_MODES,
    METRIC_NAMES,
    MODELS,
    PROTOCOLS,
    RATING_WEIGHTS,
    SEGMENT_NAMES,
    STREAM_SOURCES,
    STREAM_TRIGGERS,
    SYNTHETIC_TOPICS,
    TIMESTAMP_FORMATS,
    TOKENIZE_ENGINES,
    W2V_ENGINES,
    XGB_DEVICES,
)


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


# Each section checks its own values (its ``check(key)``, next to its fields) with these;
# the first bad key raises. The choice lists come from socialrec.core.choices.


def _bad(key: str, why: str) -> None:
    raise ConfigError(f"{key}: {why}")


def _one_of(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        _bad(key, f"{value!r} is not one of {', '.join(choices)}")


def _at_least(section: str, obj: Any, names: tuple, lo: int = 1) -> None:
    """Each of ``names`` (when not null) is ``lo`` or more."""
    for name in names:
        v = getattr(obj, name)
        if v is not None and v < lo:
            _bad(f"{section}.{name}", f"must be {'0 or more' if lo == 0 else f'at least {lo}'}, got {v}")


def _positive(section: str, obj: Any, names: tuple) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            _bad(f"{section}.{name}", f"must be positive, got {getattr(obj, name)}")


def _share(key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        _bad(key, f"must be between 0 and 1 (exclusive), got {value}")


def _device_and_dtype(section: str, device: str, dtype: str) -> None:
    dev = device.split(":", 1)
    if dev[0] not in DEVICES or (len(dev) == 2 and (dev[0] != "cuda" or not dev[1].isdigit())):
        _bad(f"{section}.device", f"{device!r} is not one of {', '.join(DEVICES)}, cuda:<n>")
    if dtype not in DTYPES:
        _bad(f"{section}.dtype", f"{dtype!r} is not one of {', '.join(DTYPES)}")


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

    def check(self, key: str = "spark") -> None:
        if self.shuffle_partitions < 1:
            _bad(f"{key}.shuffle_partitions", "must be at least 1")


@dataclass
class JarsConfig:
    # local: jars resolved once by `socialrec setup` into cache_dir and passed as
    # spark.jars (no repository is contacted at run time); packages: coordinates passed
    # as spark.jars.packages (clusters that reach a repository); none: the platform
    # provides them (Databricks, or jars baked into the cluster image).
    mode: str = "local"
    cache_dir: str | None = None
    # The coordinates are the Spark line's (socialrec.core.jars.LINES), not configured.
    # auto: load Spark NLP when its jar is in the cache; true: require it; false: never.
    use_spark_nlp: str = "auto"

    def check(self, key: str = "jars") -> None:
        _one_of(f"{key}.mode", self.mode, JAR_MODES)
        if self.use_spark_nlp not in ("auto", "true", "false"):
            _bad(f"{key}.use_spark_nlp", f"must be auto, true or false, got {self.use_spark_nlp!r}")


@dataclass
class StorageConfig:
    # Delta tables as paths <root>/<table> (a folder, hdfs://, s3a://, abfss://, dbfs:/,
    # /Volumes/...); reports and checkpoints go under it as well.
    root: str = "./warehouse"
    # "catalog.schema" (or "schema") of a metastore: tables are then managed or
    # external metastore tables <catalog>.<schema>.<table>, the schema created if absent.
    catalog: str | None = None

    def check(self, key: str = "storage") -> None:
        if self.catalog is not None and not CATALOG_NAME.fullmatch(self.catalog):
            _bad(f"{key}.catalog", f"{self.catalog!r} is not catalog.schema or schema of plain identifiers "
                                   "(letters, digits, underscores; not starting with a digit)")
        if not self.root:
            _bad(f"{key}.root", "must be a folder or URI")


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

    def check(self, key: str = "dataset.synthetic") -> None:
        _at_least(key, self, ("users", "posts", "topics", "days", "partitions"))
        if self.users < 2:
            _bad(f"{key}.users", "must be at least 2 (users follow each other)")
        if self.topics > len(SYNTHETIC_TOPICS):
            _bad(f"{key}.topics", f"at most {len(SYNTHETIC_TOPICS)} topic vocabularies ship, got {self.topics}")
        for name in ("homophily", "social_share", "corrupt_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                _bad(f"{key}.{name}", f"must be between 0 and 1, got {v}")
        _positive(key, self, ("follows_mean", "interactions_per_user_mean", "popularity_skew"))


@dataclass
class FileSourceConfig:
    """One table of the generic ``files`` adapter: where, how, and which column is which
    (socialrec.data.sources.files)."""

    path: str | None = None
    format: str = "csv"  # csv | text (lines cut at a regex, options.sep) | json | parquet
    options: dict[str, str] = field(default_factory=dict)  # reader options, e.g. {sep: "::", header: "false"}
    # canonical name -> column in the file: its name, a dotted path into nested JSON, or
    # its position from 0 in a file without a header line
    columns: dict[str, str] = field(default_factory=dict)
    # canonical name -> one value for every row, where the file has no such column
    # (event: rating, kind: trust, ts: "2011-05-01" for undated data)
    constants: dict[str, str] = field(default_factory=dict)
    timestamp: str = "auto"  # auto | iso | unix-seconds | unix-millis | a Spark datetime pattern

    def check(self, key: str) -> None:
        _one_of(f"{key}.format", self.format, FILE_FORMATS)
        if not self.path:
            _bad(f"{key}.path", "is required")
        for canon, col in self.columns.items():
            if not col or "`" in col or any(ord(ch) < 32 for ch in col):
                _bad(f"{key}.columns.{canon}", f"{col!r} is not a usable column name "
                                               "(empty, a backtick or a control character)")
        for canon, value in self.constants.items():
            if canon in self.columns:
                _bad(f"{key}.constants.{canon}", f"{canon} is also mapped to a column ({self.columns[canon]}); "
                                                 "give one")
            if not str(value).strip():
                _bad(f"{key}.constants.{canon}", "must not be empty")
        if self.timestamp not in TIMESTAMP_FORMATS and "yy" not in self.timestamp:  # a pattern names the year
            _bad(f"{key}.timestamp", f"must be one of {', '.join(TIMESTAMP_FORMATS)} or a Spark datetime pattern "
                                     f"(e.g. dd/MM/yyyy HH:mm), got {self.timestamp!r}")


@dataclass
class DatasetConfig:
    name: str = "synthetic"
    # Which adapter reads it (default: the name); the name labels the rows in the tables,
    # so two Stack Exchange sites can share a warehouse as stackexchange-beer / -ai.
    adapter: str | None = None
    path: str | None = None
    seed: int = 7
    rating_weight: str = "explicit"  # explicit: the rating value; binary: 1.0 for every rating
    # Ratings (event "rating") below this value are kept in ``interactions`` as event
    # ``low_rating`` and are no positive: not in train or test pairs. null: every rating is one.
    positive_at: float | None = None
    max_weight: float = 1_000_000.0  # larger interaction / edge weights are rejected as corrupt
    files: dict[str, FileSourceConfig] = field(default_factory=dict)
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "like": 2.0, "comment": 3.0, "share": 4.0}
    )
    edge_kinds: list[str] = field(default_factory=lambda: ["follow", "friend", "trust", "replied_to"])
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def check(self, key: str = "dataset") -> None:
        if not self.name or not all(ch.isalnum() or ch in "-_." for ch in self.name):
            _bad(f"{key}.name", f"must be letters, digits, '-', '_' or '.', got {self.name!r}")
        adapter = self.adapter or self.name
        if adapter not in DATASETS:
            _bad(f"{key}.adapter" if self.adapter else f"{key}.name",
                 f"unknown dataset {adapter!r}; known: {', '.join(DATASETS)} (or set dataset.adapter)")
        if self.rating_weight not in RATING_WEIGHTS:
            _bad(f"{key}.rating_weight", f"must be explicit or binary, got {self.rating_weight!r}")
        for table, fs in self.files.items():
            if table not in FILE_TABLES:
                _bad(f"{key}.files.{table}", f"unknown table; known: {', '.join(FILE_TABLES)}")
            fs.check(f"{key}.files.{table}")
        if adapter == "files" and "interactions" not in self.files:
            _bad(f"{key}.files.interactions", "is required by the files adapter (users, items and edges are "
                                              "optional: users and items are then the ids the interactions name)")
        if self.positive_at is not None and not self.positive_at > 0:
            _bad(f"{key}.positive_at", f"must be a positive rating, got {self.positive_at}")
        if not self.max_weight > 0:
            _bad(f"{key}.max_weight", f"must be positive, got {self.max_weight}")
        if not self.event_weights:
            _bad(f"{key}.event_weights", "must name at least one event kind")
        for ev_name, w in self.event_weights.items():
            if w <= 0:
                _bad(f"{key}.event_weights.{ev_name}", f"must be positive, got {w}")
        self.synthetic.check(f"{key}.synthetic")


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
    models: list[str] = field(default_factory=lambda: ["popularity", "als", "w2v_content", "transformer_content",
                                                       "hybrid", "hybrid-social"])
    metrics: list[str] = field(
        default_factory=lambda: ["precision", "recall", "ndcg", "map", "mrr", "hit_rate",
                                 "coverage", "novelty", "diversity"]
    )
    segments: list[str] = field(default_factory=lambda: ["all", "cold_items", "light_users", "with_friends",
                                                         "light_with_friends"])
    light_users: float = 0.25  # light_users segment: this quantile of test users' train-pair counts and below
    repeats: int = 1  # seeds evaluated: seed, seed + 1, ...; summary rows carry mean and std

    def check(self, key: str = "evaluation") -> None:
        _one_of(f"{key}.protocol", self.protocol, PROTOCOLS)
        for name in ("ratio", "cold_share"):
            _share(f"{key}.{name}", getattr(self, name))
        _at_least(key, self, ("auc_depth",))
        if "auc" in self.metrics and self.protocol != "cold_items":
            _bad(f"{key}.metrics", "auc needs the whole candidate list ranked, which only the cold_items protocol does")
        if not self.k or any(k < 1 for k in self.k):
            _bad(f"{key}.k", f"must be one or more positive integers, got {self.k}")
        if self.cold_history < 0:
            _bad(f"{key}.cold_history", f"must be 0 or more, got {self.cold_history}")
        if self.time_cut is not None:
            try:
                datetime.fromisoformat(self.time_cut)
            except ValueError:
                _bad(f"{key}.time_cut", f"must be an ISO timestamp such as 2026-06-01T00:00:00, got {self.time_cut!r}")
        _share(f"{key}.light_users", self.light_users)
        _at_least(key, self, ("repeats",))
        if not self.segments:
            _bad(f"{key}.segments", "must name at least one segment, e.g. [all]")
        for sname in self.segments:
            if sname not in SEGMENT_NAMES:
                _bad(f"{key}.segments", f"unknown segment {sname!r}; known: {', '.join(SEGMENT_NAMES)}")
        if not self.models:
            _bad(f"{key}.models", "must list at least one model")
        if len(set(self.models)) != len(self.models):
            _bad(f"{key}.models", f"lists a model twice: {self.models}")
        for m in self.models:
            if m not in MODELS:
                _bad(f"{key}.models", f"unknown model {m!r}; known: {', '.join(MODELS)}")
        for m in self.metrics:
            if m not in METRIC_NAMES:
                _bad(f"{key}.metrics", f"unknown metric {m!r}; known: {', '.join(METRIC_NAMES)}")


@dataclass
class ReportConfig:
    enabled: bool = True
    dir: str | None = None  # null: <storage.root>/reports/<run_id> for a local root, else ./reports/<run_id>
    projection_items: int = 2000  # items in the 2-D embedding projection (a seeded sample)

    def check(self, key: str = "report") -> None:
        _at_least(key, self, ("projection_items",), lo=2)


@dataclass
class TrackingConfig:
    mlflow: str | None = None  # an MLflow tracking URI (file:./mlruns, http://host:5000, databricks); null: off
    experiment: str = "socialrec"

    def check(self, key: str = "tracking") -> None:
        """Any tracking URI and experiment name are accepted; MLflow reports what it cannot reach."""


@dataclass
class TokenizeConfig:
    engine: str = "spark-ml"  # spark-ml | spark-nlp (needs the Spark NLP jar)
    lowercase: bool = True
    strip_html: bool = True
    strip_urls: bool = True
    stopwords: str = "english"  # a StopWordsRemover language, or none
    min_token_length: int = 2

    def check(self, key: str = "tokenize") -> None:
        _one_of(f"{key}.engine", self.engine, TOKENIZE_ENGINES)
        if self.min_token_length < 1:
            _bad(f"{key}.min_token_length", "must be at least 1")


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

    def check(self, key: str = "word2vec") -> None:
        _one_of(f"{key}.engine", self.engine, W2V_ENGINES)
        _at_least(key, self, ("vector_size", "window", "min_count", "max_iter", "partitions", "max_sentence_length"))
        if not 0 < self.step_size < 1:
            _bad(f"{key}.step_size", f"must be between 0 and 1, got {self.step_size}")
        _positive(key, self, ("sif_a",))


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

    def check(self, key: str = "embed") -> None:
        if not self.model or not all(ch.isalnum() or ch in "-_./" for ch in self.model):
            _bad(f"{key}.model", f"must be letters, digits, '-', '_', '.' or '/', got {self.model!r}")
        for f in self.fields:
            if f not in EMBED_FIELDS:
                _bad(f"{key}.fields", f"unknown item field {f!r}; known: {', '.join(EMBED_FIELDS)}")
        if not self.fields:
            _bad(f"{key}.fields", f"must name at least one of {', '.join(EMBED_FIELDS)}")
        _device_and_dtype(key, self.device, self.dtype)
        _at_least(key, self, ("batch_size", "arrow_batch", "max_length", "threads", "partitions"))


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

    def check(self, key: str = "als") -> None:
        _at_least(key, self, ("rank", "max_iter"))
        _positive(key, self, ("reg", "alpha", "log_epsilon"))
        _one_of(f"{key}.confidence", self.confidence, CONFIDENCES)
        for name, values in self.grid.items():
            if name not in ALS_GRID_KEYS:
                _bad(f"{key}.grid.{name}", f"unknown; the grid takes {', '.join(ALS_GRID_KEYS)}")
            if not values or any(v <= 0 for v in values):
                _bad(f"{key}.grid.{name}", f"must be one or more positive values, got {values}")
        _share(f"{key}.val_ratio", self.val_ratio)
        for b in self.bridge:
            if b not in BRIDGE_KINDS:
                _bad(f"{key}.bridge", f"{b!r} is not one of {', '.join(BRIDGE_KINDS)} (an empty list: no bridge)")
        _positive(key, self, ("bridge_reg",))
        if self.blocks is not None and self.blocks < 1:
            _bad(f"{key}.blocks", f"must be at least 1 (or null: from the number of training pairs), got {self.blocks}")


@dataclass
class HybridConfig:
    candidates: int = 50  # top-N unseen items taken from each source (ALS, transformer, Word2Vec, popular)
    val_ratio: float = 0.8  # share of each user's train pairs the components are fitted on to train the ranker
    objective: str = "listwise"  # listwise (validation nDCG, coordinate ascent) | pairwise | pointwise (logistic)
    # | xgboost (xgboost.spark.SparkXGBRanker, rank:ndcg grouped by user, on every candidate feature)
    blend: list[str] = field(default_factory=lambda: ["als_z", "transformer_z", "w2v_z", "social_z", "graph_z",
                                                      "profile_z"])
    reg: float = 0.0  # the ranker's L2 regularisation
    min_gain: float = 0.002  # listwise: a weight change is kept only if validation nDCG rises by more
    seed: int = 42
    # The trending signal: each item's engagement velocity over this many hours up to the
    # newest train pair, as a candidate source and a feature; null: off.
    trend_hours: float | None = None
    # cold_items: the ranker's validation items moved out of train in this many disjoint
    # folds (each cold_share / cold_folds of train's items, its own ALS fit and bridge), so
    # the factor model of each fold sees nearly as many items as the test's does.
    cold_folds: int = 4
    # cold_items, listwise: serve the blend only if, searched without each fold, it beats
    # ALS alone on that fold (else ALS alone); off: on MovieLens-100K it cost more than it saved
    cross_check: bool = False
    # objective xgboost: boosting rounds, tree depth, learning rate, device (cpu | cuda) and
    # Spark tasks training it (null: the session's default parallelism).
    xgb_trees: int = 100
    xgb_depth: int = 3
    xgb_eta: float = 0.05
    xgb_device: str = "cpu"
    xgb_workers: int | None = None

    def check(self, key: str = "hybrid") -> None:
        _at_least(key, self, ("candidates", "cold_folds", "xgb_trees", "xgb_depth"))
        if self.xgb_workers is not None:
            _at_least(key, self, ("xgb_workers",))
        _positive(key, self, ("xgb_eta",))
        _one_of(f"{key}.xgb_device", self.xgb_device, XGB_DEVICES)
        _share(f"{key}.val_ratio", self.val_ratio)
        _one_of(f"{key}.objective", self.objective, HYBRID_OBJECTIVES)
        for f in self.blend:
            if f not in HYBRID_FEATURES:
                _bad(f"{key}.blend", f"unknown feature {f!r}; known: {', '.join(HYBRID_FEATURES)}")
        _at_least(key, self, ("reg", "min_gain"), lo=0)
        if self.trend_hours is not None and self.trend_hours <= 0:
            _bad(f"{key}.trend_hours", f"must be positive (or null: off), got {self.trend_hours}")


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

    def check(self, key: str = "graph") -> None:
        _at_least(key, self, ("walk_length", "walks_per_node", "vector_size", "window", "max_iter", "partitions",
                              "max_edges", "hops", "social_candidates"))
        if self.walk_length < 2:
            _bad(f"{key}.walk_length",
                 f"must be at least 2 (a walk of one node has no context), got {self.walk_length}")
        _positive(key, self, ("p", "q"))
        _at_least(key, self, ("attention",), lo=0)
        _one_of(f"{key}.engine", self.engine, W2V_ENGINES)
        if self.recent_days is not None and self.recent_days <= 0:
            _bad(f"{key}.recent_days", f"must be positive (or null for all), got {self.recent_days}")


@dataclass
class ContentConfig:
    variant: str = "mean"  # item vector used by w2v_content: mean | sif
    center: bool = True  # subtract the catalogue's mean item vector before cosine
    half_life_days: float | None = None  # time decay of history weights; null: none
    own_posts_weight: float = 0.0  # weight of a user's own posts in their profile; 0: not used

    def check(self, key: str = "content") -> None:
        _one_of(f"{key}.variant", self.variant, CONTENT_VARIANTS)
        if self.half_life_days is not None and self.half_life_days <= 0:
            _bad(f"{key}.half_life_days", f"must be positive (or null for no decay), got {self.half_life_days}")
        _at_least(key, self, ("own_posts_weight",), lo=0)


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

    def check(self, key: str = "stream") -> None:
        _one_of(f"{key}.trigger", self.trigger, STREAM_TRIGGERS)
        if not INTERVAL.fullmatch(self.interval):
            _bad(f"{key}.interval", f"{self.interval!r} is not an interval such as '5 seconds' or '1 minute'")
        if self.run_for is not None and self.run_for <= 0:
            _bad(f"{key}.run_for", f"must be positive (or null: until stopped), got {self.run_for}")
        if self.starting_version != "latest" and not str(self.starting_version).isdigit():
            _bad(f"{key}.starting_version",
                 f"must be latest or a commit version (0, 1, ...), got {self.starting_version!r}")
        _at_least(key, self, ("max_files_per_trigger", "per_user", "trend_bucket_minutes", "trend_window_minutes"))
        if self.trend_window_minutes % self.trend_bucket_minutes:
            _bad(f"{key}.trend_window_minutes", f"must be a multiple of stream.trend_bucket_minutes "
                                                f"({self.trend_bucket_minutes}), got {self.trend_window_minutes}")
        _positive(key, self, ("expiry_hours", "trend_retention_hours"))
        if not -1.0 <= self.min_score <= 2.0:
            _bad(f"{key}.min_score", f"must be between -1 and 2 (a cosine plus the follow bonus), got {self.min_score}")
        _at_least(key, self, ("follow_bonus",), lo=0)
        if not self.sources or any(x not in STREAM_SOURCES for x in self.sources):
            _bad(f"{key}.sources", f"must list history and/or social, got {self.sources}")


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

    def check(self, key: str = "explain") -> None:
        _device_and_dtype(key, self.device, self.dtype)
        _at_least(key, self, ("top", "max_sentences", "max_new_tokens", "batch_size", "text_chars", "threads",
                              "partitions"))
        for name, hi in (("similar", 10), ("people", 10)):
            if not 0 <= getattr(self, name) <= hi:
                _bad(f"{key}.{name}", f"must be between 0 and {hi}, got {getattr(self, name)}")
        if not -1.0 <= self.min_similarity <= 1.0:
            _bad(f"{key}.min_similarity", f"must be a cosine between -1 and 1, got {self.min_similarity}")
        if self.max_chars < 40:
            _bad(f"{key}.max_chars", f"must be at least 40 (one sentence), got {self.max_chars}")


@dataclass
class RecommendConfig:
    k: int = 10

    def check(self, key: str = "recommend") -> None:
        _at_least(key, self, ("k",))


@dataclass
class RunConfig:
    id: str | None = None

    def check(self, key: str = "run") -> None:
        if self.id is not None and not RUN_ID.fullmatch(self.id):
            _bad(f"{key}.id", f"{RUN_ID_RULE}, got {self.id!r}")


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
    layers = [_read_yaml(path) for path in paths]
    raw: dict[str, Any] = {}
    for layer in layers:
        raw = _deep_merge(raw, layer)
    parsed_overrides = [_parse_override(o) for o in overrides or []]
    # The dataset layer is chosen by the name as it stands after all overrides, and goes
    # under the user's own files: base and env < dataset preset < your files < --set, so
    # a conf of yours that names a preset refines it.
    probe = _deep_merge(raw, {})
    for key, value in parsed_overrides:
        _set_path(probe, key, value)
    name = (probe.get("dataset") or {}).get("name") or "synthetic"
    ds_file = CONF_DIR / "datasets" / f"{name}.yaml"
    if ds_file.exists() and ds_file not in paths:
        # After the last base or environment layer (base.yaml, env/<name>.yaml, whether
        # the repository's, the package's or a copy), before the files that follow it.
        layer_of = [os.path.basename(str(path).rstrip("/")) == "base.yaml"
                    or os.path.basename(os.path.dirname(str(path).rstrip("/"))) == "env" for path in paths]
        at = max((i + 1 for i, is_layer in enumerate(layer_of) if is_layer), default=0)
        raw = {}
        for layer in [*layers[:at], _read_yaml(ds_file), *layers[at:]]:
            raw = _deep_merge(raw, layer)
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
    """Check value ranges and choices, section by section (each section's ``check``),
    then what spans sections; raise ConfigError naming the first bad key."""
    for f in dataclasses.fields(cfg):
        getattr(cfg, f.name).check(f.name)
    for m in cfg.explain.models:
        if m not in cfg.evaluation.models:
            _bad("explain.models", f"{m!r} is not one of evaluation.models ({', '.join(cfg.evaluation.models)})")
