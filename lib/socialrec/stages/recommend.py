"""The recommend stage: every listed model's top-``depth`` lists from the split's train
part, each written as the model's slice of ``recommendations``; and the model registry."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import HYBRID_SIGNALS
from socialrec.core.config import ALSConfig, ContentConfig, GraphConfig, HybridConfig
from socialrec.core.schemas import ITEMS, RECOMMENDATIONS
from socialrec.core.storage import Storage
from socialrec.data.split import known_by, newest_pair
from socialrec.stages.als import ALSFits, build_als
from socialrec.stages.context import ModelSpec, RecommendContext
from socialrec.stages.hybrid import build_hybrid
from socialrec.stages.inputs import train_test
from socialrec.stages.single_signal import build_content, build_popularity, build_social

log = logging.getLogger(__name__)


def _hybrid_needs(drop: frozenset) -> frozenset:
    return frozenset({"transformer", "w2v"} | ({"graph"} if "social" not in drop else set())) - drop


def _hybrid(name: str, drop: frozenset, objective: str | None = None) -> ModelSpec:
    return ModelSpec(name, build_hybrid, needs=_hybrid_needs(drop), options={"drop": drop, "objective": objective})


# The models `evaluation.models` may name (config.MODELS lists the same names; a test
# holds them equal). Adding a model is a builder (a function of the context and its
# spec returning `Built`, in a module of its own) and its ModelSpec here.
MODEL_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("popularity", build_popularity),
    ModelSpec("w2v_content", build_content, needs=frozenset({"w2v"}), options={"vectors": "w2v"}),
    ModelSpec("transformer_content", build_content, needs=frozenset({"transformer"}),
              options={"vectors": "transformer"}),
    ModelSpec("als", build_als, needs=frozenset({"bridge"})),
    ModelSpec("social", build_social),
    _hybrid("hybrid", frozenset({"social"})),
    *(_hybrid(f"hybrid-no-{signal}", frozenset({"social", signal})) for signal in HYBRID_SIGNALS),
    _hybrid("hybrid-social", frozenset()),
    _hybrid("hybrid-xgboost", frozenset({"social"}), "xgboost"),
    _hybrid("hybrid-social-xgboost", frozenset(), "xgboost"),
)}


def models_need(models: list[str], kind: str, bridge: list[str] = ()) -> bool:
    """Whether any of ``models`` needs ``kind`` (``transformer``/``w2v`` item vectors or
    the ``graph`` stage's outputs), directly or through the ALS bridge's kinds."""
    return any(kind in spec.needs or ("bridge" in spec.needs and kind in bridge)
               for spec in (MODEL_REGISTRY[m] for m in models))


def recommend_stage(
    spark: SparkSession,
    storage: Storage,
    *,
    run_id: str,
    dataset: str,
    protocol: str,
    seed: int,
    models: list[str],
    k: int,
    w2v_engine: str = "spark",
    content: ContentConfig | None = None,
    embed_model: str = "all-MiniLM-L6-v2",
    als: ALSConfig | None = None,
    hybrid: HybridConfig | None = None,
    graph: GraphConfig | None = None,
    chosen_params: dict | None = None,
    cold_share: float = 0.2,
    cold_history: int = 2,
    auc_depth: int = 1000,
    depth: int | None = None,
) -> dict[str, int]:
    """Top-``depth`` per user for each model (default k), trained on the split's train
    part; ``k`` is the cut-off that tuning and the hybrid's ranker optimise.

    Under ``cold_items`` every model ranks only the cold items (those of the test part),
    ``min(auc_depth, cold items)`` of them per user (at least ``depth``), so that AUC sees
    the whole list."""
    train, test = train_test(spark, storage, dataset, protocol, seed)
    users = train.select(C.USER).unionByName(test.select(C.USER)).distinct()
    content = content or ContentConfig()
    als_cfg = als or ALSConfig()
    newest = newest_pair(train)
    # A user's own posts and edges inform their profile only if they existed by the end
    # of train (a post or reply tie dated later is future information).
    own = (known_by(storage.read(spark, ITEMS, dataset), C.CREATED_AT, newest).where(F.col(C.AUTHOR).isNotNull())
           .select(F.col(C.AUTHOR).alias(C.USER), C.ITEM))
    has_own = own.limit(1).count() > 0
    depth = max(k, depth or k)  # list length written; k stays the cut-off that tuning and the ranker optimise
    by_content = dict(k=depth, half_life_days=content.half_life_days,
                      own_items=own if content.own_posts_weight > 0 else None, own_weight=content.own_posts_weight,
                      center=content.center)
    cold_items = None
    if protocol == "cold_items":
        cold_items = sorted(r[0] for r in test.select(C.ITEM).distinct().collect())  # bounded by the catalogue
        depth = max(depth, min(auc_depth, len(cold_items)))
        by_content.update(k=depth, candidates=cold_items)
        log.info("recommend: cold_items: ranking %d cold items, %d per user", len(cold_items), depth)
    counts = {}
    ctx = RecommendContext(
        spark=spark, storage=storage, run_id=run_id, dataset=dataset, protocol=protocol, seed=seed, k=k, depth=depth,
        train=train, test=test, users=users, newest=newest, own=own if has_own else None, cold_items=cold_items,
        by_content=by_content, content=content, als=als_cfg, hybrid=hybrid or HybridConfig(), graph=graph,
        embed_model=embed_model, w2v_engine=w2v_engine, cold_share=cold_share, cold_history=cold_history,
        fits=ALSFits())  # each part fitted once per parameters, shared by als and the hybrids
    try:
        for model in models:
            spec = MODEL_REGISTRY.get(model)
            if spec is None:  # validated by config; a new model is one entry in MODEL_REGISTRY
                raise ValueError(f"evaluation.models: unknown model {model!r}")
            recs, params, release = spec.build(ctx, spec)
            if chosen_params is not None:
                chosen_params.update(params)
            recs = (
                recs.withColumn(C.RUN_ID, F.lit(run_id))
                .withColumn(C.DATASET, F.lit(dataset))
                .withColumn(C.SPLIT, F.lit(protocol))
                .withColumn(C.MODEL, F.lit(model))
            )
            # The same rows again (a rerun) keep the explain stage's explanation and reasons.
            storage.merge(recs, RECOMMENDATIONS, scope={C.RUN_ID: run_id, C.MODEL: model},
                          owned_elsewhere=("explanation", "explained_by", "reasons"))
            for df in release:
                df.unpersist()
            counts[model] = (
                storage.read(spark, RECOMMENDATIONS)
                .where((F.col(C.RUN_ID) == run_id) & (F.col(C.MODEL) == model))
                .count()
            )
            log.info("recommend: %s wrote %d recommendations", model, counts[model])
    finally:
        ctx.fits.release()
    if chosen_params is not None and ctx.fits.fitted:
        chosen_params["als.fits"] = str(ctx.fits.fitted)  # tuning's grid, the final fit, the ranker's (if not shared)
    return counts
