"""Implicit-feedback ALS on Spark (model ``als``): confidences, id mapping, tuning on a
validation split, and blockwise top-k with seen items removed.

* **Confidence.** Spark's implicit ALS (Hu, Koren, Volinsky 2008) takes a value r per
  (user, item) pair and uses preference 1 with confidence 1 + alpha * r. r comes from the
  pair's summed interaction weight (``dataset.event_weights``: view < like < comment <
  share; a MovieLens rating; a Last.fm play count) through ``als.confidence``: ``linear``
  (r = weight), ``log`` (r = log(1 + weight / als.log_epsilon), for play counts whose
  range spans five orders of magnitude) or ``binary`` (r = 1).
* **Ids.** ALS needs int ids; ``sync_id_map`` keeps them in the ``id_map`` table per
  dataset: an id keeps its number across runs, new ids get the next numbers (in id
  order), ids that left the dataset lose their row.
* **Tuning.** ``tune`` carves a validation split from train (stratified per user, seeded),
  fits every point of the ``als.grid``, scores nDCG@k on the validation pairs (a ranking
  metric, not RMSE) and returns the best point; the stage then refits on all of train.
* **Cold start.** Items with no training pairs have no factors. ``bridge`` learns a
  ridge regression (closed form, on the driver: items x dim is bounded by the catalogue)
  from the items' centred content embeddings (transformer and Word2Vec, concatenated) to
  their ALS factors on the warm items, and
  predicts factors for the rest, so a new post is rankable from its text alone. A user
  with no history gets a vector from their own posts (the ALS user update, "fold-in",
  solved against the item factors with the posts as positives) and/or the mean of the
  vectors of the users they follow or befriend (``cold_user_vectors``).
* **Top-k.** Spark's ``recommendForAllUsers`` ranks the whole catalogue including seen
  items and leaves the filtering to the caller, who must ask for k + max(seen) items per
  user to keep k (and shuffle that many rows). Here the item factors are broadcast and
  each block of users is scored with one matrix product, seen items masked before the
  top-k is taken (``socialrec.models.retrieval``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import CONFIDENCES
from socialrec.models.retrieval import (
    aligned,
    candidate_rows,
    catalogue,
    centre,
    most_similar,
    row_index,
    topk_block,
    users_per_block,
)

log = logging.getLogger(__name__)

# Spark ALS splits users and items into blocks (its default 10 each). Each block is a task
# per iteration, and an item block's factors are shipped to every user block that needs
# them, so more blocks than cores only add work: on MovieLens-100K (2 cores) a fit takes
# 6.7 s with 2 blocks against 12.6 s with 10 (rank 64, 15 iterations). The blocks also
# seed the initial factors, so a number not given (``als.blocks: null``) is taken from the
# data, never from the cores: results stay the same on any machine. The configured
# default stays Spark's 10 (see docs/configuration.md, als.blocks, for why), here and in
# ``ALSConfig.blocks``.
DEFAULT_BLOCKS = 10
PAIRS_PER_BLOCK = 500_000
OUT_SCHEMA = "user_id string, item_id string, rank int, score double, explanation string"


@dataclass(frozen=True)
class ALSParams:
    """One point of ALS's values; the defaults are ``ALSConfig``'s (conf/base.yaml)."""

    rank: int = 64
    reg: float = 0.3
    alpha: float = 1.0
    max_iter: int = 15

    def label(self) -> str:
        return f"rank={self.rank},reg={self.reg:g},alpha={self.alpha:g},iter={self.max_iter}"

    @classmethod
    def of(cls, cfg) -> ALSParams:
        """The configured point of an ``ALSConfig`` (before any tuning)."""
        return cls(rank=cfg.rank, reg=cfg.reg, alpha=cfg.alpha, max_iter=cfg.max_iter)


def confidence_value(weight, mode: str = "linear", log_epsilon: float = 1.0):
    """The r of confidence 1 + alpha * r, from a pair's summed interaction weight column."""
    w = F.col(weight) if isinstance(weight, str) else weight
    if mode == "linear":
        return w.cast("double")
    if mode == "log":
        return F.log1p(w.cast("double") / F.lit(float(log_epsilon)))
    if mode == "binary":
        return F.lit(1.0)
    raise ValueError(f"als.confidence: {mode!r} is not one of {', '.join(CONFIDENCES)}")


def new_id_map(ids: DataFrame, existing: DataFrame | None = None, *, col: str = "id") -> DataFrame:
    """(id, idx int): existing ids keep their idx; new ids get max(idx) + 1, ... in id order.

    ``ids``: one column ``col`` of distinct-or-not ids; ``existing``: (id, idx) rows of
    the current map (ids absent from ``ids`` are dropped)."""
    wanted = ids.select(F.col(col).cast("string").alias("id")).where(F.col("id").isNotNull()).distinct()
    if existing is None:
        kept = wanted.limit(0).withColumn("idx", F.lit(0).cast("int"))
        start = 0
    else:
        kept = existing.select("id", "idx").join(wanted, "id", "left_semi")
        top = existing.agg(F.max("idx")).first()[0]  # one number
        start = 0 if top is None else int(top) + 1
    fresh = wanted.join(kept, "id", "left_anti").orderBy("id")
    numbered = fresh.rdd.map(lambda r: r[0]).zipWithIndex().map(lambda t: (t[0], int(t[1]) + start))
    fresh_df = ids.sparkSession.createDataFrame(numbered, "id string, idx int")
    out = kept.unionByName(fresh_df)
    if start + fresh_df.count() > 2**31 - 1:  # ALS ids are Spark ints
        raise ValueError("more than 2^31 ids: ALS cannot index them")
    return out


def blocks_for(n_pairs: int) -> int:
    """ALS's user and item blocks for ``n_pairs`` training pairs: one per
    ``PAIRS_PER_BLOCK``, at least 2."""
    return max(2, -(-int(n_pairs) // PAIRS_PER_BLOCK))


def fit(train: DataFrame, params: ALSParams, *, seed: int = 42, blocks: int | None = DEFAULT_BLOCKS,
        col_user: str = "uidx", col_item: str = "iidx", col_rating: str = "r"):
    """Spark ALS (implicit) on (user idx, item idx, r).

    ALS's factor RDDs grow one lineage step per iteration; without a checkpoint directory
    Spark never truncates it and deserialising a task can overflow the stack (seen here
    at 15 iterations after many fits in one session). In local mode a temporary checkpoint
    directory is set when none is; on a cluster set one (``sc.setCheckpointDir``) on
    shared storage. ``blocks``: user and item blocks (None: ``blocks_for`` the rows, which
    counts them)."""
    from pyspark.ml.recommendation import ALS

    sc = train.sparkSession.sparkContext
    if sc.getCheckpointDir() is None:  # run_stage sets one; direct callers get the local default
        if sc.master.startswith("local"):
            from socialrec.core.session import ensure_checkpoint_dir

            ensure_checkpoint_dir(train.sparkSession, None, "")
        else:
            log.warning("als: no Spark checkpoint directory; long ALS runs may overflow the stack "
                        "(call spark.sparkContext.setCheckpointDir on shared storage)")
    blocks = blocks if blocks is not None else blocks_for(train.count())
    als = ALS(rank=params.rank, regParam=params.reg, alpha=params.alpha, maxIter=params.max_iter,
              implicitPrefs=True, userCol=col_user, itemCol=col_item, ratingCol=col_rating, seed=seed,
              coldStartStrategy="drop", nonnegative=False, checkpointInterval=5, numUserBlocks=blocks,
              numItemBlocks=blocks)
    return als.fit(train)


def factors_by_id(model_factors: DataFrame, id_map: DataFrame, col_id: str) -> DataFrame:
    """(col_id, vector array<float>) from an ALS factor frame (id int, features)."""
    return model_factors.join(id_map, model_factors["id"] == id_map["idx"]).select(
        id_map["id"].alias(col_id), F.col("features").cast("array<float>").alias("vector"))


def recommend_from_factors(user_vecs: DataFrame, item_vecs: DataFrame, train: DataFrame, k: int, *,
                           candidates: list[str] | None = None, block_cells: int = 1 << 24,
                           col_user: str = C.USER, col_item: str = C.ITEM) -> DataFrame:
    """Top-k unseen items by dot product of user and item vectors (blockwise).

    ``user_vecs``: (user, vector); ``item_vecs``: (item, vector); ``train``: (user, item)
    pairs whose items are removed; ``candidates``: rank only among these items."""
    spark = train.sparkSession
    ids, mat = catalogue(item_vecs.select(F.col(col_item).alias("item_id"), "vector"), "item_id")
    cand_rows = candidate_rows(ids, candidates)
    b_ids, b_mat = spark.sparkContext.broadcast(ids), spark.sparkContext.broadcast(mat)
    b_cand = spark.sparkContext.broadcast(cand_rows)
    seen = train.groupBy(F.col(col_user).alias("user_id")).agg(
        F.collect_list(F.col(col_item).cast("string")).alias("seen"))
    users = user_vecs.select(F.col(col_user).alias("user_id"), "vector").join(seen, "user_id", "left")

    def score(batches):
        ids_, m, cand = b_ids.value, b_mat.value, b_cand.value
        idx = row_index(ids_)
        unit = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # for the explanations
        per_block = users_per_block(len(ids_) if cand is None else len(cand), block_cells)
        for pdf in batches:
            out = []
            for start in range(0, len(pdf), per_block):
                block = pdf.iloc[start:start + per_block]
                P = np.stack([np.asarray(v, dtype=np.float32) for v in block["vector"]])
                seen_rows = [np.unique(np.array([idx[s] for s in (sv if sv is not None else []) if s in idx],
                                                dtype=np.int64)) for sv in block["seen"]]
                for user, hist, (rows, scores) in zip(block["user_id"], seen_rows,
                                                      topk_block(P, seen_rows, m, k, block_cells, cand)):
                    because = most_similar(unit, rows, hist) if len(hist) and len(rows) else None
                    for rank, (i, sc) in enumerate(zip(rows, scores), start=1):
                        why = (f"people who engaged with {ids_[because[rank - 1]]} also engaged with this"
                               if because is not None else "popular with people like you")
                        out.append((user, ids_[i], rank, float(sc), why))
            yield pd.DataFrame(out, columns=["user_id", "item_id", "rank", "score", "explanation"])

    recs = users.where(F.col("vector").isNotNull()).mapInPandas(score, OUT_SCHEMA)
    if col_user != "user_id" or col_item != "item_id":
        recs = recs.withColumnRenamed("user_id", col_user).withColumnRenamed("item_id", col_item)
    return recs


def grid_points(grid: dict[str, list[float]], base: ALSParams) -> list[ALSParams]:
    """Every combination of the grid's values (keys rank, reg, alpha, max_iter); keys
    not in the grid keep ``base``'s value."""
    import itertools

    keys = [k for k in ("rank", "reg", "alpha", "max_iter") if grid.get(k)]
    points = []
    for values in itertools.product(*(grid[k] for k in keys)):
        kw = {"rank": base.rank, "reg": base.reg, "alpha": base.alpha, "max_iter": base.max_iter}
        kw.update(dict(zip(keys, values)))
        points.append(ALSParams(rank=int(kw["rank"]), reg=float(kw["reg"]), alpha=float(kw["alpha"]),
                                max_iter=int(kw["max_iter"])))
    return points or [base]


def indexed(pairs: DataFrame, users_map: DataFrame, items_map: DataFrame, *, confidence: str, log_epsilon: float,
            col_user: str = C.USER, col_item: str = C.ITEM, col_weight: str = C.WEIGHT) -> DataFrame:
    """(uidx, iidx, r) for ALS from (user, item, weight) pairs and the two id maps."""
    return (pairs.join(users_map.select(F.col("id").alias(col_user), F.col("idx").alias("uidx")), col_user)
            .join(items_map.select(F.col("id").alias(col_item), F.col("idx").alias("iidx")), col_item)
            .select("uidx", "iidx", confidence_value(col_weight, confidence, log_epsilon).alias("r")))


def train_and_recommend(train: DataFrame, users_map: DataFrame, items_map: DataFrame, params: ALSParams, k: int, *,
                        confidence: str = "linear", log_epsilon: float = 1.0, seed: int = 42,
                        blocks: int | None = DEFAULT_BLOCKS,
                        candidates: list[str] | None = None) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Fit on ``train`` (user, item, weight) and return (recommendations, user vectors,
    item vectors); the vectors are (user_id|item_id, vector)."""
    uvec, ivec = fit_factors(train, users_map, items_map, params, confidence=confidence, log_epsilon=log_epsilon,
                             seed=seed, blocks=blocks)
    recs = recommend_from_factors(uvec, ivec, train, k, candidates=candidates)
    return recs, uvec, ivec


def fit_factors(train: DataFrame, users_map: DataFrame, items_map: DataFrame, params: ALSParams, *,
                confidence: str = "linear", log_epsilon: float = 1.0, seed: int = 42,
                blocks: int | None = DEFAULT_BLOCKS) -> tuple[DataFrame, DataFrame]:
    """Fit on ``train`` (user, item, weight); (user_id, vector) and (item_id, vector),
    cached (the caller unpersists them). ``blocks``: see ``fit``."""
    data = indexed(train, users_map, items_map, confidence=confidence, log_epsilon=log_epsilon)
    # Cached: ALS makes several passes over its input, which is a join of three tables.
    data = data.cache()
    try:
        model = fit(data, params, seed=seed, blocks=blocks)
        # Factors are small (users + items rows) and read twice (retrieval, explanations):
        # materialised once so the blockwise step does not recompute the ALS lineage.
        uvec = factors_by_id(model.userFactors, users_map, C.USER).cache()
        ivec = factors_by_id(model.itemFactors, items_map, C.ITEM).cache()
        uvec.count(), ivec.count()
    finally:
        data.unpersist()
    return uvec, ivec


def tune(train: DataFrame, users_map: DataFrame, items_map: DataFrame, points: list[ALSParams], *, k: int,
         val_ratio: float, seed: int, confidence: str = "linear", log_epsilon: float = 1.0,
         blocks: int | None = DEFAULT_BLOCKS, factors=None) -> list[tuple[ALSParams, float]]:
    """nDCG@k on a validation split carved from ``train`` (per user, ``val_ratio`` of the
    pairs kept for fitting), for each point; best first (ties: the earlier point).

    ``factors``: ``(fit_part, params) -> (user vectors, item vectors)`` that owns what it
    returns (e.g. ``stages.als.ALSFits``, which keeps them for the hybrid's ranker, fitted
    on the same part); default: ``fit_factors``, unpersisted after each point."""
    from socialrec.data.split import stratified_split
    from socialrec.evaluation.metrics import ranking_metrics

    fit_part, val = stratified_split(train, val_ratio, seed)
    fit_part, val = fit_part.cache(), val.cache()  # every grid point reads both
    scores = []
    try:
        for p in points:
            if factors is None:
                uvec, ivec = fit_factors(fit_part, users_map, items_map, p, confidence=confidence,
                                         log_epsilon=log_epsilon, seed=seed, blocks=blocks)
            else:
                uvec, ivec = factors(fit_part, p)
            recs = recommend_from_factors(uvec, ivec, fit_part, k)
            m = ranking_metrics(recs, val, k=[k], metrics=["ndcg"]).first()
            scores.append((p, float(m["value"])))
            if factors is None:
                uvec.unpersist(), ivec.unpersist()
            log.info("als tuning: %s -> validation nDCG@%d %.4f", p.label(), k, scores[-1][1])
    finally:
        fit_part.unpersist(), val.unpersist()
    order = sorted(range(len(scores)), key=lambda i: (-scores[i][1], i))
    return [scores[i] for i in order]


def ridge_map(X: np.ndarray, Y: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) minimising ||X W + b - Y||^2 + reg ||W||^2 (the intercept b unpenalised),
    in closed form: W = (Xc'Xc + reg I)^-1 Xc'Yc on the column-centred X and Y."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if len(X) == 0:
        raise ValueError("ridge_map: no warm item has both an embedding and ALS factors to learn the bridge from")
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    W = np.linalg.solve(Xc.T @ Xc + reg * np.eye(X.shape[1]), Xc.T @ Yc)
    return W, my - mx @ W


def bridge(item_vecs: DataFrame, embeddings, *, reg: float = 3.0,
           col_item: str = C.ITEM) -> tuple[DataFrame, dict]:
    """Item factors for every item with an embedding: ALS's own where it has them,
    predicted by ``ridge_map`` (learned on the items with both) where not.

    ``embeddings``: one (item, vector) frame, or a list of them (e.g. the transformer's
    and Word2Vec's): each is centred on its own (``retrieval.centre``) and the blocks are
    concatenated, an item missing from one source getting zeros there (the centred mean).
    Returns ((item, vector), stats: warm, bridged)."""
    spark = item_vecs.sparkSession
    sources = [catalogue(e.select(F.col(col_item).alias("item_id"), "vector"), "item_id")
               for e in (embeddings if isinstance(embeddings, (list, tuple)) else [embeddings])]
    sources = [(ids, m) for ids, m in sources if len(ids)]
    fids, V = catalogue(item_vecs.select(F.col(col_item).alias("item_id"), "vector"), "item_id")
    if not sources or len(fids) == 0:
        return item_vecs, {"warm": 0, "bridged": 0}
    eids = np.array(sorted(set().union(*(set(ids) for ids, _ in sources))), dtype=object)
    E = np.concatenate([aligned(eids, ids, centre(m)) for ids, m in sources], axis=1)
    pos = np.searchsorted(eids, fids)
    warm = (pos < len(eids)) & (eids[np.minimum(pos, len(eids) - 1)] == fids)
    W, b = ridge_map(E[pos[warm]], V[warm], reg)
    cold = ~np.isin(eids, fids)
    pred = (E[cold].astype(np.float64) @ W + b).astype(np.float32)
    stats = {"warm": int(warm.sum()), "bridged": int(cold.sum())}
    log.info("als bridge: learned on %d warm items, predicted factors for %d items without them", *stats.values())
    if not cold.any():
        return item_vecs, stats
    new = spark.createDataFrame([(str(i), v.tolist()) for i, v in zip(eids[cold], pred)],
                                f"{col_item} string, vector array<float>")
    return item_vecs.select(col_item, F.col("vector").cast("array<float>")).unionByName(new), stats


def fold_in(V: np.ndarray, positives: np.ndarray, *, reg: float, alpha: float, r: np.ndarray | None = None) -> np.ndarray:
    """The implicit-ALS user update against fixed item factors ``V`` (Hu et al. 2008, with
    Spark's regularisation scaled by the user's number of pairs): the vector of a user
    whose positives are the rows ``positives`` with values ``r`` (default 1)."""
    V = np.asarray(V, dtype=np.float64)
    Vs = V[positives]
    r = np.ones(len(positives)) if r is None else np.asarray(r, dtype=np.float64)
    c = 1.0 + alpha * r
    A = V.T @ V + (Vs * (c - 1.0)[:, None]).T @ Vs + reg * max(len(positives), 1) * np.eye(V.shape[1])
    return np.linalg.solve(A, Vs.T @ c)


def cold_user_vectors(users: DataFrame, user_vecs: DataFrame, item_vecs: DataFrame, *, params: ALSParams,
                      own_items: DataFrame | None = None, edges: DataFrame | None = None,
                      col_user: str = C.USER, col_item: str = C.ITEM) -> DataFrame:
    """(user, vector) for the ``users`` without ALS factors who have their own posts
    (``own_items``: user, item) and/or people they follow or befriend (``edges``: src,
    dst; src's vector comes from the dsts'): the fold-in vector of their posts, the mean
    vector of those people, or the mean of the two where both exist."""
    spark = users.sparkSession
    ids, V = catalogue(item_vecs.select(F.col(col_item).alias("item_id"), "vector"), "item_id")
    targets = users.select(F.col(col_user).alias("user_id")).distinct().join(
        user_vecs.select(F.col(col_user).alias("user_id")), "user_id", "left_anti")
    empty = spark.createDataFrame([], f"{col_user} string, vector array<float>")
    if len(ids) == 0:
        return empty
    if own_items is not None:
        own = own_items.groupBy(F.col(col_user).alias("user_id")).agg(
            F.collect_list(F.col(col_item).cast("string")).alias("own"))
        targets = targets.join(own, "user_id", "left")
    else:
        targets = targets.withColumn("own", F.lit(None).cast("array<string>"))
    if edges is not None:
        friends = (edges.select(F.col(C.SRC).alias("user_id"), F.col(C.DST).alias("_f")).distinct()
                   .join(user_vecs.select(F.col(col_user).alias("_f"), F.col("vector").alias("_v")), "_f")
                   .groupBy("user_id").agg(F.collect_list("_v").alias("friends")))
        targets = targets.join(friends, "user_id", "left")
    else:
        targets = targets.withColumn("friends", F.lit(None).cast("array<array<float>>"))
    targets = targets.where(F.col("own").isNotNull() | F.col("friends").isNotNull())
    b_ids, b_v = spark.sparkContext.broadcast(ids), spark.sparkContext.broadcast(V)

    def vectors(batches):
        index = row_index(b_ids.value)
        for pdf in batches:
            out_u, out_v = [], []
            for user, own, friends in zip(pdf["user_id"], pdf["own"], pdf["friends"]):
                parts = []
                rows = np.array(sorted({index[i] for i in (own if own is not None else []) if i in index}), dtype=np.int64)
                if len(rows):
                    parts.append(fold_in(b_v.value, rows, reg=params.reg, alpha=params.alpha))
                if friends is not None and len(friends):
                    parts.append(np.mean([np.asarray(f, dtype=np.float64) for f in friends], axis=0))
                if parts:
                    out_u.append(user)
                    out_v.append(np.mean(parts, axis=0).astype(np.float32))
            yield pd.DataFrame({"user_id": out_u, "vector": out_v})

    out = targets.mapInPandas(vectors, "user_id string, vector array<float>")
    return out.withColumnRenamed("user_id", col_user) if col_user != "user_id" else out
