# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Compare the models
# MAGIC Read a run's rows from the `metrics` table and compare the models on accuracy (nDCG,
# MAGIC precision, recall, MAP, MRR, hit rate) and beyond it (catalogue coverage, novelty,
# MAGIC diversity), overall and per user segment (light users, users with friends). Runs over several
# MAGIC seeds (`socialrec evaluate` with `evaluation.repeats`) carry a mean and a standard
# MAGIC deviation, drawn as error bars.
# MAGIC
# MAGIC `run_id` empty: the newest succeeded run that wrote metrics.

# COMMAND ----------

from socialrec import notebook

nb = notebook.context(globals(), {
    "env": "local", "storage_root": "", "catalog": "", "run_id": "", "k": "10", "conf": "",
})
cfg = nb.config()
k = int(nb.params["k"])

from pyspark.sql import functions as F

from socialrec.core.session import get_spark
from socialrec.core.storage import Storage

spark = get_spark(cfg.spark, cfg.jars)
storage = Storage(cfg.storage.root, cfg.storage.catalog)
metrics = storage.read(spark, "metrics")
run_id = nb.params["run_id"]
if not run_id:
    measured = metrics.select("run_id").distinct()
    latest = (storage.read(spark, "runs").where(F.col("status") == "succeeded").join(measured, "run_id")
              .orderBy(F.desc("finished_at")).first())
    if latest is None:
        raise ValueError(f"no run with metrics under {cfg.storage.catalog or cfg.storage.root}; run notebook 2 first")
    run_id = latest.run_id
from socialrec.core.config import PROTOCOLS

# The run's recommendation metrics (the word2vec stage also writes quality rows to `metrics`).
rows = metrics.where((F.col("run_id") == run_id) & F.col("split").isin(*PROTOCOLS))
seeds = rows.where(F.col("seed").isNotNull()).select("seed").distinct().count()
# Several seeds: the summary rows (seed null) hold mean and std; one seed: its own rows.
rows = rows.where(F.col("seed").isNull()) if seeds > 1 else rows
table = rows.toPandas()  # models x segments x metrics x k: a few thousand rows at most
print(f"run {run_id}: {table.model.nunique()} models, {seeds} seed(s), split {', '.join(table.split.unique())}, "
      f"{len(table)} metric rows")

# COMMAND ----------

# MAGIC %md ## All metrics at k, every user

# COMMAND ----------

at_k = table[(table.k == k) & (table.segment == "all")]
wide = at_k.pivot_table(index="model", columns="metric", values="value").round(4)
best = "ndcg" if "ndcg" in wide.columns else wide.columns[0]
wide = wide.sort_values(best, ascending=False)
nb.show(wide.reset_index())

# COMMAND ----------

import matplotlib.pyplot as plt
import numpy as np

ndcg = at_k[at_k.metric == best].set_index("model").loc[wide.index]
fig, ax = plt.subplots(figsize=(7, 0.45 * len(ndcg) + 1.2))
errors = ndcg["std"].fillna(0).to_numpy() if "std" in ndcg else None
ax.barh(ndcg.index[::-1], ndcg.value[::-1], xerr=None if errors is None else errors[::-1], capsize=3)
ax.set_xlabel(f"{best}@{k}" + (f" (mean ± sd over {seeds} seeds)" if seeds > 1 else ""))
ax.set_title(f"run {run_id}")
nb.figure(fig, "04_accuracy_by_model")

# COMMAND ----------

# MAGIC %md ## Accuracy against coverage
# MAGIC A model that reaches its accuracy by recommending the same few popular items to everyone sits
# MAGIC low on coverage; the hybrid should reach the top right.

# COMMAND ----------

if {"coverage", best} <= set(wide.columns):
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(wide["coverage"], wide[best])
    for model, r in wide.iterrows():
        ax.annotate(model, (r["coverage"], r[best]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"catalogue coverage@{k}")
    ax.set_ylabel(f"{best}@{k}")
    nb.figure(fig, "04_accuracy_vs_coverage")
else:
    print("coverage was not measured in this run (evaluation.metrics)")

# COMMAND ----------

# MAGIC %md ## By segment
# MAGIC Light users (few train interactions) are where content and social signals should help most.

# COMMAND ----------

seg = table[(table.k == k) & (table.metric == best)].pivot_table(index="model", columns="segment", values="value")
seg = seg.loc[[m for m in wide.index if m in seg.index]]
users = table[(table.k == k) & (table.metric == best)].groupby("segment").n_users.max()
nb.show(seg.round(4).reset_index())
fig, ax = plt.subplots(figsize=(8, 3.5))
width = 0.8 / max(1, len(seg.columns))
for i, segment in enumerate(seg.columns):
    ax.bar(np.arange(len(seg)) + i * width, seg[segment], width, label=f"{segment} ({int(users[segment])} users)")
ax.set_xticks(np.arange(len(seg)) + 0.4 - width / 2)
ax.set_xticklabels(seg.index, rotation=30, ha="right")
ax.set_ylabel(f"{best}@{k}")
ax.legend(fontsize=8)
nb.figure(fig, "04_accuracy_by_segment")

# COMMAND ----------

# MAGIC %md ## Against the baseline
# MAGIC Each model's relative change over popularity (the floor every model must clear) and over
# MAGIC ALS (behaviour alone): how much the language-model and social signals add.

# COMMAND ----------

lift = {}
for base in ("popularity", "als"):
    if base in wide.index:
        lift[f"vs {base}"] = (wide[best] / wide.loc[base, best] - 1).map(lambda x: f"{x:+.1%}")
if lift:
    import pandas as pd

    nb.show(pd.DataFrame(lift).reset_index())
