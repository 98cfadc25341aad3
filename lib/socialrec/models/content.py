"""Content recommenders over item vectors: ``w2v_content`` (Word2Vec item vectors) and
``transformer_content`` (transformer embeddings from the embed stage).

Item vectors are L2-normalised and, by default, centred: the catalogue's mean vector is
subtracted and the result normalised again. Sentence and word embeddings share one
strong common direction (every movie plot is "about a film"); removing it is what lets
cosine see the differences. Measured on MovieLens-100K (stratified 75/25, nDCG@10):
transformer 0.022 -> 0.128 and Word2Vec 0.077 -> 0.104 (also tried: removing the top 1,
2 or 4 principal directions as well, "all-but-the-top": 0.118-0.122, not better).

A user's profile is the weighted mean of the item vectors of the items they
engaged with in train (weights from the interactions, optionally decayed with a half-life
counted back from the newest train interaction), plus, optionally, their own posts with
a configured weight. Items score by cosine similarity to the profile; seen items and the
user's own posts are removed; each recommendation names the engaged item it is most
similar to.

Retrieval is blockwise and never materialises users x items rows in Spark: the
catalogue (items x dim, float32, sorted by item id) is broadcast once; ``mapInPandas``
takes the users' histories an Arrow batch at a time, builds a block of profiles, and
multiplies it with one block of items at a time (at most ``block_cells`` scores in memory),
keeping a running top-k per user with ``argpartition``. Ties are broken by item id. The
catalogue must fit in executor memory (1M items x 384 dims = 1.5 GB; 100k items = 150 MB).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.models.retrieval import (
    candidate_rows,
    catalogue,
    centre,
    history_rows,
    most_similar,
    row_index,
    topk_block,
    unit_profile,
    unit_rows,
    users_per_block,
)

OUT_SCHEMA = "user_id string, item_id string, rank int, score double, explanation string"


def recommend_by_content(train: DataFrame, item_vecs: DataFrame, k: int = 10, *, half_life_days: float | None = None,
                         own_items: DataFrame | None = None, own_weight: float = 0.0, center: bool = True,
                         candidates: list[str] | None = None, block_cells: int = 1 << 24,
                         col_user: str = C.USER, col_item: str = C.ITEM, col_weight: str = C.WEIGHT,
                         col_ts: str = C.TS) -> DataFrame:
    """Top-k unseen items by cosine to the user's profile, for every user with a profile.

    ``train``: (user, item, weight[, ts]); ``item_vecs``: (item, vector array<float>),
    null vectors ignored; ``own_items``: (user, item) of the users' own posts, counted in
    the profile with ``own_weight`` when it is positive and never recommended back.
    ``center``: subtract the catalogue's mean vector (after L2 normalisation) and
    normalise again, removing the direction every item shares. ``candidates``: rank
    only among these items (the cold items of the cold-start protocol).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if half_life_days is not None and half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    spark = train.sparkSession
    ids, mat = catalogue(item_vecs, col_item)
    mat = centre(mat) if center else unit_rows(mat)
    b_ids, b_mat = spark.sparkContext.broadcast(ids), spark.sparkContext.broadcast(mat)
    b_cand = spark.sparkContext.broadcast(candidate_rows(ids, candidates))

    weight = F.col(col_weight).cast("double")
    if half_life_days is not None:
        newest = train.agg(F.max(col_ts)).first()[0]  # one value: decay counts back from the newest interaction
        if newest is not None:
            age_days = (F.lit(newest).cast("double") - F.col(col_ts).cast("double")) / 86400.0
            weight = weight * F.pow(F.lit(0.5), age_days / F.lit(float(half_life_days)))
    hist = train.select(F.col(col_user).alias("user_id"), F.col(col_item).cast("string").alias("item"),
                        weight.alias("w"), F.lit(False).alias("own"))
    if own_items is not None:
        hist = hist.unionByName(own_items.select(F.col(col_user).alias("user_id"),
                                                 F.col(col_item).cast("string").alias("item"),
                                                 F.lit(float(own_weight)).alias("w"), F.lit(True).alias("own")))
    users = hist.groupBy("user_id").agg(F.collect_list(F.struct("item", "w", "own")).alias("history"))

    def score(batches):
        ids_, m, cand = b_ids.value, b_mat.value, b_cand.value
        index = row_index(ids_)
        per_block = users_per_block(len(ids_) if cand is None else len(cand), block_cells)
        for pdf in batches:
            out = []
            for start in range(0, len(pdf), per_block):
                out.extend(_score_block(pdf.iloc[start:start + per_block], ids_, m, index, k, block_cells, cand))
            yield pd.DataFrame(out, columns=["user_id", "item_id", "rank", "score", "explanation"])

    recs = users.mapInPandas(score, OUT_SCHEMA)
    if col_user != "user_id" or col_item != "item_id":
        recs = recs.withColumnRenamed("user_id", col_user).withColumnRenamed("item_id", col_item)
    return recs


def _score_block(block: pd.DataFrame, ids: np.ndarray, m: np.ndarray, index: dict, k: int, block_cells: int,
                 cand: np.ndarray | None = None):
    """Recommendations for one block of users: profiles, then the shared blockwise top-k."""
    users, profiles, seen, engaged = [], [], [], []
    for user, history in zip(block["user_id"], block["history"]):
        idx, w, own = history_rows(history, index, with_own=True)
        if len(idx) == 0 or not np.any(w > 0):
            continue
        profile = unit_profile(w, m, idx)
        if profile is None:
            continue
        users.append(user)
        profiles.append(profile)
        seen.append(np.unique(idx))
        engaged.append(np.unique(idx[~own]))
    if not users:
        return []
    out = []
    for user, hist, (rows, scores) in zip(users, engaged, topk_block(np.stack(profiles), seen, m, k, block_cells, cand)):
        because = most_similar(m, rows, hist) if len(hist) and len(rows) else None
        for rank, (i, sc) in enumerate(zip(rows, scores), start=1):
            why = ids[because[rank - 1]] if because is not None else None
            out.append((user, ids[i], rank, float(sc),
                        f"similar to {why}, which you engaged with" if why is not None else "matches your own posts"))
    return out
