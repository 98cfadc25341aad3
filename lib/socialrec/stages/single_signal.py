"""The single-signal models' builders: popularity, the content models and social."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import GraphConfig
from socialrec.core.schemas import ITEMS, RECOMMENDATIONS
from socialrec.features.tokenize import has_text
from socialrec.models.content import recommend_by_content
from socialrec.models.popularity import recommend_popular
from socialrec.stages.inputs import social_graph, stored_vectors

if TYPE_CHECKING:
    from socialrec.stages.context import Built, ModelSpec, RecommendContext

log = logging.getLogger(__name__)


def build_popularity(ctx: RecommendContext, spec: ModelSpec) -> Built:
    cand_df = None if ctx.cold_items is None else ctx.test.select(C.ITEM)
    recs = recommend_popular(ctx.train, ctx.users, ctx.depth, candidates=cand_df, tie_seed=ctx.seed)
    return recs.withColumn("components", F.create_map(F.lit("popularity"), F.col(C.SCORE))), {}, []


def build_content(ctx: RecommendContext, spec: ModelSpec) -> Built:
    """``options["vectors"]``: the item vectors compared, transformer or w2v."""
    kind = spec.options["vectors"]
    vecs = stored_vectors(ctx.spark, ctx.storage, dataset=ctx.dataset, kind=kind, embed_model=ctx.embed_model,
                          w2v_engine=ctx.w2v_engine, w2v_variant=ctx.content.variant)
    if vecs.where(F.col("vector").isNotNull()).limit(1).count() == 0:
        if ctx.storage.read(ctx.spark, ITEMS, ctx.dataset).where(has_text()).limit(1).count() == 0:
            # A catalogue without text (a ratings export): nothing to compare, no list; the
            # evaluate stage then writes no metrics for the model and says so.
            log.warning("%s: no item of dataset %s has text; no recommendations", spec.name, ctx.dataset)
            empty = ctx.spark.createDataFrame([], RECOMMENDATIONS.schema)
            return empty, {f"{spec.name}.skipped": "no item has text"}, []
        if kind == "w2v":
            raise RuntimeError(f"w2v_content: no {ctx.content.variant} item vectors from the {ctx.w2v_engine} engine "
                               f"for dataset {ctx.dataset!r}; run `socialrec word2vec` first")
        raise RuntimeError(f"transformer_content: no {ctx.embed_model} embeddings for dataset {ctx.dataset!r}; "
                           "run `socialrec embed` first")
    recs = recommend_by_content(ctx.train, vecs, **ctx.by_content)
    signal = "w2v_cosine" if kind == "w2v" else "transformer_cosine"
    return recs.withColumn("components", F.create_map(F.lit(signal), F.col(C.SCORE))), {}, []


def build_social(ctx: RecommendContext, spec: ModelSpec) -> Built:
    from socialrec.features.graph import recommend_social

    g, _, _ = social_graph(ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=ctx.graph or GraphConfig(),
                           with_nodes=False)
    if g is None:
        raise RuntimeError(f"social: dataset {ctx.dataset!r} has no edges visible to the train period")
    cands = None if ctx.cold_items is None else ctx.test.select(C.ITEM)
    return recommend_social(ctx.train, g, ctx.depth, candidates=cands), {}, []
