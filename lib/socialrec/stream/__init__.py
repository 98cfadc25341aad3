"""Fresh content in near-real time: ``socialrec stream``.

Two Structured Streaming queries read the Delta change data feed of the canonical tables
(so every new row, and every edit, is seen once, with the version and time of the commit
that brought it) and write with ``foreachBatch``:

**fresh** (``items``): per micro-batch

1. rows of the configured dataset that were inserted or updated are checked (rules in
   ``check_items``); a bad row goes to ``rejects`` (``source`` = ``stream:items@v<commit
   version>``, ``row`` = a hash of the row, ``raw`` = the row as JSON) and the others go on;
2. texts whose content hash is new are embedded by the batch stage's engine
   (``socialrec.features.embed.embedding_column``) and MERGEd into ``item_embeddings``, so the next
   batch ``embed`` keeps them;
3. the new vectors, centred with the catalogue mean the user profiles were built in
   (``socialrec.models.retrieval.centre``), are scored against the latest ``user_profiles``
   (``stream.sources``: history and/or social, the best counts) block by block in
   ``mapInPandas`` against the broadcast batch of new items, plus ``stream.follow_bonus``
   where the user follows the author; a user's own posts are skipped;
4. one MERGE into ``fresh_recommendations`` inserts the new rows at or above
   ``stream.min_score``, keeps the best ``stream.per_user`` rows per user, and deletes rows
   pushed out, rows whose item arrived more than ``stream.expiry_hours`` ago, rows of
   deleted items and the old rows of re-scored (edited) items.

**trending** (``interactions``): per micro-batch, inserted rows are checked
(``check_interactions``; bad ones to ``rejects``) and their count and weight are added
into ``trending`` per item and ``stream.trend_bucket_minutes`` bucket; velocity over a
sliding window is then a sum of buckets (``socialrec.features.trending.velocity``).

**Exactly once.** The checkpoint records which commits each micro-batch covered; after a
kill the unfinished micro-batch is replayed with the same rows and the same batch id.
Every write of the fresh query is a MERGE on keys whose result does not depend on how
often it ran (the ranking is recomputed from the table plus the batch), and the trending
MERGE, which adds, carries Delta's idempotent-write pair (the query id, the batch id):
a replayed batch whose addition was committed is skipped by Delta.

Triggers: ``available_now`` processes everything that has arrived and stops (tests,
scheduled jobs); ``continuous`` runs micro-batches every ``stream.interval`` until
stopped (Spark's experimental continuous-processing trigger cannot run ``foreachBatch``,
so "continuous" is processing-time micro-batches).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import EmbedConfig, StreamConfig
from socialrec.core.schemas import (
    EDGES,
    FRESH_RECOMMENDATIONS,
    INTERACTIONS,
    ITEM_EMBEDDINGS,
    ITEMS,
    REJECTS,
    TRENDING,
    USER_PROFILES,
    USERS,
    conform,
)
from socialrec.core.storage import Storage
from socialrec.data.ingest import CONTENT_EARLIEST, Rule, _blank, _num, _ts_rules
from socialrec.features.embed import content_hash, embed_texts, embedding_text, plan
from socialrec.features.trending import bucket_start
from socialrec.models.retrieval import centre, unit_rows, users_per_block

log = logging.getLogger(__name__)

CHANGE_TYPE, COMMIT_VERSION, COMMIT_TS = "_change_type", "_commit_version", "_commit_timestamp"
REASONS = {
    "history": "new post similar to what you engaged with",
    "social": "new post matching what the people you follow engage with",
    "follow": "new post from {author}, whom you follow",
}
FRESH_SCHEMA = "user_id string, item_id string, score double, reason string"


CRASH_ENV = "SOCIALREC_STREAM_CRASH"


def _crash_point(name: str) -> None:
    """Fault injection for the restart tests: when ``$SOCIALREC_STREAM_CRASH`` names this
    point, SIGKILL the process group (driver and JVM) here, mid-batch, as a crash would."""
    if name in os.environ.get(CRASH_ENV, "").split(","):
        log.warning("stream: crash point %s reached: killing the process group", name)
        os.killpg(os.getpgid(0), signal.SIGKILL)


# --------------------------------------------------------------------------- checks


def _checked(rows: DataFrame, rules: list[Rule], *, table: str, dataset: str,
             raw_cols: list[str]) -> tuple[DataFrame, DataFrame]:
    """Split change-feed rows into (accepted rows, rejects rows) by the first failed rule."""
    reason = F.coalesce(*[F.when(r.bad, r.reason if isinstance(r.reason, Column) else F.lit(r.reason)) for r in rules])
    fld = F.coalesce(*[F.when(r.bad, F.lit(r.field)) for r in rules])
    raw = F.to_json(F.struct(*[F.col(c) for c in raw_cols]))
    checked = rows.withColumn("_reason", reason).withColumn("_field", fld).withColumn("_raw", raw)
    ok = checked.where(F.col("_reason").isNull()).drop("_reason", "_field", "_raw")
    rejected = checked.where(F.col("_reason").isNotNull()).select(
        F.lit(dataset).alias(C.DATASET), F.lit(table).alias("table"),
        F.concat(F.lit(f"stream:{table}@v"), F.col(COMMIT_VERSION).cast("string")).alias("source"),
        F.xxhash64("_raw").alias("row"), F.col("_field").alias("field"), F.col("_reason").alias("reason"),
        F.col("_raw").alias("raw"))
    return ok, conform(rejected, REJECTS)


def check_items(rows: DataFrame, users: DataFrame, *, dataset: str, fields: list[str] | tuple[str, ...] = (C.TEXT,),
                strip_html: bool = True) -> tuple[DataFrame, DataFrame]:
    """Items from the change feed -> (accepted, rejects). Rejected: a blank item_id, an
    author who is not a user, no title and no text, nothing left to embed in
    ``fields`` once markup is removed, a creation time before 1800 or in the future, a
    second row of one item in one commit. Of several accepted versions of one item in a
    micro-batch the newest is kept (an edit supersedes)."""
    known = users.select(F.col(C.USER).alias("_author_id"), F.lit(True).alias("_author_ok")).distinct()
    rows = rows.join(known, F.col(C.AUTHOR) == F.col("_author_id"), "left").drop("_author_id")
    text = embedding_text(fields, html=strip_html)
    w = Window.partitionBy(C.ITEM, COMMIT_VERSION).orderBy(F.to_json(F.struct(*ITEMS.columns)))
    rows = rows.withColumn("_text", text).withColumn("_n", F.row_number().over(w))
    rules = [
        Rule(C.ITEM, _blank(F.col(C.ITEM)), "missing item_id"),
        Rule(C.AUTHOR, ~_blank(F.col(C.AUTHOR)) & F.col("_author_ok").isNull(),
             F.concat(F.lit("unknown author: "), F.col(C.AUTHOR))),
        Rule(C.TEXT, _blank(F.col(C.TITLE)) & _blank(F.col(C.TEXT)), "no title and no text"),
        Rule(C.TEXT, F.col("_text").isNull(),
             f"nothing to embed in {', '.join(fields)} once markup is removed"),
        *_ts_rules(C.CREATED_AT, F.col(C.CREATED_AT), F.col(C.CREATED_AT).cast("string"), False, CONTENT_EARLIEST),
        Rule(C.ITEM, F.col("_n") > 1, F.concat(F.lit("duplicate of another row of item "), F.col(C.ITEM),
                                               F.lit(" in commit v"), F.col(COMMIT_VERSION).cast("string"))),
    ]
    ok, rejected = _checked(rows, rules, table=ITEMS.name, dataset=dataset, raw_cols=ITEMS.columns)
    newest = Window.partitionBy(C.ITEM).orderBy(F.desc(COMMIT_VERSION))
    ok = ok.withColumn("_v", F.row_number().over(newest)).where(F.col("_v") == 1).drop("_v", "_n", "_author_ok")
    return ok, rejected


def check_interactions(rows: DataFrame, users: DataFrame, items: DataFrame, *, dataset: str,
                       event_weights: dict[str, float], max_weight: float) -> tuple[DataFrame, DataFrame]:
    """Interactions from the change feed -> (accepted, rejects). Rejected: an event kind
    not in ``event_weights``, a weight that is not a positive finite number or above
    ``max_weight``, a time before 1970 or in the future, an unknown user or item."""
    rows = (rows.join(users.select(F.col(C.USER).alias("_u"), F.lit(True).alias("_user_ok")).distinct(),
                      F.col(C.USER) == F.col("_u"), "left")
            .join(items.select(F.col(C.ITEM).alias("_i"), F.lit(True).alias("_item_ok")).distinct(),
                  F.col(C.ITEM) == F.col("_i"), "left"))
    w = F.col(C.WEIGHT)
    rules = [
        Rule(C.USER, _blank(F.col(C.USER)), "missing user_id"),
        Rule(C.ITEM, _blank(F.col(C.ITEM)), "missing item_id"),
        Rule(C.EVENT, ~F.col(C.EVENT).isin(*event_weights),
             F.concat(F.lit("unknown event kind: "), F.col(C.EVENT), F.lit(f" (known: {', '.join(event_weights)})"))),
        Rule(C.WEIGHT, (w <= 0) | F.isnan(w) | (w == float("inf")),
             F.concat(F.lit("weight must be a positive finite number: "), w.cast("string"))),
        Rule(C.WEIGHT, w > max_weight, F.concat(F.lit(f"weight above the maximum {_num(max_weight)}: "),
                                                w.cast("string"))),
        *_ts_rules(C.TS, F.col(C.TS), F.col(C.TS).cast("string"), True),
        Rule(C.USER, F.col("_user_ok").isNull(), F.concat(F.lit("unknown user: "), F.col(C.USER))),
        Rule(C.ITEM, F.col("_item_ok").isNull(), F.concat(F.lit("unknown item: "), F.col(C.ITEM))),
    ]
    ok, rejected = _checked(rows, rules, table=INTERACTIONS.name, dataset=dataset, raw_cols=INTERACTIONS.columns)
    return ok.drop("_u", "_i", "_user_ok", "_item_ok"), rejected


# --------------------------------------------------------------------------- scoring


def score_block(profiles: dict[str, np.ndarray], items: np.ndarray, *, follows: list[set[int]] | None = None,
                own: list[set[int]] | None = None, follow_bonus: float = 0.1, min_score: float = 0.2,
                per_user: int = 20) -> list[list[tuple[int, float, str]]]:
    """For each user row: up to ``per_user`` (item row, score, reason source) of the new
    ``items`` (rows: centred unit vectors), best first (ties by item row).

    ``profiles``: source name -> users x dim unit profiles (a zero row: the user has no
    profile of that source). A user's score for an item is the best cosine over the
    sources, plus ``follow_bonus`` when ``follows[r]`` holds the item row (then the reason
    is ``follow``); items in ``own[r]`` (their own posts) and scores below ``min_score``
    are left out."""
    names = [n for n in profiles if profiles[n].size]
    n_users = len(next(iter(profiles.values()))) if profiles else 0
    if not names or n_users == 0 or len(items) == 0:
        return [[] for _ in range(n_users)]
    S = np.stack([profiles[n] @ items.T for n in names])  # sources x users x items
    has = np.stack([profiles[n].any(axis=1) for n in names])  # sources x users
    S = np.where(has[:, :, None], S, -np.inf)
    best = S.argmax(axis=0)
    score = S.max(axis=0).astype(np.float64)
    out = []
    for r in range(n_users):
        fol = follows[r] if follows else set()
        mine = own[r] if own else set()
        row = []
        for j in range(len(items)):
            s = score[r, j]
            if not np.isfinite(s) or j in mine:
                continue
            reason = names[best[r, j]]
            if j in fol:
                s, reason = s + follow_bonus, "follow"
            if s >= min_score:
                row.append((j, float(s), reason))
        row.sort(key=lambda t: (-t[1], t[0]))
        out.append(row[:per_user])
    return out


# --------------------------------------------------------------------------- the queries


@dataclass
class StreamStats:
    """What the queries did, summed over their micro-batches (driver side)."""

    batches: dict[str, int] = field(default_factory=lambda: {"fresh": 0, "trending": 0})
    items: int = 0  # accepted new or edited items
    embedded: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {"items": 0, "interactions": 0})
    fresh_rows: int = 0  # rows scored into fresh_recommendations (before the cap)
    interactions: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"fresh": 0.0, "trending": 0.0})
    phases: dict[str, float] = field(default_factory=dict)  # fresh: seconds per phase, summed over batches


class FreshContent:
    """The ``foreachBatch`` functions of both queries, with what they need from conf."""

    def __init__(self, storage: Storage, *, dataset: str, stream: StreamConfig, emb: EmbedConfig,
                 event_weights: dict[str, float], max_weight: float, directed: bool = False,
                 checkpoint: str = ""):
        self.storage, self.dataset, self.cfg, self.emb = storage, dataset, stream, emb
        self.event_weights, self.max_weight, self.directed = event_weights, max_weight, directed
        self.checkpoint = checkpoint
        self.stats = StreamStats()
        self._mean: tuple[int, np.ndarray | None] | None = None  # (user_profiles version, catalogue mean)
        self._lock = threading.Lock()  # the two queries' batches may run at once (stats)
        self._rejects_lock = threading.Lock()
        self._broadcast = None  # the micro-batch's new items, released after its MERGE

    # ----------------------------------------------------------------- items
    def items_batch(self, batch: DataFrame, batch_id: int) -> None:
        start = time.perf_counter()
        spark = batch.sparkSession
        storage, ds = self.storage, self.dataset
        rows = batch.where(F.col(C.DATASET) == ds).persist()  # read by the checks, the deletes and the counts
        changed = rows.where(F.col(CHANGE_TYPE).isin("insert", "update_postimage"))
        deleted = rows.where(F.col(CHANGE_TYPE) == "delete").select(C.ITEM).distinct()
        ok, rejected = check_items(changed, storage.read(spark, USERS, ds), dataset=ds, fields=self.emb.fields,
                                   strip_html=self.emb.strip_html)
        ok = ok.persist()  # read by the count, the embedding and the scoring
        phases: dict[str, float] = {}
        try:
            t = time.perf_counter()
            n_rej = rejected.count()
            if n_rej:
                with self._rejects_lock:  # both queries write rejects: one MERGE at a time
                    storage.merge(rejected, REJECTS)
                log.warning("stream: %d new item row(s) rejected (see rejects, source stream:items@v...)", n_rej)
            n_ok = ok.count()
            phases["check"] = time.perf_counter() - t
            t = time.perf_counter()
            embedded = self._embed(spark, ok) if n_ok else 0
            phases["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            n_fresh = self._place(spark, ok, deleted, phases) if (n_ok or not deleted.isEmpty()) else 0
        finally:
            ok.unpersist()
            rows.unpersist()
        with self._lock:
            s = self.stats
            s.batches["fresh"] += 1
            s.items += n_ok
            s.embedded += embedded
            s.rejected["items"] += n_rej
            s.fresh_rows += n_fresh
            s.seconds["fresh"] += time.perf_counter() - start
            for k, v in phases.items():
                s.phases[k] = s.phases.get(k, 0.0) + v
        log.info("stream fresh batch %d: %d item(s) accepted, %d rejected, %d embedded, %d feed row(s) scored "
                 "in %.1f s (%s)", batch_id, n_ok, n_rej, embedded, n_fresh, time.perf_counter() - start,
                 ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))

    def _embed(self, spark: SparkSession, ok: DataFrame) -> int:
        """Embed the accepted items whose content hash is new; MERGE them into item_embeddings."""
        emb, storage, ds = self.emb, self.storage, self.dataset
        p = plan(emb)
        docs = ok.select(C.ITEM, F.col("_text"), content_hash(F.col("_text"), p.max_length).alias(C.CONTENT_HASH))
        existing = storage.read(spark, ITEM_EMBEDDINGS, ds).where(F.col(C.MODEL) == emb.model)
        todo = docs.join(existing.select(C.ITEM, C.CONTENT_HASH), [C.ITEM, C.CONTENT_HASH], "left_anti")
        new = embed_texts(todo, p, dataset=ds).persist()  # embedded once, read by the MERGE
        try:
            n = new.count()
            if n:
                storage.merge(new, ITEM_EMBEDDINGS)
        finally:
            new.unpersist()
        return n

    def _catalogue_mean(self, spark: SparkSession) -> np.ndarray | None:
        """The mean of the catalogue's unit vectors, the centre user profiles live around;
        computed again only when user_profiles has a new version (profiles rebuilt)."""
        from pyspark.ml.functions import array_to_vector
        from pyspark.ml.stat import Summarizer

        version = self.storage.version(spark, USER_PROFILES)
        if self._mean is not None and self._mean[0] == version:
            return self._mean[1]
        emb = self.storage.read(spark, ITEM_EMBEDDINGS, self.dataset).where(
            (F.col(C.MODEL) == self.emb.model) & F.col("vector").isNotNull())
        unit = F.transform("vector", lambda x: x / F.sqrt(F.aggregate("vector", F.lit(0.0), lambda a, y: a + y * y)))
        row = emb.select(array_to_vector(unit).alias("v")).agg(Summarizer.mean(F.col("v")).alias("m")).first()
        mean = None if row is None or row["m"] is None else np.asarray(row["m"].toArray(), dtype=np.float64)
        self._mean = (version, mean)
        return mean

    def _place(self, spark: SparkSession, ok: DataFrame, deleted: DataFrame, phases: dict | None = None) -> int:
        """Score the accepted items against the latest profiles; one MERGE into fresh_recommendations."""
        from socialrec.models.retrieval import catalogue

        st, storage, ds, emb = self.cfg, self.storage, self.dataset, self.emb
        t = time.perf_counter()
        cutoff = F.current_timestamp() - F.make_dt_interval(secs=F.lit(float(st.expiry_hours) * 3600.0))
        # Items posted before the expiry window are embedded but not pushed: not fresh.
        live = ok.where(F.col(C.CREATED_AT).isNull() | (F.col(C.CREATED_AT) >= cutoff)) \
            .where(F.col(COMMIT_TS) >= cutoff)
        vecs = (storage.read(spark, ITEM_EMBEDDINGS, ds).where(F.col(C.MODEL) == emb.model)
                .join(live.select(C.ITEM), C.ITEM, "left_semi"))
        ids, mat = catalogue(vecs, C.ITEM)  # bounded by the micro-batch
        author = {r[C.ITEM]: r[C.AUTHOR] for r in live.select(C.ITEM, C.AUTHOR).collect()}  # the micro-batch's
        scored = None
        if len(ids):
            M = centre(mat, self._catalogue_mean(spark))  # in the space the profiles were built in
            scored = self._score(spark, ids, M, [author[i] for i in ids])
            arrived = live.select(C.ITEM, F.col(COMMIT_TS).alias("arrived_at"))
            scored = scored.join(F.broadcast(arrived), C.ITEM)
        touched = ok.select(C.ITEM).unionByName(deleted).distinct()
        if phases is not None:
            phases["prepare"] = time.perf_counter() - t
        try:
            return self._merge_fresh(spark, scored, touched, cutoff, phases)
        finally:
            if self._broadcast is not None:
                self._broadcast.unpersist()
                self._broadcast = None

    def _score(self, spark: SparkSession, ids: np.ndarray, M: np.ndarray, authors: list) -> DataFrame:
        st, storage, ds = self.cfg, self.storage, self.dataset
        prof = (storage.read(spark, USER_PROFILES, ds)
                .where((F.col(C.MODEL) == self.emb.model) & F.col("source").isin(*st.sources))
                .groupBy(C.USER).agg(F.map_from_entries(F.collect_list(F.struct("source", "vector"))).alias("p")))
        author_set = sorted({a for a in authors if a})
        e = storage.read(spark, EDGES, ds).select(F.col(C.SRC).alias(C.USER), F.col(C.DST).alias("a"))
        if not self.directed:
            e = e.unionByName(storage.read(spark, EDGES, ds).select(F.col(C.DST).alias(C.USER), F.col(C.SRC).alias("a")))
        follows = (e.where(F.col("a").isin(*author_set)) if author_set else e.limit(0)) \
            .groupBy(C.USER).agg(F.collect_set("a").alias("follows"))
        users = prof.join(follows, C.USER, "left")
        b = self._broadcast = spark.sparkContext.broadcast((ids, M, authors))
        sources, bonus, min_score, cap = list(st.sources), st.follow_bonus, st.min_score, st.per_user
        dim = M.shape[1]

        def gen(batches):
            ids_, M_, authors_ = b.value
            by_author: dict = {}
            for j, a in enumerate(authors_):
                by_author.setdefault(a, set()).add(j)
            per = users_per_block(len(ids_))
            for pdf in batches:
                for s0 in range(0, len(pdf), per):
                    blk = pdf.iloc[s0:s0 + per]
                    P = {}
                    for src in sources:
                        m = np.zeros((len(blk), dim), dtype=np.float32)
                        for r, p in enumerate(blk["p"]):
                            v = dict(p).get(src) if p is not None else None
                            if v is not None and len(v) == dim:
                                m[r] = np.asarray(v, dtype=np.float32)
                        P[src] = unit_rows(m)
                    fol = [set().union(*(by_author.get(a, set()) for a in f)) if f is not None else set()
                           for f in blk["follows"]]
                    own = [by_author.get(u, set()) for u in blk[C.USER]]
                    found = score_block(P, M_, follows=fol, own=own, follow_bonus=bonus, min_score=min_score,
                                        per_user=cap)
                    out = [(u, ids_[j], s, REASONS[why].replace("{author}", str(authors_[j])))
                           for u, row in zip(blk[C.USER], found) for j, s, why in row]
                    yield pd.DataFrame(out, columns=["user_id", "item_id", "score", "reason"])

        return users.mapInPandas(gen, FRESH_SCHEMA)

    def _merge_fresh(self, spark: SparkSession, scored: DataFrame | None, touched: DataFrame, cutoff: Column,
                     phases: dict | None = None) -> int:
        """Insert the scored rows, keep the best ``per_user`` per user, delete expired rows
        and the old rows of touched (edited or deleted) items: one MERGE."""
        st, storage, ds = self.cfg, self.storage, self.dataset
        keys = [C.USER, C.ITEM]
        fresh = storage.read(spark, FRESH_RECOMMENDATIONS, ds)
        cols = [C.USER, C.ITEM, C.SCORE, "reason", "arrived_at"]
        if scored is None:
            scored = spark.createDataFrame([], "user_id string, item_id string, score double, reason string, "
                                               "arrived_at timestamp")
        scored = scored.select(*cols).persist()  # read by the ranking, the deletes and the count
        try:
            t = time.perf_counter()
            n = scored.count()
            if phases is not None:
                phases["score"] = time.perf_counter() - t
            t = time.perf_counter()
            old = fresh.select(*cols)
            expired = old.where(F.col("arrived_at") < cutoff)
            stale = old.join(touched, C.ITEM, "left_semi").join(scored.select(*keys), keys, "left_anti")
            kept = (old.where(F.col("arrived_at") >= cutoff).join(scored.select(C.USER).distinct(), C.USER, "left_semi")
                    .join(touched, C.ITEM, "left_anti"))
            both = kept.withColumn("_new", F.lit(False)).unionByName(scored.withColumn("_new", F.lit(True)))
            w = Window.partitionBy(C.USER).orderBy(F.desc(C.SCORE), F.asc(C.ITEM))
            ranked = both.withColumn("_rank", F.row_number().over(w))
            ups = ranked.where(F.col("_new") & (F.col("_rank") <= st.per_user)).withColumn("_op", F.lit("upsert"))
            evicted = ranked.where(~F.col("_new") & (F.col("_rank") > st.per_user))
            dels = evicted.select(*cols).unionByName(expired).unionByName(stale).withColumn("_op", F.lit("delete"))
            changes = ups.select(*cols, "_op").unionByName(dels)
            first = Window.partitionBy(*keys).orderBy(F.desc("_op"))  # upsert wins over a delete of its key
            # Persisted: the emptiness check and the MERGE (which reads its source twice)
            # would each recompute the ranking; bounded by the batch's users' rows.
            changes = (changes.withColumn("_k", F.row_number().over(first)).where(F.col("_k") == 1)
                       .withColumn(C.DATASET, F.lit(ds)).withColumn("scored_at", F.current_timestamp())).persist()
            try:
                empty = changes.count() == 0  # materialises the cache the MERGE reads
                if phases is not None:
                    phases["rank"] = time.perf_counter() - t
                    t = time.perf_counter()
                if not empty:
                    storage.apply(changes, FRESH_RECOMMENDATIONS,
                                  changed="abs(t.score - s.score) > 1e-6 OR NOT (t.reason <=> s.reason)")
                    _crash_point("fresh-after-merge")
            finally:
                changes.unpersist()
            if phases is not None:
                phases["merge"] = time.perf_counter() - t
        finally:
            scored.unpersist()
        return n

    # ----------------------------------------------------------------- interactions
    def interactions_batch(self, batch: DataFrame, batch_id: int) -> None:
        start = time.perf_counter()
        spark = batch.sparkSession
        st, storage, ds = self.cfg, self.storage, self.dataset
        rows = batch.where((F.col(C.DATASET) == ds) & (F.col(CHANGE_TYPE) == "insert"))
        ok, rejected = check_interactions(rows, storage.read(spark, USERS, ds), storage.read(spark, ITEMS, ds),
                                          dataset=ds, event_weights=self.event_weights, max_weight=self.max_weight)
        ok = ok.persist()
        try:
            n_rej = rejected.count()
            if n_rej:
                with self._rejects_lock:
                    storage.merge(rejected, REJECTS)
                log.warning("stream: %d new interaction row(s) rejected (see rejects, source stream:interactions@v...)",
                            n_rej)
            n_ok = ok.count()
            if n_ok:
                buckets = (ok.groupBy(C.ITEM, bucket_start(F.col(C.TS), st.trend_bucket_minutes).alias("bucket_start"))
                           .agg(F.count(F.lit(1)).alias("events"), F.sum(C.WEIGHT).alias(C.WEIGHT))
                           .withColumn(C.DATASET, F.lit(ds)).withColumn("updated_at", F.current_timestamp()))
                storage.add(buckets, TRENDING, sums=("events", C.WEIGHT), txn=(self._app_id(spark), batch_id))
                _crash_point("trending-after-add")
            old = F.current_timestamp() - F.make_dt_interval(secs=F.lit(float(st.trend_retention_hours) * 3600.0))
            if not storage.read(spark, TRENDING, ds).where(F.col("bucket_start") < old).isEmpty():
                storage.delete(spark, TRENDING, (F.col(C.DATASET) == ds) & (F.col("bucket_start") < old))
        finally:
            ok.unpersist()
        with self._lock:
            s = self.stats
            s.batches["trending"] += 1
            s.interactions += n_ok
            s.rejected["interactions"] += n_rej
            s.seconds["trending"] += time.perf_counter() - start
        log.info("stream trending batch %d: %d interaction(s) accepted, %d rejected in %.1f s", batch_id, n_ok, n_rej,
                 time.perf_counter() - start)

    def _app_id(self, spark: SparkSession) -> str:
        """The trending query's id, stable across restarts (the checkpoint's metadata file):
        the app id of its idempotent writes. A new checkpoint is a new query, new id."""
        meta = spark.read.text(f"{self.checkpoint.rstrip('/')}/trending/metadata").first()
        return "socialrec-trending-" + json.loads(meta[0])["id"]


# --------------------------------------------------------------------------- running


def expire(spark: SparkSession, storage: Storage, *, dataset: str, hours: float) -> None:
    """Delete the fresh_recommendations rows whose item arrived more than ``hours`` ago
    (each micro-batch does it too; this also runs when no item has arrived)."""
    old = F.col("arrived_at") < F.current_timestamp() - F.make_dt_interval(secs=F.lit(float(hours) * 3600.0))
    fresh = storage.read(spark, FRESH_RECOMMENDATIONS, dataset)
    if not fresh.where(old).isEmpty():
        storage.delete(spark, FRESH_RECOMMENDATIONS, (F.col(C.DATASET) == dataset) & old)


def checkpoint_location(stream: StreamConfig, storage: Storage, dataset: str) -> str:
    if stream.checkpoint:
        return stream.checkpoint
    root = storage.root if "://" in storage.root else str(Path(storage.root).expanduser().resolve())
    return f"{root.rstrip('/')}/_checkpoints/stream/{dataset}"


def change_feed(spark: SparkSession, storage: Storage, table, *, starting_version: str, max_files: int) -> DataFrame:
    """The table's change data feed as a streaming DataFrame (``_change_type``,
    ``_commit_version``, ``_commit_timestamp`` beside the table's columns)."""
    reader = (spark.readStream.format("delta").option("readChangeFeed", "true")
              .option("startingVersion", str(starting_version)).option("maxFilesPerTrigger", int(max_files)))
    loc = storage.location(table)
    return reader.table(loc) if storage.catalog else reader.load(loc)


def _fs(spark: SparkSession, path: str):
    """(Hadoop FileSystem, Path) of ``path``: checkpoints may be on any storage Spark reaches."""
    jpath = spark._jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark._jsc.hadoopConfiguration()), jpath


def _has_offsets(spark: SparkSession, query_checkpoint: str) -> bool:
    fs, p = _fs(spark, f"{query_checkpoint}/offsets")
    return bool(fs.exists(p) and len(fs.listStatus(p)))


def _first_version(spark: SparkSession, marker: str, default: int) -> int:
    """The commit version a query that has not run a batch yet starts from, fixed at its
    first start in ``marker`` (so "latest" means the latest at the first start, not at a
    restart before any row arrived)."""
    fs, p = _fs(spark, marker)
    if fs.exists(p):
        stream = fs.open(p)
        try:
            return int(spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8").strip())
        finally:
            stream.close()
    out = fs.create(p, False)
    try:
        out.write(str(default).encode())
    finally:
        out.close()
    return default


@dataclass
class _Query:
    name: str
    table: object
    fn: object
    handle: object = None


def _try_start(spark: SparkSession, storage: Storage, fresh: FreshContent, q: _Query) -> bool:
    """Start ``q`` if it has rows to read: it resumes from its checkpoint, or its first
    version has been committed. Return whether it runs."""
    st = fresh.cfg
    ck = f"{fresh.checkpoint.rstrip('/')}/{q.name}"
    latest = storage.version(spark, q.table)
    default = latest + 1 if st.starting_version == "latest" else int(st.starting_version)
    first = _first_version(spark, f"{ck}.from", default)
    if not _has_offsets(spark, ck) and latest < first:
        return False  # nothing committed since the first start
    # (resuming, the checkpoint's offsets decide; the option still names the first version,
    # which Delta checks the change feed covers)
    starting = str(first)
    w = (change_feed(spark, storage, q.table, starting_version=starting, max_files=st.max_files_per_trigger)
         .writeStream.queryName(f"socialrec-{q.name}-{fresh.dataset}").foreachBatch(q.fn)
         .option("checkpointLocation", ck))
    w = w.trigger(availableNow=True) if st.trigger == "available_now" else w.trigger(processingTime=st.interval)
    q.handle = w.start()
    return True


def run_stream(spark: SparkSession, storage: Storage, *, dataset: str, stream: StreamConfig, emb: EmbedConfig,
               event_weights: dict[str, float], max_weight: float, directed: bool = False) -> StreamStats:
    """Run both queries as ``stream.trigger`` says; return what they did. A query that
    fails stops the other and raises its error.

    On the first start (no checkpoint) a query starts after the table's latest commit
    (``stream.starting_version`` latest) or at the configured version; a query with
    nothing committed since is not started under ``available_now`` and waits for its
    first commit under ``continuous``."""
    fresh = FreshContent(storage, dataset=dataset, stream=stream, emb=emb, event_weights=event_weights,
                         max_weight=max_weight, directed=directed,
                         checkpoint=checkpoint_location(stream, storage, dataset))
    for table in (ITEMS, INTERACTIONS, FRESH_RECOMMENDATIONS, TRENDING, REJECTS, ITEM_EMBEDDINGS, USER_PROFILES):
        storage.ensure(spark, table)
    for table in (ITEMS, INTERACTIONS):
        storage.enable_change_feed(spark, table)
    expire(spark, storage, dataset=dataset, hours=stream.expiry_hours)
    if storage.read(spark, USER_PROFILES, dataset).where(F.col(C.MODEL) == emb.model).limit(1).count() == 0:
        log.warning("stream: no %s user_profiles for dataset %s: new items are embedded but reach no feed until "
                    "`socialrec graph` (or `socialrec run`) has built them", emb.model, dataset)
    queries = [_Query("fresh", ITEMS, fresh.items_batch), _Query("trending", INTERACTIONS, fresh.interactions_batch)]
    log.info("stream: %s, checkpoints under %s", stream.trigger, fresh.checkpoint)
    deadline = None if stream.run_for is None else time.monotonic() + stream.run_for
    waiting = list(queries)
    try:
        while True:
            for q in list(waiting):
                if _try_start(spark, storage, fresh, q):
                    waiting.remove(q)
            running = [q.handle for q in queries if q.handle is not None]
            for h in running:
                if h.exception() is not None:
                    raise RuntimeError(f"stream query {h.name} failed: {h.exception()}")
            if stream.trigger == "available_now" and not any(h.isActive for h in running):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if running:
                spark.streams.awaitAnyTermination(1.0)
                spark.streams.resetTerminated()
            else:
                time.sleep(1.0)
    finally:
        for q in queries:
            if q.handle is not None and q.handle.isActive:
                q.handle.stop()
    return fresh.stats
