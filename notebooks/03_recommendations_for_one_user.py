# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · One user's recommendations, and why
# MAGIC For one user of a finished run (notebook 2, `socialrec run` or `socialrec evaluate`): what
# MAGIC they engaged with before the split, who they follow, and each model's top items with the
# MAGIC score, the per-signal components and the explanation the recommender wrote, next to what
# MAGIC the user actually went on to engage with (the held-out test pairs).
# MAGIC
# MAGIC `user_id` empty: the user with the most held-out pairs among those every model served.

# COMMAND ----------

from socialrec import notebook

nb = notebook.context(globals(), {
    "env": "local", "dataset": "synthetic", "storage_root": "", "catalog": "", "run_id": "notebook",
    "user_id": "", "k": "10", "conf": "",
})
cfg = nb.config()
run_id, k = nb.params["run_id"], int(nb.params["k"])

from pyspark.sql import functions as F

from socialrec.core.session import get_spark
from socialrec.core.storage import Storage

spark = get_spark(cfg.spark, cfg.jars)
storage = Storage(cfg.storage.root, cfg.storage.catalog)
recs = storage.read(spark, "recommendations").where(F.col("run_id") == run_id)
run = storage.read(spark, "runs").where(F.col("run_id") == run_id).first()
if run is None or recs.isEmpty():
    raise ValueError(f"run {run_id!r} has no recommendations under {cfg.storage.catalog or cfg.storage.root}; "
                     "run notebook 2 (or `socialrec run --run-id ...`) first")
first = recs.select("dataset", "split").first()
dataset, protocol = first.dataset, first.split
# The lists kept for a run are its last seed's (each seed's recommendations replace the last).
seed = storage.read(spark, "metrics").where(F.col("run_id") == run_id).agg(F.max("seed")).first()[0]
seed = cfg.evaluation.seed if seed is None else seed
split = storage.read(spark, "splits", dataset).where((F.col("split") == protocol) & (F.col("seed") == seed))
models = [r.model for r in recs.select("model").distinct().orderBy("model").collect()]
print(f"run {run_id} ({run.status}): dataset {dataset}, split {protocol} seed {seed}, models {', '.join(models)}")

# COMMAND ----------

user = nb.params["user_id"]
if not user:
    served_by_all = recs.groupBy("user_id").agg(F.countDistinct("model").alias("m")).where(F.col("m") == len(models))
    held_out = split.where(F.col("part") == "test").groupBy("user_id").count()
    user = (served_by_all.join(held_out, "user_id").orderBy(F.desc("count"), "user_id").first().user_id)
print("user:", user)
items = storage.read(spark, "items", dataset).select("item_id", "title", "kind")
mine = split.where(F.col("user_id") == user).join(items, "item_id", "left")
print("engaged with before the split (newest first):")
nb.show(mine.where(F.col("part") == "train").orderBy(F.desc("ts"), "item_id")
        .select("item_id", "title", "weight", "n_events", "ts"), 10)
truth = {r.item_id for r in mine.where(F.col("part") == "test").select("item_id").collect()}  # one user's pairs
print(f"held out for the test: {len(truth)} items")

# COMMAND ----------

# MAGIC %md ## The people they follow

# COMMAND ----------

follows = storage.read(spark, "edges", dataset).where(F.col("src") == user)
print(f"{follows.count()} outgoing edges")
nb.show(follows.groupBy("kind").agg(F.count("*").alias("edges"), F.slice(F.sort_array(F.collect_list("dst")), 1, 8)
                                    .alias("some of them")))

# COMMAND ----------

# MAGIC %md ## Each model's list, with its reasons
# MAGIC `hit` marks items the user did engage with in the held-out part. `components` are the
# MAGIC standardised signal scores the hybrid ranker combined (empty for single-signal models).

# COMMAND ----------

hits = {}
for model in models:
    top = (recs.where((F.col("model") == model) & (F.col("user_id") == user) & (F.col("rank") <= k))
           .join(items, "item_id", "left").orderBy("rank"))
    rows = top.select("rank", "item_id", "title", "score", "components", "explanation").collect()  # k rows
    hits[model] = sum(r.item_id in truth for r in rows)
    print(f"\n{model}: {hits[model]} of the top {len(rows)} were engaged with later")
    for r in rows:
        parts = ", ".join(f"{name} {value:+.2f}" for name, value in sorted((r.components or {}).items(),
                                                                          key=lambda kv: -abs(kv[1]))[:3])
        mark = "hit" if r.item_id in truth else "   "
        print(f"  {r.rank:>2} {mark} {r.item_id:<12} {(r.title or '')[:40]:<40} {r.score:8.3f}  {parts}")
        if r.explanation:
            print(f"       {r.explanation}")

# COMMAND ----------

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(hits), list(hits.values()))
ax.set_xlabel(f"held-out items in the top {k}")
ax.set_title(f"user {user}")
nb.figure(fig, "03_hits_for_one_user")
