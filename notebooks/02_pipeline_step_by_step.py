# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · The pipeline, step by step
# MAGIC The stages `socialrec run` chains, called one at a time so each output can be inspected:
# MAGIC ingest → tokenize → word2vec → embed (transformer) → graph (node2vec, neighbour profiles)
# MAGIC → split → recommend → metrics. Every stage reads and MERGEs Delta tables, so any cell can
# MAGIC be rerun alone, and all calls share one `run_id` (one row in `runs`, timings adding up).
# MAGIC
# MAGIC Run notebook 1 first or not: ingest here is a no-op when the tables are up to date.

# COMMAND ----------

from socialrec import notebook

nb = notebook.context(globals(), {
    "env": "local", "dataset": "synthetic", "users": "2000", "storage_root": "", "catalog": "",
    "models": "popularity,als,w2v_content,transformer_content,hybrid,hybrid-social", "run_id": "notebook",
    "conf": "",
})
cfg = nb.config()
run_id = nb.params["run_id"]

from pyspark.sql import functions as F

from socialrec.core.session import get_spark
from socialrec.core.storage import Storage
from socialrec.evaluation.report import format_summary
from socialrec.pipeline import run_stage

spark = get_spark(cfg.spark, cfg.jars)
storage = Storage(cfg.storage.root, cfg.storage.catalog)
dataset = cfg.dataset.name
print(f"dataset {dataset}, models {', '.join(cfg.evaluation.models)}, run {run_id}")

# COMMAND ----------

# MAGIC %md ## 1. Ingest

# COMMAND ----------

out = run_stage(spark, cfg, "ingest", run_id=run_id)["ingest"]
print({table: f"{n:,}" for table, n in out["tables"].items()})

# COMMAND ----------

# MAGIC %md ## 2. Tokenize and Word2Vec
# MAGIC Tokens per item (`tokenize.engine`), word vectors trained on them, and item vectors as the
# MAGIC (SIF-weighted) mean of their words. The nearest words to a frequent word show whether the
# MAGIC vectors learned anything: cosine similarity computed in Spark with built-in array functions.

# COMMAND ----------

print(run_stage(spark, cfg, "tokenize", run_id=run_id)["tokenize"])
print(run_stage(spark, cfg, "word2vec", run_id=run_id)["word2vec"])
nb.show(storage.read(spark, "tokens", dataset).select("item_id", "n_tokens", F.slice("tokens", 1, 12).alias("first tokens"))
        .orderBy("item_id"), 3)

# COMMAND ----------

words = storage.read(spark, "word_vectors", dataset).where(F.col("engine") == cfg.word2vec.engine)
probe = words.orderBy(F.desc("count"), "word").where(F.length("word") > 4).first()
dot = F.aggregate(F.zip_with("vector", F.lit(list(map(float, probe.vector))), lambda a, b: a * b), F.lit(0.0),
                  lambda acc, x: acc + x)
norm = F.sqrt(F.aggregate(F.transform("vector", lambda a: a * a), F.lit(0.0), lambda acc, x: acc + x))
probe_norm = sum(v * v for v in probe.vector) ** 0.5
print(f"nearest words to {probe.word!r} ({probe['count']} occurrences):")
nb.show(words.where(F.col("word") != probe.word)
        .select("word", F.round(dot / (norm * probe_norm), 3).alias("cosine")).orderBy(F.desc("cosine")), 8)

# COMMAND ----------

# MAGIC %md ## 3. Transformer embeddings
# MAGIC `embed.model` (all-MiniLM-L6-v2 shipped offline) runs inside the executors in a pandas UDF;
# MAGIC only items whose text changed since the last run are embedded again.

# COMMAND ----------

emb = run_stage(spark, cfg, "embed", run_id=run_id)["embed"]
print(f"{emb['items']:,} item vectors, {emb['embedded']:,} embedded now, {emb['kept']:,} unchanged")
vectors = storage.read(spark, "item_embeddings", dataset).where(F.col("model") == cfg.embed.model)
items = storage.read(spark, "items", dataset)
anchor = vectors.orderBy("item_id").first()
sim = F.aggregate(F.zip_with("vector", F.lit(list(map(float, anchor.vector))), lambda a, b: a * b), F.lit(0.0),
                  lambda acc, x: acc + x)  # vectors are unit length: the dot product is the cosine
print("items closest in meaning to:", items.where(F.col("item_id") == anchor.item_id).first().title)
nb.show(vectors.where(F.col("item_id") != anchor.item_id).select("item_id", F.round(sim, 3).alias("cosine"))
        .join(items.select("item_id", "title"), "item_id").orderBy(F.desc("cosine")), 5)

# COMMAND ----------

# MAGIC %md ## 4. The social graph
# MAGIC node2vec walks over `edges` give each user a vector (`node_embeddings`); each user's profile is
# MAGIC also averaged with their neighbours' (`user_profiles`). Needed by `hybrid-social`.

# COMMAND ----------

if "hybrid-social" in cfg.evaluation.models:
    g = run_stage(spark, cfg, "graph", run_id=run_id)["graph"]
    print(f"{g['edges']:,} edges, {g['nodes']:,} node vectors, {g['users_without_vector']:,} users without one; "
          f"profiles {g['profiles']}")
else:
    print("no model here uses the graph stage")

# COMMAND ----------

# MAGIC %md ## 5. Split, recommend, measure
# MAGIC One split (`evaluation.protocol`, seed `evaluation.seed`), every model trained on its train
# MAGIC part and asked for its top `recommend.k`, then ranking and beyond-accuracy metrics per
# MAGIC segment into `metrics` and the run's HTML report. (`socialrec evaluate` repeats this over
# MAGIC several seeds.)

# COMMAND ----------

split = run_stage(spark, cfg, "split", run_id=run_id)["split"]
print(f"{cfg.evaluation.protocol}: {split['train']:,} train / {split['test']:,} test pairs")
rec = run_stage(spark, cfg, "recommend", run_id=run_id)
nb.show(storage.read(spark, "recommendations").where(F.col("run_id") == run_id)
        .groupBy("model").agg(F.countDistinct("user_id").alias("users"), F.count("*").alias("rows"))
        .orderBy("model"))

# COMMAND ----------

measured = run_stage(spark, cfg, "metrics", run_id=run_id)
print(format_summary(measured["metrics"]))
print("report:", measured.get("report"))

# COMMAND ----------

run = storage.read(spark, "runs").where(F.col("run_id") == run_id).first()
print(f"run {run_id}: {run.command} -> {run.status}")
nb.show(spark.createDataFrame(sorted(run.timings.items()), "stage string, seconds double"))
