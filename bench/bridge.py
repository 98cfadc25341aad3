"""The cold-start bridge (text -> item factors) made as strong as we could: every variant
on the same cold draws, the same Spark ALS factors, the same scoring.

    PYTHONPATH=lib .venv/bin/python -m bench.bridge --warehouse W [--seeds 42,43,44]

``W`` is a warehouse where the pipeline has ingested, tokenised, trained Word2Vec on and
embedded MovieLens-100K (e.g. ``socialrec --set dataset.name=movielens-100k --set
storage.root=W --set evaluation.protocol=cold_items run``). For each seed: the
``cold_items`` split (20% of the items, all their pairs to test), Spark ALS on train at
the project's tuned point (rank 64, reg 0.3, alpha 1, 15 iterations, seed 42), then each
way of giving the 346-ish cold items factors (or scores) from their text, scored by
nDCG@10 and AUC over the cold items for every user with a cold test item (numpy on the
driver; the catalogue is small):

* ``ridge, both`` (the library's ``als.bridge``): ridge from the concatenated, separately
  centred MiniLM and Word2Vec vectors to the warm items' factors (``als.bridge_reg`` 3);
  also at penalties 1 and 10, and from MiniLM alone;
* ``through U``: ridge onto the factors that best reproduce each warm item's column of
  the interaction matrix given the user factors (least squares, penalty 10): a low-rank
  regression onto the interactions rather than onto ALS's own item factors;
* ``direct``: ridge from the text straight to each warm item's column of interactions
  (one weight vector per user, no factors);
* ``in the ALS objective``: the map W that minimises implicit ALS's own loss
  sum c_ui (p_ui - u_u . W'e_i)^2 + lam ||W||^2 over the warm items with the user
  factors fixed (conjugate gradient; lam 1000, the best of 10-30000 on seed 42);
* ``+ popularity prior``: the library's bridge plus 0.3 x a ridge prediction of the
  item's log popularity from its text (per-user standardised scores).

Writes bench/results/bridge-<time>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse

import numpy as np
from pyspark.sql import functions as F

from bench import fmt, machine_label, save
from socialrec.core import columns as C
from socialrec.core.config import load_config
from socialrec.core.session import get_spark
from socialrec.data.split import cold_items_split
from socialrec.models import als as A
from socialrec.models.retrieval import aligned, catalogue, centre

DATASET = "movielens-100k"
DISC = 1.0 / np.log2(np.arange(2, 12))


def scores(T: np.ndarray, S: np.ndarray) -> tuple[float, float]:
    """Mean nDCG@10 and AUC of the scores ``S`` (users x cold items) against the test
    pairs ``T`` (same shape, bool) over the users with a test pair; ties by column."""
    nd, auc = [], []
    for u in np.flatnonzero(T.any(axis=1)):
        t = T[u]
        order = np.argsort(-S[u], kind="stable")
        top = order[:10]
        nd.append(DISC[:len(top)][t[top]].sum() / DISC[:min(int(t.sum()), 10)].sum())
        rank = np.empty(len(order))
        rank[order] = np.arange(len(order))
        pos = np.sort(rank[t])
        n_neg = len(t) - len(pos)
        auc.append((n_neg - (pos - np.arange(len(pos)))).sum() / (len(pos) * n_neg) if n_neg else 0.5)
    return float(np.mean(nd)), float(np.mean(auc))


def _z(S: np.ndarray) -> np.ndarray:
    return (S - S.mean(axis=1, keepdims=True)) / np.maximum(S.std(axis=1, keepdims=True), 1e-12)


def in_objective_map(X: np.ndarray, U: np.ndarray, R: np.ndarray, *, alpha: float, lam: float,
                     iters: int = 300) -> np.ndarray:
    """W minimising sum_ui (1 + alpha r_ui)(p_ui - u_u . W'x_i)^2 + lam ||W||^2 (dense,
    conjugate gradient): the text map learned inside implicit ALS's loss, U fixed."""
    Cm, P = 1.0 + alpha * R, (R > 0).astype(np.float64)

    def apply(W):
        return X.T @ ((Cm * (U @ (X @ W).T)).T @ U) + lam * W

    b = X.T @ ((Cm * P).T @ U)
    W = np.zeros((X.shape[1], U.shape[1]))
    r = b - apply(W)
    p, rs = r.copy(), float((r * r).sum())
    for _ in range(iters):
        Ap = apply(p)
        a = rs / float((p * Ap).sum())
        W += a * p
        r -= a * Ap
        rn = float((r * r).sum())
        if rn ** 0.5 < 1e-6 * float((b * b).sum()) ** 0.5:
            break
        p, rs = r + rn / rs * p, rn
    return W


def variants(R, T, Et, Ew, U, V, warm, cold) -> dict[str, tuple[float, float]]:
    """Every bridge variant's (nDCG@10, AUC) on one draw."""
    E = np.concatenate([Et, Ew], axis=1)
    Tc = T[:, cold]
    out = {}

    def via_factors(X, Y, reg):
        W, b = A.ridge_map(X[warm], Y[warm], reg)
        return U @ (X[cold] @ W + b).T

    base = via_factors(E, V, 3.0)
    out["ridge, both -> ALS factors (library, bridge_reg 3)"] = scores(Tc, base)
    out["ridge, both, bridge_reg 1"] = scores(Tc, via_factors(E, V, 1.0))
    out["ridge, both, bridge_reg 10"] = scores(Tc, via_factors(E, V, 10.0))
    out["ridge, MiniLM alone"] = scores(Tc, via_factors(Et, V, 3.0))
    Y = np.zeros_like(V)
    Y[warm] = np.linalg.solve(U.T @ U + 10.0 * np.eye(U.shape[1]), U.T @ R[:, warm]).T
    out["through U: ridge onto least-squares factors of the interactions"] = scores(Tc, via_factors(E, Y, 3.0))
    W, b = A.ridge_map(E[warm], R[:, warm].T, 10.0)
    out["direct: ridge from text to each item's interactions"] = scores(Tc, (E[cold] @ W + b).T)
    mx = E[warm].mean(axis=0)
    X = np.concatenate([E - mx, np.ones((len(E), 1))], axis=1)
    W = in_objective_map(X[warm], U, R[:, warm], alpha=1.0, lam=1000.0)
    out["in the ALS objective (CG, lam 1000)"] = scores(Tc, U @ (X[cold] @ W).T)
    pop = np.log1p((R > 0).sum(axis=0)).astype(np.float64)
    w, b0 = A.ridge_map(E[warm], pop[warm][:, None], 3.0)
    prior = (E[cold] @ w + b0)[:, 0]
    out["ridge, both + 0.3 x predicted popularity"] = scores(Tc, _z(base) + 0.3 * (prior - prior.mean()) / prior.std())
    return out


def draw(spark, wh: str, seed: int, params: A.ALSParams):
    """One cold draw as dense driver arrays (MovieLens-100K: 943 x 1,682)."""
    read = lambda t: spark.read.format("delta").load(f"{wh}/{t}").where(F.col("dataset") == DATASET)  # noqa: E731
    pairs = read("interactions").groupBy(C.USER, C.ITEM).agg(F.sum(C.WEIGHT).alias(C.WEIGHT))
    train, test = cold_items_split(pairs, 0.2, seed)
    train = train.cache()
    ids_t, Mt = catalogue(read("item_embeddings").select(C.ITEM, "vector"), C.ITEM)
    ids_w, Mw = catalogue(read("item_w2v").select(C.ITEM, "vector"), C.ITEM)
    ids = np.array(sorted(set(ids_t) | set(ids_w)), dtype=object)
    Et, Ew = aligned(ids, ids_t, centre(Mt)), aligned(ids, ids_w, centre(Mw))
    tr, te = train.toPandas(), test.toPandas()  # bounded: 100,000 pairs
    users = np.array(sorted(set(tr[C.USER]) | set(te[C.USER])), dtype=object)
    ui = {u: i for i, u in enumerate(users)}
    ii = {x: i for i, x in enumerate(ids)}
    R = np.zeros((len(users), len(ids)))
    R[[ui[u] for u in tr[C.USER]], [ii[i] for i in tr[C.ITEM]]] = tr[C.WEIGHT].to_numpy(dtype=float)
    T = np.zeros_like(R, dtype=bool)
    T[[ui[u] for u in te[C.USER]], [ii[i] for i in te[C.ITEM]]] = True
    users_map = A.new_id_map(pairs.select(F.col(C.USER).alias("id")))
    items_map = A.new_id_map(pairs.select(F.col(C.ITEM).alias("id")))
    uv, iv = A.fit_factors(train, users_map, items_map, params, seed=42)
    fu, U = catalogue(uv.select(C.USER, "vector"), C.USER)
    fi, V = catalogue(iv.select(C.ITEM, "vector"), C.ITEM)
    uv.unpersist(), iv.unpersist(), train.unpersist()
    cold = np.isin(ids, te[C.ITEM].unique())
    warm = (R > 0).any(axis=0)
    return (R, T, Et.astype(np.float64), Ew.astype(np.float64), aligned(users, fu, U).astype(np.float64),
            aligned(ids, fi, V).astype(np.float64), warm, cold)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warehouse", required=True, help="storage.root of a MovieLens-100K run with embeddings")
    ap.add_argument("--seeds", default="42,43,44")
    args = ap.parse_args(argv)
    cfg = load_config(overrides=[f"dataset.name={DATASET}", f"storage.root={args.warehouse}"])
    spark = get_spark(cfg.spark, cfg.jars)
    params = A.ALSParams(rank=64, reg=0.3, alpha=1.0, max_iter=15)
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed = {}
    for seed in seeds:
        per_seed[seed] = variants(*draw(spark, args.warehouse, seed, params))
        for name, (nd, auc) in per_seed[seed].items():
            print(f"seed {seed}: {name}: nDCG@10 {nd:.4f}, AUC {auc:.4f}", flush=True)
    names = list(per_seed[seeds[0]])
    table = []
    for name in names:
        nd = np.array([per_seed[s][name][0] for s in seeds])
        auc = np.array([per_seed[s][name][1] for s in seeds])
        table.append([name, *[f"{per_seed[s][name][0]:.4f} / {per_seed[s][name][1]:.4f}" for s in seeds],
                      f"{fmt(nd.mean(), '.4f')} ± {fmt(nd.std(), '.4f')}",
                      f"{fmt(auc.mean(), '.4f')} ± {fmt(auc.std(), '.4f')}"])
    save("bridge", machine_label(spark), ["variant", *[f"seed {s} nDCG@10 / AUC" for s in seeds],
                                          "nDCG@10 mean ± std", "AUC mean ± std"], table,
         {"seeds": seeds, "als": params.label(), "results": {str(s): per_seed[s] for s in seeds}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
