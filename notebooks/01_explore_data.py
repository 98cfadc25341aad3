# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Explore the data
# MAGIC Load a dataset into socialrec's canonical Delta tables (`users`, `items`, `interactions`,
# MAGIC `edges`, with rows that could not be accepted in `rejects`) and look at what a recommender
# MAGIC will have to work with: how active users are, how concentrated attention is on few items,
# MAGIC how the social graph is shaped and how much text the items carry.
# MAGIC
# MAGIC Widgets (Databricks) or defaults (elsewhere): `dataset` is `synthetic` (a generated social
# MAGIC network of `users` users) or a named real dataset such as `movielens-100k`,
# MAGIC `lastfm-hetrec`, `stackexchange-beer` (set `conf` to `dataset.path=...` where its files are).

# COMMAND ----------

from socialrec import notebook

nb = notebook.context(globals(), {
    "env": "local", "dataset": "synthetic", "users": "2000", "storage_root": "", "catalog": "",
    "conf": "",
})
cfg = nb.config()

from socialrec.core.session import get_spark
from socialrec.core.storage import Storage

spark = get_spark(cfg.spark, cfg.jars)
storage = Storage(cfg.storage.root, cfg.storage.catalog)
print(f"dataset {cfg.dataset.name}; tables under {cfg.storage.catalog or cfg.storage.root}")

# COMMAND ----------

# MAGIC %md ## Ingest: read, validate, MERGE into the Delta tables
# MAGIC Rerunning it changes nothing (MERGE on each table's keys); every row read is either accepted
# MAGIC or in `rejects` with the field and the reason.

# COMMAND ----------

import pandas as pd

from socialrec.pipeline import run_stage

ingest = run_stage(spark, cfg, "ingest")["ingest"]
files = pd.DataFrame(ingest["files"])
nb.show(files[["table", "source", "read", "accepted", "rejected"]])
assert (files["read"] == files["accepted"] + files["rejected"]).all(), "a row was neither accepted nor rejected"

# COMMAND ----------

from pyspark.sql import functions as F

users = storage.read(spark, "users", cfg.dataset.name)
items = storage.read(spark, "items", cfg.dataset.name)
interactions = storage.read(spark, "interactions", cfg.dataset.name)
edges = storage.read(spark, "edges", cfg.dataset.name)
sizes = {name: df.count() for name, df in
         [("users", users), ("items", items), ("interactions", interactions), ("edges", edges)]}
print(sizes)
print(f"density of the user x item matrix: {sizes['interactions'] / max(1, sizes['users'] * sizes['items']):.5f}")

# COMMAND ----------

# MAGIC %md ## Interactions: kinds of event and activity per user

# COMMAND ----------

nb.show(interactions.groupBy("event").agg(F.count("*").alias("events"), F.round(F.sum("weight"), 1).alias("weight"),
                                          F.countDistinct("user_id").alias("users")).orderBy(F.desc("events")))
per_user = interactions.groupBy("user_id").agg(F.countDistinct("item_id").alias("items"))
q = per_user.approxQuantile("items", [0.1, 0.5, 0.9, 0.99], 0.001)
print("distinct items per user: p10 {:.0f}, median {:.0f}, p90 {:.0f}, p99 {:.0f}".format(*q))

# COMMAND ----------

import matplotlib.pyplot as plt

# Activity histogram on log2 buckets: a few dozen rows reach the driver, whatever the data size.
buckets = per_user.groupBy(F.floor(F.log2("items")).alias("b")).count().orderBy("b").toPandas()
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([f"{2 ** int(b)}-{2 ** (int(b) + 1) - 1}" for b in buckets.b], buckets["count"])
ax.set_xlabel("distinct items per user")
ax.set_ylabel("users")
ax.set_title(f"{cfg.dataset.name}: activity per user")
ax.tick_params(axis="x", rotation=45)
nb.figure(fig, "01_activity_per_user")

# COMMAND ----------

# MAGIC %md ## Popularity: how much attention goes to the most popular items

# COMMAND ----------

per_item = interactions.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
top_cut = per_item.approxQuantile("users", [0.9], 0.001)[0]
share = per_item.agg((F.sum(F.when(F.col("users") >= top_cut, F.col("users"))) / F.sum("users")).alias("s")).first().s
print(f"{share:.0%} of user-item pairs fall on the 10% most popular items (>= {top_cut:.0f} users each)")
nb.show(per_item.join(items.select("item_id", "title"), "item_id", "left").orderBy(F.desc("users"), "item_id"), 10)

# COMMAND ----------

# MAGIC %md ## The social graph

# COMMAND ----------

nb.show(edges.groupBy("kind").count().orderBy(F.desc("count")))
out_degree = edges.groupBy("src").count()
print("out-degree quantiles (p10, median, p90):", out_degree.approxQuantile("count", [0.1, 0.5, 0.9], 0.001))
pairs = edges.select("src", "dst").distinct()
mutual = pairs.join(pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst")), ["src", "dst"]).count()
print(f"reciprocity: {mutual / max(1, pairs.count()):.1%} of directed pairs have the reverse edge")
in_graph = edges.select(F.col("src").alias("user_id")).union(edges.select(F.col("dst").alias("user_id")))
isolated = users.join(in_graph, "user_id", "left_anti").count()
print(f"users without any edge: {isolated:,} of {sizes['users']:,}")

# COMMAND ----------

# MAGIC %md ## Item text (what the language models read)

# COMMAND ----------

words = items.select(F.size(F.split(F.trim(F.concat_ws(" ", "title", "text")), r"\s+")).alias("words"))
print("words per item (p10, median, p90):", words.approxQuantile("words", [0.1, 0.5, 0.9], 0.001))
print("items without text:", items.where(F.coalesce(F.length(F.trim("text")), F.lit(0)) == 0).count())
nb.show(items.select("item_id", "kind", "title", F.substring("text", 1, 120).alias("text")).orderBy("item_id"), 5)

# COMMAND ----------

# MAGIC %md ## Time span and what was rejected

# COMMAND ----------

span = interactions.agg(F.min("ts").alias("first"), F.max("ts").alias("last")).first()
print(f"interactions from {span['first']} to {span['last']}")
nb.show(storage.read(spark, "rejects", cfg.dataset.name).groupBy("table", "field", "reason").count()
        .orderBy(F.desc("count")), 20)
