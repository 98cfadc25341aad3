"""The hybrid recommender (model ``hybrid``): candidates from every signal, one learned ranker.

1. **Candidates.** For each user, the union of the top ``hybrid.candidates`` unseen items
   of each source: ALS (dot product of factors), transformer content and Word2Vec content
   (cosine to the user's centred profile), and popularity. Every candidate gets every
   feature, whichever source proposed it.
2. **Features** per (user, item): the ALS score, the two content cosines, each of those
   three standardised over the user's candidates (a score relative to the user's other
   options transfers between the ranker's fit and the serving fit), reciprocal rank
   in each source's list (0 when absent), the item's popularity (log of its train users),
   recency (log days since its last train interaction), age (log days since it was
   posted), and the user's activity (log of their train items).
3. **Ranker.** Spark ML logistic regression (standardised features; ``hybrid.objective``
   pairwise: on feature differences between engaged and other candidates of one user,
   or pointwise: on the candidates themselves) trained on a validation split carved from
   train: the components are fitted on the rest of train,
   candidates are generated for every user, and a candidate's label is whether the user
   engaged with it in the validation part. The components are then refitted on all of
   train and the ranker scores the new candidates; the top k per user are written with
   each signal's contribution in ``components`` and an explanation naming the signal
   that contributed most ("similar to <item>, which you engaged with", ...).

Cold start: ``build_catalogue(allowed=...)`` restricts every source to the allowed items
(the cold items of the ``cold_items`` protocol), whose ALS factors come from the bridge
(``socialrec.models.als.bridge``); ``popular=False`` leaves popularity out (the ablation
``hybrid-no-popular``).

Candidate generation runs in ``mapInPandas`` over blocks of users against broadcast item
matrices (``socialrec.models.retrieval``): users x items rows never exist in Spark, only users x
(a few hundred candidates).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.choices import HYBRID_FEATURES
from socialrec.models.retrieval import (
    aligned,
    candidate_rows,
    catalogue,
    centre,
    history_rows,
    row_index,
    topk_block,
    unit_profile,
    unit_rows,
    users_per_block,
    vectors_frame,
)

log = logging.getLogger(__name__)

FEATURES = HYBRID_FEATURES  # the candidate columns, declared with the configuration's choices
SOCIAL_FEATURES = FEATURES[FEATURES.index("social"):FEATURES.index("trending")]
CAND_SCHEMA = ("user_id string, item_id string, " + ", ".join(f"{f} double" for f in FEATURES)
               + ", similar_to string, label double")


@dataclass
class Catalogue:
    """Everything about the items that candidate generation needs, aligned on ``ids``."""

    ids: np.ndarray  # sorted item ids
    als: np.ndarray | None  # item factors (zeros where an item has none)
    content: dict  # name -> centred, normalised item vectors (zeros where missing)
    popularity: np.ndarray  # train users per item
    recency_days: np.ndarray  # days since the item's last train interaction (large if none)
    age_days: np.ndarray  # days since the item was posted (large if unknown)
    allowed: np.ndarray | None = None  # rows that may be recommended (cold-start protocol); None: all
    popular: bool = True  # whether popularity proposes candidates and feeds features (off: the ablation)
    graph: np.ndarray | None = None  # items in node-embedding space: unit mean of their train users' node vectors
    trend: np.ndarray | None = None  # engagement velocity (weight per hour) over hybrid.trend_hours to "now"


def build_catalogue(train: DataFrame, items: DataFrame, *, als_items: DataFrame | None, content: dict,
                    allowed: list[str] | None = None, popular: bool = True,
                    graph_items: DataFrame | None = None, trend_hours: float | None = None) -> Catalogue:
    """Driver-side item arrays (bounded by the catalogue size). ``allowed``: the only
    items that may be recommended (None: all); ``popular`` false leaves popularity out;
    ``graph_items`` (item_id, vector): items in node-embedding space (the social signal);
    ``trend_hours``: the trending signal, each item's engagement velocity over that many
    hours up to the newest train pair (``socialrec.features.trending.velocity``, the definition
    the streaming path's ``trending`` table follows)."""
    from socialrec.features.trending import velocity

    t_ref = train.agg(F.max(C.TS)).first()[0]  # one value: "now" for recency, age and velocity
    stats = items.select(C.ITEM, C.CREATED_AT).join(
        train.groupBy(C.ITEM).agg(F.countDistinct(C.USER).alias("n"), F.max(C.TS).alias("last")), C.ITEM, "left")
    if trend_hours:
        v = velocity(train, as_of=t_ref, window_minutes=int(round(trend_hours * 60)))
        stats = stats.join(v.select(C.ITEM, F.col("velocity").alias("trend")), C.ITEM, "left")
    else:
        stats = stats.withColumn("trend", F.lit(None).cast("double"))
    days = lambda col: (F.lit(t_ref).cast("double") - F.col(col).cast("double")) / 86400.0  # noqa: E731
    pdf = stats.select(F.col(C.ITEM).cast("string").alias("item"), F.coalesce("n", F.lit(0)).alias("n"),
                       F.coalesce(days("last"), F.lit(3650.0)).alias("rec"),
                       F.coalesce(days(C.CREATED_AT), F.lit(3650.0)).alias("age"),
                       F.coalesce("trend", F.lit(0.0)).alias("trend")).toPandas()  # one row per item
    pdf = pdf.sort_values("item", kind="stable")
    ids = pdf["item"].to_numpy(dtype=object)
    mats = {}
    for name, vecs in content.items():
        vid, m = catalogue(vecs, C.ITEM)
        mats[name] = aligned(ids, vid, centre(m))
    als = None
    if als_items is not None:
        vid, m = catalogue(als_items, C.ITEM)
        als = aligned(ids, vid, m)
    graph = None
    if graph_items is not None:
        vid, m = catalogue(graph_items, C.ITEM)
        graph = unit_rows(aligned(ids, vid, m)) if len(vid) else None
    pop = pdf["n"].to_numpy(dtype=np.float64)
    return Catalogue(ids=ids, als=als, content=mats, popularity=pop if popular else np.zeros_like(pop),
                     recency_days=np.maximum(pdf["rec"].to_numpy(dtype=np.float64), 0.0),
                     age_days=np.maximum(pdf["age"].to_numpy(dtype=np.float64), 0.0),
                     allowed=candidate_rows(ids, allowed), popular=popular, graph=graph,
                     trend=pdf["trend"].to_numpy(dtype=np.float64) if trend_hours else None)


def candidates(train: DataFrame, cat: Catalogue, *, als_users: DataFrame | None, n_per_source: int = 50,
               truth: DataFrame | None = None, block_cells: int = 1 << 24,
               social: DataFrame | None = None) -> DataFrame:
    """Candidate rows with features (``CAND_SCHEMA``); ``label`` is 1.0 where the pair is
    in ``truth`` (user, item), else 0.0 (null without truth).

    ``social`` (the social signal; ``social_inputs``): per user_id, ``node`` (their node
    embedding), ``profile`` (their neighbour-aggregated profile, in the transformer
    space) and ``friends`` (array of (item, n, days): items the people they follow
    engaged with, how many did, days since the latest)."""
    spark = train.sparkSession
    b_cat = spark.sparkContext.broadcast(cat)
    users = train.groupBy(F.col(C.USER).alias("user_id")).agg(
        F.collect_list(F.struct(F.col(C.ITEM).cast("string").alias("item"),
                                F.col(C.WEIGHT).cast("double").alias("w"))).alias("history"))
    if als_users is not None:
        users = users.join(als_users.select(F.col(C.USER).alias("user_id"), F.col("vector").alias("als")),
                           "user_id", "left")
    else:
        users = users.withColumn("als", F.lit(None).cast("array<float>"))
    truth_lists = None if truth is None else truth.groupBy(F.col(C.USER).alias("user_id")).agg(
        F.collect_list(F.col(C.ITEM).cast("string")).alias("truth"))
    if truth_lists is not None:
        users = users.join(truth_lists, "user_id", "left")
    else:
        users = users.withColumn("truth", F.lit(None).cast("array<string>"))
    if social is not None:
        # Users without a pair in train but with a place in the graph get candidates too
        # (from the social sources only): the new users a social signal is for.
        newcomers = (social.select(F.col(C.USER).alias("user_id")).join(users.select("user_id"), "user_id", "left_anti")
                     .select("user_id", F.array().cast("array<struct<item:string,w:double>>").alias("history"),
                             *[F.lit(None).cast(t).alias(c) for c, t in (("als", "array<float>"),
                                                                        ("truth", "array<string>"))]))
        if truth_lists is not None:
            newcomers = newcomers.drop("truth").join(truth_lists, "user_id", "left")
        users = users.unionByName(newcomers.select(*users.columns)).join(
            social.select(F.col(C.USER).alias("user_id"), "node", "profile", "friends"), "user_id", "left")
    else:
        users = (users.withColumn("node", F.lit(None).cast("array<float>"))
                 .withColumn("profile", F.lit(None).cast("array<float>"))
                 .withColumn("friends", F.lit(None).cast("array<struct<item:string,n:double,days:double>>")))
    labelled = truth is not None

    def gen(batches):
        c = b_cat.value
        index = row_index(c.ids)
        pop_score = np.log1p(c.popularity).astype(np.float32)
        per_block = users_per_block(len(c.ids), block_cells)
        for pdf in batches:
            for start in range(0, len(pdf), per_block):
                yield _gen_block(pdf.iloc[start:start + per_block], c, index, pop_score, n_per_source, labelled)

    return users.mapInPandas(gen, CAND_SCHEMA)


def _gen_block(block: pd.DataFrame, c: Catalogue, index: dict, pop_score: np.ndarray, n: int, labelled: bool):
    n_users = len(block)
    hist = [history_rows(history, index)[:2] for history in block["history"]]
    seen = [np.unique(idx) for idx, _ in hist]
    vectors: dict[str, np.ndarray] = {}
    if c.als is not None:
        U = np.stack([np.asarray(v, dtype=np.float32) if v is not None else np.zeros(c.als.shape[1], np.float32)
                      for v in block["als"]])
        vectors["als"] = (U, c.als)
    for name, m in c.content.items():
        P = np.zeros((n_users, m.shape[1]), dtype=np.float32)
        for r, (idx, w) in enumerate(hist):
            profile = unit_profile(w, m, idx) if len(idx) else None
            if profile is not None:
                P[r] = profile
        vectors[name] = (P, m)
    lists = {}
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
    for name, (P, m) in vectors.items():
        found = topk_block(P, seen, m, n, candidates=c.allowed)
        lists[name] = [found[r] if P[r].any() else empty for r in range(n_users)]  # no vector: no list
    if c.popular:
        allowed = c.allowed
        if allowed is not None:  # cold start: only items someone engaged with (cold items have
            # none, and an all-zero list would rank them by item id, which on MovieLens
            # follows popularity: a tree ranker found it)
            allowed = np.intersect1d(allowed, np.flatnonzero(c.popularity > 0))
        lists["popular"] = topk_block(np.ones((n_users, 1), np.float32), seen, pop_score[:, None], n,
                                      candidates=allowed)
    if c.trend is not None:  # the items gathering engagement fastest (only those with any)
        rising = np.flatnonzero(c.trend > 0)
        if c.allowed is not None:
            rising = np.intersect1d(rising, c.allowed)
        lists["trending"] = topk_block(np.ones((n_users, 1), np.float32), seen,
                                       np.log1p(c.trend).astype(np.float32)[:, None], n, candidates=rising)
    social = _social_block(block, c, index, seen, n)
    for name in ("graph", "profile"):
        if name in social:
            P, m = social[name]
            found = topk_block(P, seen, m, n, candidates=c.allowed)
            lists[name] = [found[r] if P[r].any() else empty for r in range(n_users)]
    if social.get("friends") is not None:
        lists["social"] = social["friends_top"]
    out: dict[str, list] = {col: [] for col in ("user_id", "item_id", *FEATURES, "similar_to", "label")}
    sources = {"als": "rr_als", "transformer": "rr_transformer", "w2v": "rr_w2v", "popular": "rr_popular",
               "social": "rr_social", "graph": "rr_graph", "profile": "rr_profile", "trending": "rr_trending"}
    for r, user in enumerate(block["user_id"]):
        found = [per_user[r][0] for per_user in lists.values()]
        if not any(len(f) for f in found):
            continue
        cand = np.unique(np.concatenate([np.asarray(f, dtype=np.int64) for f in found]))  # sorted item rows
        nc = len(cand)
        for feature in sources.values():
            out[feature].append(np.zeros(nc))
        for name, per_user in lists.items():  # reciprocal rank in each source's list (0 when absent)
            items = np.asarray(per_user[r][0], dtype=np.int64)
            if len(items):
                out[sources[name]][-1][np.searchsorted(cand, items)] = 1.0 / np.arange(1, len(items) + 1)
        feats = {}
        for name in ("als", "transformer", "w2v"):
            if name in vectors:
                P, m = vectors[name]
                feats[name] = m[cand] @ P[r]
            else:
                feats[name] = np.zeros(nc, np.float32)
        similar = np.full(nc, None, dtype=object)
        max_sim = np.zeros(nc)
        idx, _ = hist[r]
        sim_space = "transformer" if "transformer" in vectors else ("w2v" if "w2v" in vectors else None)
        if sim_space and len(idx):
            m = vectors[sim_space][1]
            sims = m[cand] @ m[idx].T  # candidates x history (what retrieval.most_similar compares)
            similar = c.ids[idx[np.argmax(sims, axis=1)]]
            max_sim = sims.max(axis=1).astype(np.float64)
        truth = set(block["truth"].iloc[r]) if labelled and block["truth"].iloc[r] is not None else set()
        feats["popularity"] = np.log1p(c.popularity[cand])
        for name in ("graph", "profile"):
            if name in social:
                P, m = social[name]
                feats[name] = m[cand] @ P[r]
            else:
                feats[name] = np.zeros(nc, np.float32)
        friends = social["friends"][r] if social.get("friends") is not None else {}
        feats["social"] = np.log1p(np.array([friends.get(int(i), (0.0, 0.0))[0] for i in cand], dtype=np.float64))
        social_recency = np.log1p(np.array([friends.get(int(i), (0.0, 3650.0))[1] for i in cand], dtype=np.float64))
        feats["trending"] = np.log1p(c.trend[cand]) if c.trend is not None else np.zeros(nc)
        for name in ("als", "transformer", "w2v", "popularity", "social", "graph", "profile", "trending"):
            f = feats[name].astype(np.float64)  # standardised over this user's candidates
            sd = f.std()
            out[f"{name}_z"].append((f - f.mean()) / sd if sd > 0 else np.zeros(nc))
        for name in ("als", "transformer", "w2v", "popularity", "social", "graph", "profile", "trending"):
            out[name].append(feats[name].astype(np.float64))
        out["recency"].append(np.log1p(c.recency_days[cand]))
        out["age"].append(np.log1p(c.age_days[cand]))
        out["activity"].append(np.full(nc, float(np.log1p(len(idx)))))
        out["social_recency"].append(social_recency)
        out["max_sim"].append(max_sim)
        out["n_sources"].append(sum((out[f][-1] > 0).astype(np.float64) for f in sources.values()))
        out["user_id"].append(np.full(nc, user, dtype=object))
        out["item_id"].append(c.ids[cand])
        out["similar_to"].append(similar)
        out["label"].append(np.array([1.0 if c.ids[i] in truth else 0.0 for i in cand]) if labelled
                            else np.full(nc, None, dtype=object))
    columns = ["user_id", "item_id", *FEATURES, "similar_to", "label"]
    if not out["user_id"]:
        return pd.DataFrame([], columns=columns)
    return pd.DataFrame({col: np.concatenate(out[col]) for col in columns})


def social_inputs(part: DataFrame, graph: DataFrame, cat: Catalogue, *, nodes: DataFrame | None,
                  hops: int = 1, attention: float = 0.0, limit: int = 500,
                  recent_days: float | None = None) -> DataFrame:
    """The social signal for ``candidates`` from the pairs of ``part`` and the graph
    (src, dst, weight): per user, their node vector (``nodes``: user_id, vector), their
    neighbour-aggregated profile (``socialrec.features.graph.aggregate_profiles`` over history
    profiles built from the catalogue's centred transformer vectors, so profiles and
    items share one space) and their friends' items with counts and ages in days. Sets
    ``cat.graph``: each item as the unit pair-weighted mean of its users' node vectors."""
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.ml.stat import Summarizer

    from socialrec.features import graph as G

    spark = part.sparkSession
    # Train users and everyone with an edge: users without train pairs can still be served.
    out = part.select(C.USER).unionByName(graph.select(F.col("src").alias(C.USER))).distinct()
    if nodes is not None:
        nv = nodes.select(C.USER, F.col("vector").alias("node"))
        iv = (part.select(C.USER, C.ITEM, F.col(C.WEIGHT).cast("double").alias("_w")).where(F.col("_w") > 0)
              .join(nv, C.USER)
              .groupBy(C.ITEM).agg(Summarizer.mean(array_to_vector("node"), F.col("_w")).alias("_m"))
              .select(C.ITEM, vector_to_array("_m", "float32").alias("vector")))
        vid, m = catalogue(iv, C.ITEM)
        cat.graph = unit_rows(aligned(cat.ids, vid, m)) if len(vid) else None
        out = out.join(nv, C.USER, "left")
    else:
        out = out.withColumn("node", F.lit(None).cast("array<float>"))
    if "transformer" in cat.content:
        m = cat.content["transformer"]
        keep = m.any(axis=1)
        items = vectors_frame(spark, cat.ids[keep], m[keep])  # the catalogue's centred vectors
        own = G.history_profiles(part, items)
        prof = G.aggregate_profiles(own, graph, hops=hops, attention=attention)
        out = out.join(prof.select(C.USER, F.col("vector").alias("profile")), C.USER, "left")
    else:
        out = out.withColumn("profile", F.lit(None).cast("array<float>"))
    t_ref = part.agg(F.max(F.unix_micros(C.TS))).first()[0]  # one value: "now" for the friends' recency
    fr = G.social_items(part, graph, limit=limit, recent_days=recent_days)
    fr = fr.groupBy(C.USER).agg(F.collect_list(F.struct(
        F.col(C.ITEM).cast("string").alias("item"), F.col("n_people").cast("double").alias("n"),
        F.greatest(F.lit(0.0), (F.lit(t_ref) - F.unix_micros("last")) / F.lit(86400e6)).alias("days"))).alias("friends"))
    return out.join(fr, C.USER, "left")


def _social_block(block: pd.DataFrame, c: Catalogue, index: dict, seen: list, n: int) -> dict:
    """The social signal's inputs for a block of users: ``graph`` / ``profile`` as
    (user matrix, item matrix) for retrieval and features, ``friends`` as one dict per
    user (item row -> (people, days)) and ``friends_top`` their top-n item rows (by
    people, then recency, then item id), restricted to the allowed items."""
    out: dict = {}
    n_users = len(block)
    if c.graph is not None and block["node"].notna().any():
        P = np.zeros((n_users, c.graph.shape[1]), dtype=np.float32)
        for r, v in enumerate(block["node"]):
            if v is not None and len(v) == c.graph.shape[1]:
                P[r] = np.asarray(v, dtype=np.float32)
        out["graph"] = (unit_rows(P), c.graph)
    if "transformer" in c.content and block["profile"].notna().any():
        m = c.content["transformer"]
        P = np.zeros((n_users, m.shape[1]), dtype=np.float32)
        for r, v in enumerate(block["profile"]):
            if v is not None and len(v) == m.shape[1]:
                P[r] = np.asarray(v, dtype=np.float32)
        out["profile"] = (unit_rows(P), m)
    if block["friends"].notna().any():
        allowed = None if c.allowed is None else set(c.allowed.tolist())
        dicts, tops = [], []
        for r, fr in enumerate(block["friends"]):
            d = {}
            for x in (fr if fr is not None else []):
                i = index.get(x["item"])
                if i is not None:
                    d[i] = (float(x["n"]), float(x["days"]))
            dicts.append(d)
            own = set(seen[r].tolist())
            rows = sorted((i for i in d if i not in own and (allowed is None or i in allowed)),
                          key=lambda i: (-d[i][0], d[i][1], i))[:n]
            tops.append((np.array(rows, dtype=np.int64), None))
        out["friends"], out["friends_top"] = dicts, tops
    return out


def train_ranker(cands: DataFrame, *, objective: str = "pairwise", reg: float = 0.0, max_iter: int = 100,
                 negatives: int = 20, seed: int = 42):
    """Logistic regression on the labelled candidates; returns its weights per feature
    (the linear score w.x that ``rank_with`` ranks by; the intercept cannot change an order).

    ``pointwise``: one row per candidate, label = engaged in validation. ``pairwise``
    (RankNet with a linear scorer): for each user, each engaged candidate is paired with
    up to ``negatives`` of the user's other candidates (a seeded hash sample); the model
    learns w from the feature differences (label 1) and their negations (label 0),
    without intercept, so only the order within a user's list is learned."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    n_pos = cands.where(F.col("label") == 1.0).limit(1).count()
    if n_pos == 0:
        raise RuntimeError("hybrid: no validation pair is among the candidates; raise hybrid.candidates")
    if objective == "pointwise":
        rows, intercept = cands, True
    elif objective == "pairwise":
        pos = cands.where(F.col("label") == 1.0).select("user_id", *[F.col(f).alias(f"p_{f}") for f in FEATURES])
        w = Window.partitionBy("user_id").orderBy(F.xxhash64("item_id", F.lit(seed)), "item_id")
        neg = (cands.where(F.col("label") == 0.0).withColumn("_n", F.row_number().over(w))
               .where(F.col("_n") <= negatives).select("user_id", *[F.col(f).alias(f"n_{f}") for f in FEATURES]))
        pairs = pos.join(neg, "user_id")
        diff = [(F.col(f"p_{f}") - F.col(f"n_{f}")).alias(f) for f in FEATURES]
        rows = pairs.select(*diff, F.lit(1.0).alias("label")).unionByName(
            pairs.select(*[(-d).alias(f) for d, f in zip(diff, FEATURES)], F.lit(0.0).alias("label")))
        intercept = False
    else:
        raise ValueError(f"hybrid.objective: {objective!r} is not one of pairwise, pointwise")
    pipe = Pipeline(stages=[VectorAssembler(inputCols=list(FEATURES), outputCol="features"),
                            LogisticRegression(featuresCol="features", labelCol="label", regParam=reg,
                                               maxIter=max_iter, standardization=True, fitIntercept=intercept)])
    model = pipe.fit(rows)
    return dict(zip(FEATURES, model.stages[-1].coefficients.toArray().tolist()))


BLEND = ("als_z", "transformer_z", "w2v_z", "popularity_z")
# Which signal each blend feature belongs to (a left-out signal's features are not searched).
BLEND_SIGNAL = {"als_z": "als", "transformer_z": "transformer", "w2v_z": "w2v", "popularity_z": "popular",
             "social_z": "social", "graph_z": "social", "profile_z": "social", "trending_z": "trending"}
STEPS = (-0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0)


def coordinate_ascent(cands: DataFrame, truth: DataFrame, *, k: int, start: str = "als_z", rounds: int = 2,
                      features: tuple[str, ...] = BLEND, steps: tuple[float, ...] = STEPS,
                      min_gain: float = 1e-6) -> tuple[dict, float]:
    """Listwise ranker (coordinate ascent, Metzler and Croft 2007): a linear blend of
    per-user standardised scores whose weights maximise nDCG@k on ``truth`` directly.
    Starts from ``start`` alone (weight 1), then, feature by feature, tries each step
    added to its weight and keeps a change only if validation nDCG rises by more than
    ``min_gain`` (a noise floor: smaller gains on one validation split do not carry to
    test); ``rounds`` passes. Returns (weights over FEATURES, validation nDCG@k).

    How it runs: the candidates are packed once into one row per validation user (the
    searched features and relevance as arrays, in item-id order) and cached; the steps
    of one feature are then scored together in one ``mapInPandas`` pass (``trial_ndcg``),
    one Spark job per feature instead of one per step. Each trial's nDCG@k equals
    ``ranking_metrics`` over ``rank_with``'s top k (score desc, then item id)."""
    used = _searched(features, start)
    packed = _pack_lists(cands, truth, used).cache()  # read once per feature searched
    try:
        n_users = truth.select("user_id").distinct().count()

        def ndcg(trials: list[dict]) -> list[float]:
            return trial_ndcg(packed, trials, used, k=k, n_users=n_users)

        w = {f: 0.0 for f in FEATURES}
        w[start] = 1.0
        best = ndcg([w])[0]
        log.info("hybrid ranker: %s alone -> validation nDCG@%d %.4f", start, k, best)
        for _ in range(rounds):
            improved = False
            for f in features:
                if f == start:
                    continue
                scores = ndcg([{**w, f: round(w[f] + d, 4)} for d in steps])
                score, d = max(zip(scores, steps), key=lambda t: (t[0], -abs(t[1])))
                if score > best + min_gain:
                    w[f], best, improved = round(w[f] + d, 4), score, True
                    log.info("hybrid ranker: %s -> %+.2f: validation nDCG@%d %.4f", f, w[f], k, best)
            if not improved:
                break
        return w, best
    finally:
        packed.unpersist()


def _searched(features: tuple[str, ...], start: str) -> tuple[str, ...]:
    """The features a listwise search reads, in FEATURES order (the order scores are summed in)."""
    return tuple(f for f in FEATURES if f in set(features) | {start})


def cross_checked_blend(folds: list[tuple[DataFrame, DataFrame]], *, k: int, start: str = "als_z",
                        features: tuple[str, ...] = BLEND, min_gain: float = 1e-6) -> tuple[dict, dict]:
    """``coordinate_ascent`` on the (candidates, truth) lists of every fold together, kept
    only if blends learned the same way without one fold beat ``start`` alone on that
    fold: for each fold the search runs on the others and both weightings are scored on
    the held-out one; the blend stays if, over all held-out users, its mean nDCG@k is
    higher than ``start`` alone's, else ``start`` alone is returned (a blend that does
    not carry from some validation items to others would not carry to the test's).
    Returns (weights, {"held_out_gain": ..., "blend_kept": ...})."""
    union = lambda parts: functools.reduce(DataFrame.unionByName, parts)  # noqa: E731
    alone = {f: 0.0 for f in FEATURES}
    alone[start] = 1.0
    weights, _ = coordinate_ascent(union([c for c, _ in folds]), union([t for _, t in folds]), k=k, start=start,
                                   features=features, min_gain=min_gain)
    if weights == alone or len(folds) < 2:
        return weights, {"held_out_gain": 0.0, "blend_kept": weights != alone}
    used = _searched(features, start)
    blend_sum = alone_sum = 0.0
    n_total = 0
    for f, (cands, truth) in enumerate(folds):
        rest = [part for i, part in enumerate(folds) if i != f]
        w_f, _ = coordinate_ascent(union([c for c, _ in rest]), union([t for _, t in rest]), k=k, start=start,
                                   features=features, min_gain=min_gain)
        n = truth.select("user_id").distinct().count()
        held_blend, held_alone = trial_ndcg(_pack_lists(cands, truth, used), [w_f, alone], used, k=k, n_users=n)
        log.info("hybrid ranker: fold %d held out: blend %.4f, %s alone %.4f", f, held_blend, start, held_alone)
        blend_sum, alone_sum, n_total = blend_sum + held_blend * n, alone_sum + held_alone * n, n_total + n
    gain = (blend_sum - alone_sum) / max(n_total, 1)
    kept = gain > 0
    log.info("hybrid ranker: held-out gain of the blend over %s alone %+.4f: %s", start, gain,
             "blend kept" if kept else f"{start} alone")
    return (weights if kept else alone), {"held_out_gain": gain, "blend_kept": kept}


def _pack_lists(cands: DataFrame, truth: DataFrame, features: tuple[str, ...]) -> DataFrame:
    """One row per user with a ``truth`` pair and a candidate: ``n_rel`` (the user's
    distinct truth items, candidates or not), then the candidates in item-id order as
    arrays: ``rel`` (1.0 where the pair is in truth) and one per feature."""
    rel = truth.select("user_id", "item_id").distinct()
    n_rel = rel.groupBy("user_id").agg(F.count(F.lit(1)).alias("n_rel"))
    rows = (cands.select("user_id", "item_id", *features)
            .join(rel.withColumn("_rel", F.lit(1.0)), ["user_id", "item_id"], "left")
            .select("user_id", F.struct("item_id", F.coalesce("_rel", F.lit(0.0)).alias("rel"), *features).alias("_c")))
    lists = rows.groupBy("user_id").agg(F.sort_array(F.collect_list("_c")).alias("_c"))
    return lists.join(n_rel, "user_id").select(
        F.col("n_rel").cast("int"), F.col("_c.rel").alias("rel"), *[F.col(f"_c.{f}").alias(f) for f in features])


def trial_ndcg(packed: DataFrame, trials: list[dict], features: tuple[str, ...], *, k: int,
               n_users: int) -> list[float]:
    """Mean nDCG@k over ``n_users`` truth users of the top k that each weight dict of
    ``trials`` ranks (score = sum of weight x feature, added in FEATURES order as
    ``rank_with`` does; ties by item id), from ``_pack_lists`` rows: one Spark job for all
    trials; users without candidates score 0."""
    W = np.array([[float(t.get(f, 0.0)) for f in features] for t in trials], dtype=np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))

    def score(batches):
        total = np.zeros(len(W))
        for pdf in batches:
            for n_rel, rel, *cols in zip(pdf["n_rel"], pdf["rel"], *(pdf[f] for f in features)):
                hit = np.asarray(rel, dtype=np.float64) > 0
                X = [np.asarray(c, dtype=np.float64) for c in cols]
                idcg = disc[:min(int(n_rel), k)].sum()
                for t, wt in enumerate(W):
                    s = np.zeros(len(hit))
                    for j in np.flatnonzero(wt):
                        s = s + wt[j] * X[j]
                    top = np.argsort(-s, kind="stable")[:k]  # desc; ties keep item-id order; null last
                    total[t] += disc[:len(top)][hit[top]].sum() / idcg
        yield pd.DataFrame({"trial": np.arange(len(W), dtype=np.int32), "dcg": total})

    sums = dict(packed.mapInPandas(score, "trial int, dcg double").groupBy("trial").agg(F.sum("dcg")).collect())
    return [float(sums.get(t, 0.0)) / n_users if n_users else 0.0 for t in range(len(W))]


def _score(weights: dict):
    return sum((F.lit(float(v)) * F.col(f) for f, v in weights.items() if v), F.lit(0.0))


EXPLAIN = {
    "als": "people who engaged with what you did also engaged with this",
    "transformer": "similar to {similar_to}, which you engaged with",
    "w2v": "similar to {similar_to}, which you engaged with (shared words)",
    "popular": "popular: {n} people engaged with this",
    "social": "{people} people you follow engaged with this",
    "graph": "popular with people close to you in the network",
    "profile": "matches what you and the people you follow engage with",
    "trending": "trending: engagement with it is rising fast",
}


# Which signal each candidate feature speaks for (the explanation names the signal whose
# features contributed most to the score); activity and n_sources speak for none.
GROUPS = {"als": ("als", "als_z", "rr_als"),
          "transformer": ("transformer", "transformer_z", "rr_transformer", "max_sim"),
          "w2v": ("w2v", "w2v_z", "rr_w2v"), "popular": ("rr_popular", "popularity", "popularity_z", "recency", "age"),
          "social": ("social", "social_z", "rr_social", "social_recency"), "graph": ("graph", "graph_z", "rr_graph"),
          "profile": ("profile", "profile_z", "rr_profile"), "trending": ("trending", "trending_z", "rr_trending")}


def rank_with(weights: dict, cands: DataFrame, k: int) -> DataFrame:
    """Top-k per user by the linear score sum(w_f * x_f), with each signal's contribution
    in ``components`` and an explanation naming the signal that contributed most."""
    contrib = {g: _score({f: weights.get(f, 0.0) for f in fs}) for g, fs in GROUPS.items()}
    return _top(cands.withColumn("p", _score(weights)), contrib, k)


def _top(scored: DataFrame, contrib: dict, k: int) -> DataFrame:
    """Top-k per user of ``scored`` by ``p`` (ties by item id), ``contrib`` (signal ->
    Column) as ``components`` and the explanation of the signal with the largest one."""
    w = Window.partitionBy("user_id").orderBy(F.desc("p"), F.asc("item_id"))
    top = scored.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k)
    comp = F.create_map(*[x for g in GROUPS for x in (F.lit(g), contrib[g])], F.lit("ranker"), F.col("p"))
    best = F.greatest(*[contrib[g] for g in GROUPS])
    n_people = F.round(F.expm1("popularity")).cast("long").cast("string")
    n_friends = F.round(F.expm1("social")).cast("long").cast("string")
    usable = {"transformer": F.col("similar_to").isNotNull(), "w2v": F.col("similar_to").isNotNull(),
              "social": F.col("social") > 0}  # a friend count of 0 explains nothing
    explanation = F.coalesce(*[
        F.when((contrib[g] == best) & usable.get(g, F.lit(True)),
               F.lit(EXPLAIN[g]) if "{" not in EXPLAIN[g] else
               F.replace(F.replace(F.replace(F.lit(EXPLAIN[g]), F.lit("{similar_to}"),
                                             F.coalesce("similar_to", F.lit(""))),
                                   F.lit("{n}"), n_people), F.lit("{people}"), n_friends))
        for g in GROUPS], F.lit(EXPLAIN["als"]))
    return top.select(F.col("user_id").alias(C.USER), F.col("item_id").alias(C.ITEM), F.col("rank").cast("int"),
                      F.col("p").alias(C.SCORE), comp.alias("components"), explanation.alias("explanation"))


# The boosted ranker's features: every candidate feature but the raw ALS score, a dot
# product whose scale belongs to one fit (the ranker learns on the validation fits and
# serves on the final one; its per-user standardised form, als_z, carries over).
XGB_FEATURES = tuple(f for f in FEATURES if f != "als")


def train_xgb_ranker(cands: DataFrame, *, features: tuple[str, ...] = XGB_FEATURES, trees: int = 100, depth: int = 3,
                     eta: float = 0.05, device: str = "cpu", workers: int | None = None, k: int = 10,
                     seed: int = 42):
    """Gradient-boosted trees ranking each user's candidates: ``xgboost.spark.SparkXGBRanker``
    with objective ``rank:ndcg`` (LambdaMART, the pairs of a user's list weighted by their
    nDCG@k change; 8 pairs per engaged item, drawn from the whole list), one query group
    per user, trained over ``workers`` Spark tasks
    (default: the session's parallelism; ``device`` cuda on GPU executors). Users without an
    engaged candidate are left out (a group without a positive has no pair to learn from).
    Returns (fitted SparkXGBRankerModel, {feature: share of the total gain})."""
    from xgboost.spark import SparkXGBRanker

    spark = cands.sparkSession
    engaged = cands.where(F.col("label") == 1.0).select("user_id").distinct()
    rows = (cands.join(engaged, "user_id", "left_semi")
            # xgboost keeps query ids as uint32 and needs them ascending: a 31-bit hash of the user
            # (two users sharing one merely share a group).
            .select(F.pmod(F.hash("user_id"), F.lit(2**31 - 1)).alias("qid"),
                    *[F.col(f).cast("double") for f in features], "label"))
    if rows.limit(1).count() == 0:
        raise RuntimeError("hybrid: no validation pair is among the candidates; raise hybrid.candidates")
    n_workers = workers or max(1, spark.sparkContext.defaultParallelism)
    ranker = SparkXGBRanker(features_col=list(features), label_col="label", qid_col="qid",
                            objective="rank:ndcg", eval_metric=f"ndcg@{k}", n_estimators=trees, max_depth=depth,
                            learning_rate=eta, device=device, num_workers=n_workers, random_state=seed,
                            lambdarank_pair_method="mean", lambdarank_num_pair_per_sample=8,
                            tree_method="hist")
    model = ranker.fit(rows)
    gain = model.get_booster().get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    shares = {f: gain.get(f, 0.0) / total for f in features}
    log.info("hybrid xgboost ranker: %d trees; gain shares %s", trees,
             ", ".join(f"{f} {v:.3f}" for f, v in sorted(shares.items(), key=lambda t: -t[1]) if v >= 0.005))
    return model, shares


def rank_with_model(model, cands: DataFrame, k: int, features: tuple[str, ...] = XGB_FEATURES) -> DataFrame:
    """Top-k per user by a ``train_xgb_ranker`` model's score, each signal's share of it
    in ``components`` (the sum of its features' SHAP contributions, xgboost's
    ``pred_contribs``) and the explanation of the signal the model credits most."""
    from pyspark.ml.functions import vector_to_array

    model = model.copy()
    model.set(model.pred_contrib_col, "_shap")
    scored = (model.transform(cands).withColumn("p", F.col(model.getOrDefault(model.predictionCol)).cast("double"))
              .withColumn("_contribs", vector_to_array("_shap")))
    at = {f: i for i, f in enumerate(features)}
    contrib = {g: sum((F.col("_contribs")[at[f]] for f in fs if f in at), F.lit(0.0)) for g, fs in GROUPS.items()}
    return _top(scored, contrib, k)
