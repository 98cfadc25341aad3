# Databricks notebook source
# MAGIC %md
# MAGIC # socialrec quickstart
# MAGIC Ingest the generated social network (or a configured dataset), split it, recommend
# MAGIC with the popularity baseline, and read the metrics — the same library calls as
# MAGIC `socialrec run`. Locally it runs with plain defaults; on Databricks the widgets set them.

# COMMAND ----------

defaults = {"storage_root": "./warehouse", "dataset": "synthetic", "users": "500", "run_id": "notebook"}
try:
    dbutils  # noqa: F821  (defined on Databricks)
    for key, value in defaults.items():
        dbutils.widgets.text(key, value)  # noqa: F821
    params = {key: dbutils.widgets.get(key) for key in defaults}  # noqa: F821
    env = "databricks"
except NameError:
    params = dict(defaults)
    env = "local"

# COMMAND ----------

from socialrec.config import load_config
from socialrec.session import get_spark

cfg = load_config(env=env, overrides=[
    f"storage.root={params['storage_root']}",
    f"dataset.name={params['dataset']}",
    f"dataset.synthetic.users={params['users']}",
    f"dataset.synthetic.posts={int(params['users']) * 3}",
])
spark = get_spark(cfg.spark, cfg.jars)

# COMMAND ----------

from socialrec.pipeline import format_summary, run_stage

result = run_stage(spark, cfg, "run", run_id=params["run_id"])
print(format_summary(result["metrics"]))

# COMMAND ----------

# MAGIC %md The run's report (one self-contained HTML page): shown inline on Databricks,
# MAGIC its path printed elsewhere (open it in a browser).

# COMMAND ----------

try:
    displayHTML(open(result["report"], encoding="utf-8").read())  # noqa: F821  (Databricks)
except NameError:
    print("report:", result["report"])

# COMMAND ----------

from socialrec.storage import Storage

storage = Storage(cfg.storage.root, cfg.storage.catalog)
recs = storage.read(spark, "recommendations").where(f"run_id = '{params['run_id']}'")
one_user = recs.select("user_id").orderBy("user_id").first().user_id
recs.where(recs.user_id == one_user).orderBy("rank").select("rank", "item_id", "score", "explanation").show(truncate=False)

# COMMAND ----------

storage.read(spark, "rejects", cfg.dataset.name).groupBy("table", "field").count().orderBy("table").show()
