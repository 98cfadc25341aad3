"""Blockwise top-k by dot product: the retrieval kernel of every vector model
(``w2v_content``, ``transformer_content``, ``als``, the hybrid's candidates).

``topk_block(P, seen, M, k)`` scores a block of user vectors ``P`` (users x dim, float32)
against the item matrix ``M`` (items x dim, float32, rows sorted by item id) one block of
items at a time, at most ``block_cells`` scores in memory, keeping a running top-k per
user with ``argpartition``; ``seen[r]`` (item row numbers) are excluded for user ``r``.
It returns, per user, the item rows and scores ordered by score descending, then by item
row (= item id), so ties resolve the same way on every run. Called inside
``mapInPandas`` on broadcast matrices: no users x items rows ever exist in Spark.

``catalogue(item_vecs)`` brings the item matrix to the driver through Arrow (bounded by
the catalogue size), sorted by item id; ``centre`` / ``unit_rows`` prepare it for cosine.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from socialrec.core.compat import from_arrow, to_arrow


def users_per_block(n_items: int, block_cells: int = 1 << 24, cap: int = 1024) -> int:
    """How many users to score together so one block of scores stays near ``block_cells``."""
    return max(1, min(cap, block_cells // max(n_items, 1)))


def topk_block(P: np.ndarray, seen: list[np.ndarray], M: np.ndarray, k: int, block_cells: int = 1 << 24,
               candidates: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k item rows and scores for each row of ``P``; see the module docstring.

    ``candidates`` (item rows, sorted): rank only among these items (e.g. the cold
    items of the cold-start protocol)."""
    n_users = P.shape[0]
    cand = np.arange(M.shape[0]) if candidates is None else np.asarray(candidates, dtype=np.int64)
    n_items = len(cand)
    kk = min(k, n_items)
    if n_users == 0 or kk == 0:
        return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(n_users)]
    top_s = np.full((n_users, kk), -np.inf, dtype=np.float32)
    top_i = np.full((n_users, kk), -1, dtype=np.int64)
    seen_rows = np.concatenate([np.full(len(s), r, dtype=np.int64) for r, s in enumerate(seen)] or [np.zeros(0, np.int64)])
    seen_items = np.concatenate(list(seen) or [np.zeros(0, np.int64)]).astype(np.int64)
    # Seen items as positions in `cand` (items outside the candidates need no mask).
    pos = np.searchsorted(cand, seen_items)
    inside = (pos < n_items) & (cand[np.minimum(pos, n_items - 1)] == seen_items)
    seen_rows, seen_cols = seen_rows[inside], pos[inside]
    step = max(kk, block_cells // n_users)
    for j0 in range(0, n_items, step):
        j1 = min(n_items, j0 + step)
        block = M[cand[j0:j1]] if candidates is not None else M[j0:j1]
        S = P @ block.T  # (users, items in block)
        sel = (seen_cols >= j0) & (seen_cols < j1)
        S[seen_rows[sel], seen_cols[sel] - j0] = -np.inf
        width = j1 - j0
        if width > kk:
            part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(width), (n_users, width))
        cand_s = np.concatenate([top_s, np.take_along_axis(S, part, axis=1)], axis=1)
        cand_i = np.concatenate([top_i, part + j0], axis=1)
        keep = np.argpartition(-cand_s, kk - 1, axis=1)[:, :kk]
        top_s = np.take_along_axis(cand_s, keep, axis=1)
        top_i = np.take_along_axis(cand_i, keep, axis=1)
    out = []
    for r in range(n_users):
        order = np.lexsort((top_i[r], -top_s[r]))  # score desc, then item row (= item id)
        s_r, i_r = top_s[r][order], top_i[r][order]
        ok = (i_r >= 0) & np.isfinite(s_r)  # a user who has seen almost everything gets fewer
        out.append((cand[i_r[ok]], s_r[ok]))
    return out


def row_index(ids) -> dict:
    """Item id -> its row in the catalogue ``ids``."""
    return {item: i for i, item in enumerate(ids)}


def history_rows(history, index: dict, *, with_own: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A user's history entries (structs with ``item``, ``w`` and, ``with_own``, ``own``)
    whose item is in ``index``, as (catalogue rows, weights float64, own flags), sorted
    by item id: the same profile whatever order the history arrived in, so reruns give
    identical scores."""
    h = sorted((x["item"], x["w"], bool(x["own"]) if with_own else False)
               for x in history if x["item"] in index)
    return (np.array([index[item] for item, _, _ in h], dtype=np.int64),
            np.array([w for _, w, _ in h], dtype=np.float64), np.array([own for _, _, own in h], dtype=bool))


def unit_profile(weights: np.ndarray, m: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """The weighted sum of ``m``'s ``rows`` (in float64), L2-normalised, as float32;
    None when it is zero."""
    p = weights @ m[rows].astype(np.float64)
    norm = np.linalg.norm(p)
    return (p / norm).astype(np.float32) if norm > 0 else None


def most_similar(m: np.ndarray, rows: np.ndarray, engaged: np.ndarray) -> np.ndarray:
    """For each of ``rows`` (recommended items), the row among ``engaged`` (the user's
    items) closest to it by dot product in ``m``: the "similar to what you engaged with"
    of the explanations and the hybrid's ``similar_to``. ``engaged`` must not be empty."""
    return engaged[np.argmax(m[rows] @ m[engaged].T, axis=1)]


def candidate_rows(ids: np.ndarray, candidates) -> np.ndarray | None:
    """The sorted catalogue rows of the ``candidates`` item ids (None: every item);
    candidates without a vector are left out."""
    if candidates is None:
        return None
    index = row_index(ids)
    return np.array(sorted(index[c] for c in set(candidates) if c in index), dtype=np.int64)


def aligned(ids: np.ndarray, vec_ids: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """``mat``'s rows (one per sorted ``vec_ids``) placed at the rows of the sorted ``ids``
    (float32); zeros where an id has no row."""
    out = np.zeros((len(ids), mat.shape[1] if mat.ndim == 2 and mat.size else 1), dtype=np.float32)
    if len(vec_ids):
        pos = np.searchsorted(ids, vec_ids)
        ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == vec_ids)
        out[pos[ok]] = mat[ok]
    return out


def unit_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)


def centre(mat: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """L2-normalise the rows, subtract their mean, normalise again (float32 out).

    ``mean``: subtract this mean of unit rows instead (new items placed in the space of
    a catalogue centred earlier, as the streaming path does)."""
    unit = unit_rows(mat.astype(np.float64))
    if mean is not None:
        unit = unit_rows(unit - np.asarray(mean, dtype=np.float64)[None, :])
    elif len(unit) > 1:
        unit = unit_rows(unit - unit.mean(axis=0))
    return unit.astype(np.float32)


def catalogue(item_vecs: DataFrame, col_item: str) -> tuple[np.ndarray, np.ndarray]:
    """The catalogue on the driver (bounded by its size), through Arrow: ids sorted, and
    their vectors as one float32 matrix."""
    import pyarrow.compute as pc

    table = to_arrow(item_vecs.where(F.col("vector").isNotNull())
                     .select(F.col(col_item).cast("string").alias("item"), F.col("vector").cast("array<float>")))
    ids = np.array(table.column("item").to_pylist(), dtype=object)
    if len(ids) == 0:
        return ids, np.zeros((0, 0), dtype=np.float32)
    vectors = table.column("vector").combine_chunks()
    sizes = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    if sizes.min() != sizes.max():
        raise ValueError(f"item vectors differ in length ({sizes.min()} to {sizes.max()}); one model per catalogue")
    mat = pc.list_flatten(vectors).to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(ids), -1)
    order = np.argsort(ids.astype(str), kind="stable")
    return ids[order], np.ascontiguousarray(mat[order])


def vectors_frame(spark, ids: np.ndarray, mat: np.ndarray, col_item: str = "item_id") -> DataFrame:
    """The inverse of ``catalogue``: (item, vector array<float>) rows from driver arrays,
    through Arrow (bounded by the catalogue the driver already holds)."""
    import pyarrow as pa

    mat = np.ascontiguousarray(mat, dtype=np.float32)
    offsets = pa.array(np.arange(0, mat.size + 1, max(mat.shape[1], 1) if mat.ndim == 2 else 1, dtype=np.int32))
    table = pa.table({col_item: pa.array([str(i) for i in ids], pa.string()),
                      "vector": pa.ListArray.from_arrays(offsets, pa.array(mat.ravel(), pa.float32()))})
    return from_arrow(spark, table, f"{col_item} string, vector array<float>")
