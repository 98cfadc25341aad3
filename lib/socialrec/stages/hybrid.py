"""The hybrids in the recommend stage: a ranker trained on a validation split of train
over candidates from every signal, applied to candidates from components fitted on all of
train (see socialrec.models.hybrid); the builder of ``hybrid``, ``hybrid-social`` and
``hybrid-no-<signal>``."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import ALSConfig, GraphConfig, HybridConfig
from socialrec.core.schemas import ITEMS
from socialrec.models.als import ALSParams
from socialrec.stages.als import ALSFits, stratified_part
from socialrec.stages.inputs import bridge_vectors, social_graph, stored_vectors, sync_id_maps

if TYPE_CHECKING:
    from socialrec.stages.context import Built, ModelSpec, RecommendContext

log = logging.getLogger(__name__)


def recommend_hybrid(spark, storage, *, dataset, train, cfg: HybridConfig, als_cfg: ALSConfig, als_params, k,
                     w2v_engine, w2v_variant, embed_model, fits: ALSFits, depth=None, drop=frozenset(),
                     candidates=None, cold_share=None, graph_cfg: GraphConfig | None = None,
                     protocol: str | None = None, cold_history: int = 2):
    """Hybrid recommendations: ranker trained on a validation split of train, then applied
    to candidates from components refitted on all of train (see socialrec.models.hybrid).

    ``k``: the cut-off the blend is tuned for; ``depth``: the list length written.
    ``drop``: signals left out everywhere (candidates, features, the bridge): the
    ablation models ``hybrid-no-<signal>``. ``candidates``/``cold_share``: the cold-start
    protocol: only these items are ranked, and the ranker's validation split moves a
    ``cold_share`` of train's items out whole, like the test split, so that the ranker
    learns how far to trust the bridged ALS factors on items ALS never saw. Under
    ``protocol`` time_cut the validation split is a time cut of train as well, under
    cold_users a cold-users split of train (other users, same ``cold_history``). Unless
    ``social`` is dropped, the social signal (``social_graph``, ``hybrid.social_inputs``)
    adds friends' items, node-embedding and neighbour-profile candidates and features."""
    from socialrec.data.split import cold_items_fold, cold_users_split, stratified_split, time_cut_split
    from socialrec.models import als as A
    from socialrec.models import hybrid as H

    items = storage.read(spark, ITEMS, dataset)
    content = {}
    for kind in ("transformer", "w2v"):
        vecs = stored_vectors(spark, storage, dataset=dataset, kind=kind, embed_model=embed_model,
                              w2v_engine=w2v_engine, w2v_variant=w2v_variant)
        if kind not in drop and vecs.limit(1).count():
            content[kind] = vecs
    bridge_vecs = None
    if "als" not in drop:
        bridge_vecs = bridge_vectors(spark, storage, dataset=dataset,
                                     kinds=[b for b in als_cfg.bridge if b not in drop], embed_model=embed_model,
                                     w2v_engine=w2v_engine, w2v_variant=w2v_variant)
    users_map, items_map = sync_id_maps(spark, storage, dataset)
    if candidates is None and protocol == "time_cut":
        # Validation after training in time too: the ranker then learns how much signals
        # (and the edges visible to them) tell about the future, as the test asks.
        fit_part, val = time_cut_split(train, cfg.val_ratio)
        n_per_source = cfg.candidates
    elif candidates is None and protocol == "cold_users":
        # Validated on users made cold the same way (seed + 1: other users), so the blend
        # is tuned for users with `cold_history` pairs, the users the test holds.
        fit_part, val = cold_users_split(train, cold_share, cfg.seed + 1, history=cold_history)
        n_per_source = cfg.candidates
    elif candidates is None:
        fit_part, val = stratified_split(train, cfg.val_ratio, cfg.seed)
        n_per_source = cfg.candidates
        part_key = stratified_part(cfg.val_ratio, cfg.seed)
    folds = None
    if candidates is not None:
        # The test's factor model never saw the cold items and saw all others. Validation
        # mimics it: train's items are moved out in `cold_folds` disjoint folds (seed + 1:
        # the test draw's own seed would find no cold item left in train), each fold's items
        # held out of its own ALS fit and bridged from text exactly as the test's are, so
        # each fit sees 1 - cold_share / cold_folds of train's items (one fold of
        # cold_share, as before, left ALS ~64% of all items against the test's 80%, and
        # the blend it learned trusted text more than test bore out).
        folds = [cold_items_fold(train, cold_share, cfg.seed + 1, f, cfg.cold_folds) for f in range(cfg.cold_folds)]
        n_per_source = max(cfg.candidates, depth or k)  # the whole list AUC reads, from every source
    if candidates is not None or protocol in ("time_cut", "cold_users"):
        # The ranker's fitting part, as a key for the shared ALS fits: what the split above depends on.
        part_key = ("ranker", protocol if candidates is None else "cold_items", cfg.val_ratio, cfg.seed, cold_share,
                    cold_history)
    if folds is None:
        parts = [("ranker", fit_part, val.cache(), None, part_key)]  # val: the ranker's truth
    else:
        parts = [(f"ranker{f}", fit_f, val_f.cache(),
                  [r[0] for r in val_f.select(C.ITEM).distinct().collect()],  # bounded by the catalogue
                  (*part_key, f, cfg.cold_folds)) for f, (fit_f, val_f) in enumerate(folds)]
    release = [truth for _, _, truth, _, _ in parts]
    models = {}
    info: dict[str, str] = {}
    graph_cfg = graph_cfg or GraphConfig()
    for name, part, truth, allowed, key in [*parts, ("serve", train, None, candidates, ("train",))]:
        graph = nodes = None
        if "social" not in drop:  # the edges visible to this part (see social_graph)
            graph, nodes, seen_info = social_graph(spark, storage, dataset=dataset, train=part, cfg=graph_cfg)
            info.update({(k if name == "serve" else f"{k}.{name}"): v for k, v in seen_info.items()})
        uvec = ivec = None
        if "als" not in drop:
            uvec, ivec = fits.get(key, part, users_map, items_map, als_params, als_cfg)
            if bridge_vecs is not None:
                ivec, _ = A.bridge(ivec, bridge_vecs, reg=als_cfg.bridge_reg)
        cat = H.build_catalogue(part, items, als_items=ivec, content=content, allowed=allowed,
                                popular="popular" not in drop, trend_hours=cfg.trend_hours)
        social = None
        if graph is not None:
            social = H.social_inputs(part, graph, cat, nodes=nodes, hops=graph_cfg.hops,
                                     attention=graph_cfg.attention, limit=graph_cfg.social_candidates,
                                     recent_days=graph_cfg.recent_days)
        cands = H.candidates(part, cat, als_users=uvec, n_per_source=n_per_source, truth=truth, social=social)
        # Cached: the logistic and boosted rankers read their training rows many times
        # (iterations); the serving candidates are read once by the ranking, and must not be
        # regenerated per action. The listwise ranker reads its rows once, to pack them per user.
        if name == "serve" or cfg.objective != "listwise":
            cands = cands.cache()
            release.append(cands)
        models[name] = cands
    ranker_cands, val = models[parts[0][0]], parts[0][2]
    tagged = None
    if folds is not None:  # one list per (user, fold): a user's lists of two folds are two queries
        tagged = [(models[name].withColumn("user_id", F.concat_ws("#", "user_id", F.lit(name))),
                   truth.select(F.concat_ws("#", C.USER, F.lit(name)).alias("user_id"), C.ITEM))
                  for name, _, truth, _, _ in parts]
        ranker_cands = functools.reduce(DataFrame.unionByName, [c for c, _ in tagged])
        val = functools.reduce(DataFrame.unionByName, [t for _, t in tagged])
    blend = tuple(f for f in cfg.blend if H.BLEND_SIGNAL.get(f) not in drop)
    if cfg.trend_hours and "trending_z" not in blend:  # the trending signal is searched when it is on
        blend += ("trending_z",)
    if cfg.objective == "xgboost":
        model, shares = H.train_xgb_ranker(ranker_cands, trees=cfg.xgb_trees, depth=cfg.xgb_depth, eta=cfg.xgb_eta,
                                           device=cfg.xgb_device, workers=cfg.xgb_workers, k=k, seed=cfg.seed)
        recs = H.rank_with_model(model, models["serve"], depth or k)
        # The features the trees split on, by their share of the total gain (the rest: 0).
        return recs, release, {**info, "ranker": "xgboost",
                               **{f"importance.{f}": f"{v:.3f}" for f, v in shares.items() if v >= 0.0005}}
    if cfg.objective == "listwise":
        if not blend:
            raise ValueError(f"hybrid.blend: every feature of {list(cfg.blend)} belongs to a left-out signal "
                             f"({', '.join(sorted(drop))})")
        start = "als_z" if "als_z" in blend else blend[0]
        if tagged is not None and cfg.cross_check:  # the blend must carry from some folds' items to another's
            coef, check = H.cross_checked_blend(tagged, k=k, features=blend, start=start, min_gain=cfg.min_gain)
            info["held_out_gain"] = f"{check['held_out_gain']:.4f}"
        else:
            coef, _ = H.coordinate_ascent(ranker_cands, val, k=k, features=blend, start=start,
                                          min_gain=cfg.min_gain)
    else:
        coef = H.train_ranker(ranker_cands, objective=cfg.objective, reg=cfg.reg, seed=cfg.seed)
    log.info("hybrid ranker weights: %s", ", ".join(f"{f} {v:+.3f}" for f, v in coef.items() if v))
    recs = H.rank_with(coef, models["serve"], depth or k)
    return recs, release, {**info, **{f"weight.{f}": f"{v:.4g}" for f, v in coef.items() if v}}


def build_hybrid(ctx: RecommendContext, spec: ModelSpec) -> Built:
    """``options["drop"]``: the signals left out (``hybrid`` and ``hybrid-no-<signal>``
    leave the social signal out, and the named one; ``hybrid-social`` has every signal).
    Its params are prefixed with the model's name."""
    drop = spec.options["drop"]
    cfg = ctx.hybrid
    if spec.options.get("objective") and spec.options["objective"] != cfg.objective:
        cfg = dataclasses.replace(cfg, objective=spec.options["objective"])
    recs, release, params = recommend_hybrid(
        ctx.spark, ctx.storage, dataset=ctx.dataset, train=ctx.train, cfg=cfg, als_cfg=ctx.als,
        als_params=ctx.chosen_als or ALSParams.of(ctx.als), k=ctx.k, depth=ctx.depth, w2v_engine=ctx.w2v_engine,
        w2v_variant=ctx.content.variant, embed_model=ctx.embed_model, drop=drop, fits=ctx.fits,
        candidates=ctx.cold_items, cold_share=ctx.cold_share, graph_cfg=ctx.graph, protocol=ctx.protocol,
        cold_history=ctx.cold_history)
    return recs, {f"{spec.name}.{key}": v for key, v in params.items()}, release
