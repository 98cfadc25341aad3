"""ALS in the recommend stage: the fits its models share, tuning on a validation split,
the cold-start bridge and fold-in, and the ``als`` model's builder."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import ALSConfig
from socialrec.core.schemas import EDGES, METRICS
from socialrec.features import graph as G
from socialrec.stages.inputs import bridge_vectors, sync_id_maps

if TYPE_CHECKING:
    from socialrec.stages.context import Built, ModelSpec, RecommendContext

log = logging.getLogger(__name__)


class ALSFits:
    """ALS factors fitted once per (training part, parameters) and shared by the models
    of one recommend stage: ``als`` and every hybrid variant fit the same parts with the
    same values (the hybrid's serving fit is ALS's final fit; its ranker's fit is the same
    for ``hybrid``, ``hybrid-social`` and ``hybrid-no-*``, and, when its validation split
    is the stratified one ALS tunes on, ALS's tuning fit of the chosen point). A part is
    named by what it is computed from (``stratified_part``). ``release`` unpersists them."""

    def __init__(self) -> None:
        self._fits: dict = {}
        self.fitted = 0  # ALS fits made (runs.params als.fits)

    def get(self, part_key: tuple, part: DataFrame, users_map, items_map, params, cfg: ALSConfig):
        from socialrec.models import als as A

        key = (part_key, params, cfg.confidence, cfg.log_epsilon, cfg.seed, cfg.blocks)
        if key not in self._fits:
            self.fitted += 1
            self._fits[key] = A.fit_factors(part, users_map, items_map, params, confidence=cfg.confidence,
                                            log_epsilon=cfg.log_epsilon, seed=cfg.seed, blocks=cfg.blocks)
        else:
            log.info("als: reusing the factors fitted on %s with %s", part_key[0], params.label())
        return self._fits[key]

    def keep_only(self, part_key: tuple, params) -> None:
        """Unpersist the fits of ``part_key`` other than those with ``params`` (the grid
        points tuning did not choose)."""
        for key in [key for key in self._fits if key[0] == part_key and key[1] != params]:
            for frame in self._fits.pop(key):
                frame.unpersist()

    def release(self) -> None:
        for uvec, ivec in self._fits.values():
            uvec.unpersist(), ivec.unpersist()
        self._fits.clear()


def stratified_part(val_ratio: float, seed: int) -> tuple:
    """The ``ALSFits`` key of ``split.stratified_split(train, val_ratio, seed)``'s fitting
    part: the same for ALS's tuning and the hybrid's ranker when their ratio and seed agree."""
    return ("stratified", float(val_ratio), int(seed))


def recommend_als(spark, storage, *, dataset, train, cfg: ALSConfig, k, run_id, protocol, seed=None, depth=None,
                  users=None, bridge_vecs=None, own=None, edges=None, candidates=None, fits: ALSFits):
    """ALS recommendations, tuned on a validation split of train when configured; the
    validation scores go to ``metrics`` (split ``<protocol>-validation``, one segment per
    grid point); returns the recommendations, the chosen values (for ``runs.params``),
    the frames to release and the chosen ``ALSParams``. Items without
    factors get them through the cold-start bridge from ``bridge_vecs``; ``users`` without
    history get theirs from their own posts (``own``) and the people they follow
    (``edges``); own posts are never recommended back."""
    from socialrec.models import als as A

    users_map, items_map = sync_id_maps(spark, storage, dataset)
    users_map, items_map = users_map.cache(), items_map.cache()  # joined in every fit below
    chosen = A.ALSParams.of(cfg)
    points = A.grid_points(cfg.grid, chosen) if cfg.tune else [chosen]
    if len(points) > 1:
        tuning_part = stratified_part(cfg.val_ratio, cfg.seed)
        scores = A.tune(train, users_map, items_map, points, k=k, val_ratio=cfg.val_ratio, seed=cfg.seed,
                        confidence=cfg.confidence, log_epsilon=cfg.log_epsilon,
                        factors=lambda part, p: fits.get(tuning_part, part, users_map, items_map, p, cfg))
        chosen = scores[0][0]
        fits.keep_only(tuning_part, chosen)  # the hybrid's ranker may fit the same part with it
        split_name = f"{protocol}-validation"
        rows = [(run_id, dataset, split_name, "als", p.label(), "ndcg", k, v, None, seed, None, None)
                for p, v in scores]
        scope = {C.RUN_ID: run_id, C.SPLIT: split_name, C.MODEL: "als"} | ({C.SEED: seed} if seed is not None else {})
        storage.merge(spark.createDataFrame(rows, METRICS.schema), METRICS, scope=scope)
        log.info("als: chose %s (validation nDCG@%d %.4f)", chosen.label(), k, scores[0][1])
    uvec, ivec = fits.get(("train",), train, users_map, items_map, chosen, cfg)
    release = [users_map, items_map]
    params = {"als.rank": str(chosen.rank), "als.reg": f"{chosen.reg:g}", "als.alpha": f"{chosen.alpha:g}",
              "als.max_iter": str(chosen.max_iter), "als.tuned": str(len(points) > 1).lower()}
    items_all, users_all = ivec, uvec
    if bridge_vecs is not None:
        items_all, stats = A.bridge(ivec, bridge_vecs, reg=cfg.bridge_reg)
        # Cached: the bridged factors are read by the cold users' fold-in and the retrieval.
        items_all = items_all.cache()
        release.append(items_all)
        params["als.bridged_items"] = str(stats["bridged"])
    if users is not None and (own is not None or edges is not None):
        cold = A.cold_user_vectors(users, uvec, items_all, params=chosen, own_items=own, edges=edges).cache()
        release.append(cold)
        n_cold = cold.count()
        params["als.cold_users"] = str(n_cold)
        if n_cold:
            users_all = uvec.unionByName(cold)
            log.info("als: %d users without history served from their own posts or the people they follow", n_cold)
    seen = train.select(C.USER, C.ITEM) if own is None else train.select(C.USER, C.ITEM).unionByName(own)
    recs = A.recommend_from_factors(users_all, items_all, seen, depth or k, candidates=candidates)
    return recs, params, release, chosen


def build_als(ctx: RecommendContext, spec: ModelSpec) -> Built:
    bridge_vecs = bridge_vectors(ctx.spark, ctx.storage, dataset=ctx.dataset, kinds=ctx.als.bridge,
                                 embed_model=ctx.embed_model, w2v_engine=ctx.w2v_engine,
                                 w2v_variant=ctx.content.variant)
    edges = G.train_edges(ctx.storage.read(ctx.spark, EDGES, ctx.dataset), ctx.train, ctx.newest)
    recs, params, release, ctx.chosen_als = recommend_als(
        ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=ctx.als, k=ctx.k, depth=ctx.depth,
        run_id=ctx.run_id, protocol=ctx.protocol, seed=ctx.seed, users=ctx.users, bridge_vecs=bridge_vecs,
        own=ctx.own, edges=edges if edges.limit(1).count() else None, candidates=ctx.cold_items, fits=ctx.fits)
    return recs.withColumn("components", F.create_map(F.lit("als"), F.col(C.SCORE))), params, release
