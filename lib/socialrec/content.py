"""Content recommenders over item vectors (``w2v_content``; later the transformer ones).

A user's profile is the interaction-weighted mean of the (L2-normalised) vectors of the
items they engaged with in train; items score by cosine similarity to the profile; seen items are
removed; each recommendation names the seen item it is most similar to.

Scoring is blockwise: the item matrix (catalogue x dim, float32, L2-normalised) is
broadcast once, and each Arrow batch of user profiles is scored with one matrix product
and ``argpartition`` in ``mapInPandas`` — no users x items rows are ever materialised in
Spark. The catalogue must fit in executor memory (1M items x 100 dims = 400 MB).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec import columns as C

OUT_SCHEMA = "user_id string, item_id string, rank int, score double, explanation string"


def recommend_by_content(train: DataFrame, item_vecs: DataFrame, k: int = 10, *, col_user: str = C.USER,
                         col_item: str = C.ITEM, col_weight: str = C.WEIGHT) -> DataFrame:
    """Top-k unseen items by cosine to the user's profile, for every user with a profile."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    spark = train.sparkSession
    rows = item_vecs.select(col_item, "vector").collect()  # the catalogue's vectors: bounded by the catalogue
    ids = np.array([r[col_item] for r in rows], dtype=object)
    mat = np.array([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), -1)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    mat = np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)
    b_ids, b_mat = spark.sparkContext.broadcast(ids), spark.sparkContext.broadcast(mat)

    users = train.groupBy(col_user).agg(
        F.collect_list(F.struct(F.col(col_item).alias("item"), F.col(col_weight).cast("double").alias("w")))
        .alias("history")
    ).select(F.col(col_user).alias("user_id"), "history")

    def score(batches):
        ids_, m = b_ids.value, b_mat.value
        m64 = m.astype(np.float64)  # once per Python worker task, not per user
        index = {item: i for i, item in enumerate(ids_)}
        for pdf in batches:
            out = []
            for user, history in zip(pdf["user_id"], pdf["history"]):
                # Sorted by item id and summed in float64: the same profile whatever order
                # the history arrived in, so reruns give identical scores.
                hist = sorted((h["item"], h["w"]) for h in history)
                seen_idx = [index[item] for item, _ in hist if item in index]
                if not seen_idx or len(m) == 0:
                    continue
                w = np.array([wt for item, wt in hist if item in index], dtype=np.float64)
                p = w @ m64[seen_idx]
                n = np.linalg.norm(p)
                if n == 0:
                    continue
                s = m64 @ (p / n)
                s[seen_idx] = -np.inf
                kk = min(k, len(s) - len(seen_idx))
                if kk <= 0:
                    continue
                top = np.argpartition(-s, kk - 1)[:kk]
                top = top[np.lexsort((ids_[top].astype(str), -s[top]))]  # score desc, then item id
                because = m[top] @ m[seen_idx].T if seen_idx else None
                for rank, i in enumerate(top, start=1):
                    why = ids_[seen_idx[int(np.argmax(because[rank - 1]))]] if because is not None else None
                    out.append((user, ids_[i], rank, float(s[i]),
                                f"similar to {why}, which you engaged with" if why is not None else "content match"))
            yield pd.DataFrame(out, columns=["user_id", "item_id", "rank", "score", "explanation"])

    recs = users.mapInPandas(score, OUT_SCHEMA)
    if col_user != "user_id" or col_item != "item_id":
        recs = recs.withColumnRenamed("user_id", col_user).withColumnRenamed("item_id", col_item)
    return recs
