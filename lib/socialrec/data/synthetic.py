"""A generated social network: the built-in default dataset (``dataset.name: synthetic``).

Users have latent topic interests (a primary and a secondary topic); they follow others
with homophily (mostly people of their own topic, skewed towards a few prolific hubs);
they write posts in real English drawn from per-topic vocabularies, so a language model
can see the topics; and they view, like, comment on and share posts chosen by interest
(their topics, skewed towards popular posts) or by social proof (posts by people they
follow). Timestamps follow the post's creation time.

Everything is computed with Spark built-ins from hashes of (seed, row index, salt), so
the output is deterministic for a seed whatever the partitioning, and scales with the
cluster. The output is *raw*: string columns shaped like a source file, with ``_source``
and ``_row`` so that ingest can name the row it rejects. A fraction ``corrupt_rate`` of
interaction and edge rows is deliberately broken (null ids, unknown events, unparseable
or pre-1970 timestamps, unknown items, self-follows) to exercise the rejects path.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.data.contract import RawTables
from socialrec.data.vocab import BIO_TEMPLATE, N_ADJS, N_NOUNS, N_VERBS, NAMES, TEMPLATES, TITLE_TEMPLATES, TOPICS

_MOD = 2_147_483_647  # a prime; hashes reduced modulo it give uniforms on [0, 1)
_TS_FORMAT = "yyyy-MM-dd HH:mm:ss"


def _uniform(seed: int, salt: str, *cols: Column) -> Column:
    """A deterministic uniform [0, 1) from a hash of seed, salt and the given columns."""
    h = F.xxhash64(F.lit(seed), F.lit(salt), *cols)
    return F.pmod(h, F.lit(_MOD)).cast("double") / F.lit(float(_MOD))


def _pick(arr: Column, u: Column, n: int) -> Column:
    return F.element_at(arr, (F.floor(u * n) + 1).cast("int"))


def _pareto(u: Column, alpha: float, mean: float, cap: float) -> Column:
    """A heavy-tailed positive count with the given mean (Pareto, shape ``alpha``)."""
    raw = F.pow(F.lit(1.0) - u, F.lit(-1.0 / alpha))  # Pareto(xm=1): mean alpha/(alpha-1)
    scaled = raw * F.lit(mean * (alpha - 1.0) / alpha)
    return F.greatest(F.lit(1), F.least(F.round(scaled), F.lit(cap))).cast("int")


class _Words:
    """Array literals of the topic vocabularies, indexed by topic number."""

    def __init__(self, topics: int):
        chosen = list(TOPICS.values())[:topics]
        self.nouns = F.array(*[F.array(*[F.lit(w) for w in n]) for n, _, _ in chosen])
        self.adjs = F.array(*[F.array(*[F.lit(w) for w in a]) for _, a, _ in chosen])
        self.verbs = F.array(*[F.array(*[F.lit(w) for w in v]) for _, _, v in chosen])
        self.templates = F.array(*[F.lit(t) for t in TEMPLATES])
        self.titles = F.array(*[F.lit(t) for t in TITLE_TEMPLATES])
        self.topics = topics

    def _topic(self, arr: Column, topic: Column) -> Column:
        return F.element_at(arr, (topic + 1).cast("int"))

    def sentence(self, template: Column, topic: Column, seed: int, salt: str, idx: Column) -> Column:
        """Fill a template with words of ``topic`` (one word in ten from a random topic)."""

        def word(arr: Column, n: int, slot: str) -> Column:
            stray = _uniform(seed, f"{salt}:{slot}:stray", idx) < 0.1
            other = F.floor(_uniform(seed, f"{salt}:{slot}:other", idx) * self.topics)
            t = F.when(stray, other).otherwise(topic)
            return _pick(self._topic(arr, t), _uniform(seed, f"{salt}:{slot}", idx), n)

        # format_string with a per-row format (a template chosen by hash); the
        # templates address their arguments by position (%1$s ... %4$s).
        return F.call_function(
            "format_string",
            template,
            word(self.nouns, N_NOUNS, "n1"),
            word(self.nouns, N_NOUNS, "n2"),
            word(self.adjs, N_ADJS, "a1"),
            word(self.verbs, N_VERBS, "v1"),
        )


def _id(prefix: str, idx: Column, width: int) -> Column:
    return F.concat(F.lit(prefix), F.lpad(idx.cast("string"), width, "0"))


def _ts(epoch_seconds: Column) -> Column:
    return F.date_format(F.timestamp_seconds(epoch_seconds.cast("long")), _TS_FORMAT)


class _Network:
    """The latent structure: pure column functions of a user's or a post's index."""

    FOLLOW_SKEW = 1.8  # >1 concentrates follows on low indexes within a topic (hubs)
    AUTHOR_SKEW = 2.0  # >1 makes a few users write most posts

    def __init__(self, *, users, posts, topics, follows_mean, interactions_per_user_mean,
                 homophily, social_share, popularity_skew, days, end, seed):
        self.U, self.P, self.T = users, posts, topics
        self.follows_mean = follows_mean
        self.inter_mean = interactions_per_user_mean
        self.homophily, self.social_share = homophily, social_share
        self.pop_skew = popularity_skew
        self.seed = seed
        end_dt = datetime.fromisoformat(end)
        if end_dt.tzinfo is None:
            end_dt = end_dt.replace(tzinfo=timezone.utc)
        self.end = int(end_dt.timestamp())
        self.start = self.end - days * 86400
        self.span = days * 86400
        self.uw = max(6, len(str(users - 1)))
        self.pw = max(6, len(str(posts - 1)))

    def u(self, salt: str, *cols: Column) -> Column:
        return _uniform(self.seed, salt, *cols)

    # users
    def primary(self, idx: Column) -> Column:
        return (idx % self.T).cast("int")

    def secondary(self, idx: Column) -> Column:
        if self.T == 1:
            return self.primary(idx)
        return ((self.primary(idx) + 1 + F.floor(self.u("t2", idx) * (self.T - 1))) % self.T).cast("int")

    def n_follows(self, idx: Column) -> Column:
        cap = float(min(self.U - 1, max(1, int(50 * self.follows_mean))))
        return _pareto(self.u("nf", idx), 2.2, self.follows_mean, cap)

    def n_interactions(self, idx: Column) -> Column:
        return _pareto(self.u("ni", idx), 2.2, self.inter_mean, float(max(1, int(50 * self.inter_mean))))

    def _members(self, topic: Column, count: int) -> Column:
        """How many of ``count`` indexes fall in ``topic`` (index % T == topic)."""
        return F.floor((F.lit(count - 1) - topic) / self.T) + 1

    def follow_target(self, src: Column, j: Column) -> Column:
        same = self.u("hom", src, j) < self.homophily
        topic = F.when(self.u("ht", src, j) < 0.75, self.primary(src)).otherwise(self.secondary(src))
        m = F.floor(self._members(topic, self.U) * F.pow(self.u("hm", src, j), self.FOLLOW_SKEW))
        in_topic = topic + m * self.T
        anyone = F.floor(F.lit(self.U) * F.pow(self.u("hr", src, j), self.FOLLOW_SKEW))
        return F.when(same, in_topic).otherwise(anyone).cast("long")

    # posts
    def post_topic(self, idx: Column) -> Column:
        return (idx % self.T).cast("int")

    def author(self, idx: Column) -> Column:
        topic = self.post_topic(idx)
        m = F.floor(self._members(topic, self.U) * F.pow(self.u("au", idx), self.AUTHOR_SKEW))
        return (topic + m * self.T).cast("long")

    def post_created(self, idx: Column) -> Column:
        return F.lit(self.start) + F.floor(self.u("pc", idx) * self.span)

    def interest_post(self, user: Column, slot: Column) -> Column:
        r = self.u("it", user, slot)
        topic = (
            F.when(r < 0.65, self.primary(user))
            .when(r < 0.9, self.secondary(user))
            .otherwise(F.floor(self.u("rt", user, slot) * self.T))
        )
        rank = F.floor(self._members(topic, self.P) * F.pow(self.u("ip", user, slot), self.pop_skew))
        return (topic + rank * self.T).cast("long")

    def user_id(self, idx: Column) -> Column:
        return _id("u", idx, self.uw)

    def post_id(self, idx: Column) -> Column:
        return _id("p", idx, self.pw)


def generate(
    spark: SparkSession,
    *,
    users: int = 2000,
    posts: int = 6000,
    topics: int = 12,
    follows_mean: float = 12.0,
    interactions_per_user_mean: float = 40.0,
    homophily: float = 0.8,
    social_share: float = 0.2,
    popularity_skew: float = 2.5,
    corrupt_rate: float = 0.001,
    days: int = 90,
    end: str = "2026-10-01T00:00:00",
    partitions: int = 8,
    seed: int = 7,
) -> RawTables:
    """Generate the raw tables of a social network (see the module docstring)."""
    if users < topics or posts < topics:
        raise ValueError(f"synthetic: users ({users}) and posts ({posts}) must be at least topics ({topics})")
    net = _Network(
        users=users, posts=posts, topics=topics, follows_mean=follows_mean,
        interactions_per_user_mean=interactions_per_user_mean, homophily=homophily,
        social_share=social_share, popularity_skew=popularity_skew, days=days, end=end, seed=seed,
    )
    words = _Words(topics)
    topic_names = F.array(*[F.lit(n) for n in list(TOPICS)[:topics]])
    idx = F.col("idx")

    # ---------------------------------------------------------------- users
    base_users = spark.range(0, users, numPartitions=partitions).withColumnRenamed("id", "idx")
    users_raw = base_users.select(
        net.user_id(idx).alias(C.USER),
        F.concat(_pick(F.array(*[F.lit(n) for n in NAMES]), net.u("nm", idx), len(NAMES)),
                 F.lit("_"), idx.cast("string")).alias("name"),
        words.sentence(F.lit(BIO_TEMPLATE), net.primary(idx), seed, "bio", idx).alias("profile_text"),
        _ts(F.lit(net.start) - F.floor(net.u("uc", idx) * 365 * 86400)).alias(C.CREATED_AT),
        F.lit("synthetic/users").alias(C.SOURCE),
        idx.alias(C.ROW),
    )

    # ---------------------------------------------------------------- posts
    pidx = spark.range(0, posts, numPartitions=partitions).withColumnRenamed("id", "idx")
    topic = net.post_topic(idx)
    s1 = words.sentence(_pick(words.templates, net.u("tp1", idx), len(TEMPLATES)), topic, seed, "s1", idx)
    s2 = words.sentence(_pick(words.templates, net.u("tp2", idx), len(TEMPLATES)), topic, seed, "s2", idx)
    s3 = words.sentence(_pick(words.templates, net.u("tp3", idx), len(TEMPLATES)), topic, seed, "s3", idx)
    title = words.sentence(_pick(words.titles, net.u("tt", idx), len(TITLE_TEMPLATES)), topic, seed, "ti", idx)
    items_raw = pidx.select(
        net.post_id(idx).alias(C.ITEM),
        net.user_id(net.author(idx)).alias(C.AUTHOR),
        F.concat(F.upper(F.substring(title, 1, 1)), F.substring(title, 2, 10_000)).alias(C.TITLE),
        F.concat_ws(" ", s1, s2, F.when(net.u("has3", idx) < 0.6, s3)).alias(C.TEXT),
        F.concat_ws(
            "|",
            F.element_at(topic_names, (topic + 1).cast("int")),
            _pick(F.element_at(words.nouns, (topic + 1).cast("int")), net.u("tag", idx), N_NOUNS),
        ).alias(C.TAGS),
        F.lit("post").alias(C.KIND),
        F.lit(None).cast("string").alias(C.PARENT),
        _ts(net.post_created(idx)).alias(C.CREATED_AT),
        F.lit("synthetic/items").alias(C.SOURCE),
        idx.alias(C.ROW),
    )

    # ---------------------------------------------------------------- follow edges
    j = F.col("j")
    fcap = min(users - 1, max(1, int(50 * follows_mean)))
    edges = (
        base_users.select(idx, F.explode(F.sequence(F.lit(0), net.n_follows(idx) - 1)).alias("j"))
        .select(idx.alias("src"), j, net.follow_target(idx, j).alias("dst"))
        .where(F.col("src") != F.col("dst"))
        .groupBy("src", "dst")
        .agg(F.min("j").alias("j"))
    )
    broken_edge = net.u("ce", F.col("src"), j) < corrupt_rate
    edges_raw = edges.select(
        net.user_id(F.col("src")).alias(C.SRC),
        F.when(broken_edge, net.user_id(F.col("src"))).otherwise(net.user_id(F.col("dst"))).alias(C.DST),
        F.lit("follow").alias(C.KIND),
        F.lit("1").alias(C.WEIGHT),
        _ts(F.lit(net.start) + F.floor(net.u("et", F.col("src"), j) * net.span)).alias(C.TS),
        F.lit("synthetic/edges").alias(C.SOURCE),
        (F.col("src") * (fcap + 1) + j).alias(C.ROW),
    )

    # ---------------------------------------------------------------- interactions
    s = F.col("s")
    icap = max(1, int(50 * interactions_per_user_mean))
    slots = base_users.select(
        idx, F.explode(F.sequence(F.lit(0), net.n_interactions(idx) - 1)).alias("s")
    ).select(
        idx.alias("uidx"),
        s,
        net.interest_post(idx, s).alias("interest"),
        F.when(
            net.u("soc", idx, s) < social_share,
            net.follow_target(idx, F.floor(net.u("sj", idx, s) * net.n_follows(idx))),
        ).alias("followee"),
    )
    by_author = (
        pidx.select(net.author(idx).alias("followee"), idx)
        .groupBy("followee")
        .agg(F.sort_array(F.collect_list("idx")).alias("their_posts"))
    )
    uidx = F.col("uidx")
    picked = slots.join(by_author, on="followee", how="left").select(
        uidx,
        s,
        F.coalesce(
            _pick_list(F.col("their_posts"), net.u("sp", uidx, s)),
            F.col("interest"),
        ).alias("pidx"),
    )
    item = F.col("pidx")
    e = net.u("ev", uidx, s)
    match = net.post_topic(item) == net.primary(uidx)
    event = F.when(
        match,
        F.when(e < 0.45, "view").when(e < 0.78, "like").when(e < 0.93, "comment").otherwise("share"),
    ).otherwise(F.when(e < 0.65, "view").when(e < 0.88, "like").when(e < 0.97, "comment").otherwise("share"))
    delay = -F.log(F.lit(1.0) - net.u("dl", uidx, s)) * F.lit(2.0 * 86400)
    ts = F.least(net.post_created(item) + F.floor(delay), F.lit(net.end))
    broken = net.u("ci", uidx, s) < corrupt_rate
    how = F.floor(net.u("ck", uidx, s) * 5)
    interactions_raw = picked.select(
        F.when(broken & (how == 0), F.lit(None).cast("string")).otherwise(net.user_id(uidx)).alias(C.USER),
        F.when(broken & (how == 4), F.concat(F.lit("p-deleted-"), s.cast("string")))
        .otherwise(net.post_id(item))
        .alias(C.ITEM),
        F.when(broken & (how == 1), F.lit("poke")).otherwise(event).alias(C.EVENT),
        F.when(broken & (how == 2), F.lit("2026-13-45 25:61:00"))
        .when(broken & (how == 3), F.lit("1965-06-01 00:00:00"))
        .otherwise(_ts(ts))
        .alias(C.TS),
        F.lit("synthetic/interactions").alias(C.SOURCE),
        (uidx * (icap + 1) + s).alias(C.ROW),
    )
    return RawTables(users=users_raw, items=items_raw, interactions=interactions_raw, edges=edges_raw)


def _pick_list(arr: Column, u: Column) -> Column:
    """A uniform element of a variable-length array (null when the array is null/empty)."""
    return F.when(F.size(arr) > 0, F.element_at(arr, (F.floor(u * F.size(arr)) + 1).cast("int")))

