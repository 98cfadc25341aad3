"""The pipeline submitted with spark-submit to a Spark standalone cluster (a master and a
worker started on loopback from the pyspark installation's scripts): executors are
separate JVMs with their own Python workers, so closures must pickle, nothing may rely
on driver-only state, and the transformer is loaded inside the executors. The library
comes only from the wheel on --py-files (no PYTHONPATH, no checkout on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from socialrec import standalone
from socialrec.core import jars as J

from .conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# Two models keep the test inside CI's time: popularity (Spark SQL only) and the
# transformer content model, whose pandas UDF loads MiniLM in the executor and whose
# top-k runs there in mapInPandas; the explain stage runs after them. ALS and the hybrids
# add minutes of small jobs on this 2-core cluster and no new kind of executor work (the
# hybrid's scoring is the same mapInPandas kernel); the graph stage is submitted on its
# own (run_graph.py: the node2vec walks in the executor).
MODELS = ["popularity", "transformer_content"]
SMALL = """\
spark: {shuffle_partitions: 4, conf: {spark.databricks.delta.snapshotPartitions: "2"}}
dataset: {synthetic: {users: 150, posts: 450, interactions_per_user_mean: 20.0}}
word2vec: {vector_size: 32, max_iter: 3, partitions: 1}
als: {rank: 8, max_iter: 5, tune: false}
graph: {walk_length: 10, walks_per_node: 4, vector_size: 16, max_iter: 3}
hybrid: {candidates: 20, blend: [als_z, transformer_z, social_z]}
evaluation: {models: [%s], k: [10]}
""" % ", ".join(MODELS)


def test_pipeline_under_spark_submit_on_a_standalone_cluster(spark, tmp_path):
    from pyspark.sql import functions as F

    from socialrec.core.config import load_config
    from socialrec.core.storage import Storage
    from socialrec.features.embed import embedding_text
    from socialrec.features.encoder import get_encoder

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("socialrec-*.whl")
    jar_dir = J.jar_dir()
    jars = ",".join(str(J.jar_file(c, jar_dir)) for c in J.jar_set().required)
    small = tmp_path / "small.yaml"
    small.write_text(SMALL, encoding="utf-8")
    wh = tmp_path / "warehouse"
    submit = str(Path(standalone.spark_home()) / "bin" / "spark-submit")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update({"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                "SPARK_LOCAL_IP": standalone.HOST})

    with standalone.local_cluster(tmp_path / "cluster", cores=2, memory="3g") as cluster:
        assert cluster.state()["aliveworkers"] == 1
        options = [submit, "--master", cluster.master_url, "--name", "socialrec-cluster-test",
                   "--driver-memory", "2g", "--conf", "spark.executor.memory=2g", "--conf", "spark.cores.max=2",
                   "--py-files", str(wheel), "--jars", jars]
        conf = ["--conf", str(ROOT / "conf" / "base.yaml"), "--conf", str(ROOT / "conf" / "env" / "cluster.yaml"),
                "--conf", str(small), "--set", f"storage.root={wh}"]

        def submit_job(job: str, run_id: str, *more: str) -> subprocess.CompletedProcess:
            return subprocess.run([*options, str(ROOT / "jobs" / job), *conf, *more, "--run-id", run_id],
                                  capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1200)

        proc = submit_job("run_pipeline.py", "cluster-1")
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log[-5000:]
        graph = submit_job("run_graph.py", "cluster-graph")
        assert graph.returncode == 0, (graph.stdout + graph.stderr)[-5000:]
        # The hybrid with the gradient-boosted ranker: SparkXGBRanker trains in barrier
        # tasks on the executor (one per core) on the warehouse the run left.
        xgb = submit_job("run_recommend.py", "cluster-xgb", "--set", "evaluation.models=[hybrid-xgboost]",
                         "--set", "hybrid.xgb_trees=20")
        xgb_log = xgb.stdout + xgb.stderr
        assert xgb.returncode == 0, xgb_log[-5000:]
        apps = cluster.state()["completedapps"]
        assert sorted((a["name"], a["state"]) for a in apps) == [("socialrec-cluster-test", "FINISHED")] * 3
        pids = cluster.pids()
    # stopped: the master and worker processes are gone
    assert pids and not [p for p in pids if standalone._alive(p)]

    # The driver imported socialrec from the wheel, not from a checkout.
    assert f"from {wheel}/socialrec, command run" in log, log[-3000:]
    assert "socialrec run: run cluster-1 on dataset synthetic" in proc.stdout
    # The executor got the wheel and the jars from the driver and ran the Python UDFs itself:
    # the transformer's pandas UDF (ArrowEvalPython) and the mapInPandas top-k and walks.
    app_dirs = sorted((tmp_path / "cluster" / "work").glob("app-*"))
    assert len(app_dirs) == 3
    executor_dirs = [d for a in app_dirs for d in a.iterdir() if d.is_dir()]
    assert executor_dirs
    shipped = {p.name for d in executor_dirs for p in d.iterdir()}
    assert {wheel.name, J.jar_file(J.jar_set().delta[0], jar_dir).name} <= shipped  # the line's Delta jar
    executor_log = "".join((d / "stderr").read_text(errors="replace") for d in executor_dirs)
    if J.spark_line() == "3.5":  # 3.5 logs one runner for both kinds of Arrow UDF
        assert "ArrowPythonRunner" in executor_log
    else:
        assert "ArrowEvalPythonEvaluatorFactory" in executor_log and "MapInBatchEvaluatorFactory" in executor_log

    # Results read back: every model listed 10 items for every user; metrics; the run.
    storage = Storage(str(wh))
    run = storage.read(spark, "runs").where("run_id = 'cluster-1'").first()
    assert run.status == "succeeded" and run.command == "run"
    recs = storage.read(spark, "recommendations").where("run_id = 'cluster-1'")
    per_model = {r.model: (r.users, r.rows) for r in recs.groupBy("model").agg(
        F.countDistinct("user_id").alias("users"), F.count("*").alias("rows")).collect()}
    assert set(per_model) == set(MODELS)
    for model, (users, rows) in per_model.items():
        assert users >= 140 and rows == users * 10, (model, users, rows)
    ndcg = {r.model: r.value for r in storage.read(spark, "metrics").where(
        "run_id = 'cluster-1' AND metric = 'ndcg' AND segment = 'all' AND k = 10").collect()}
    assert set(ndcg) == set(MODELS) and ndcg["transformer_content"] > ndcg["popularity"]
    assert recs.where(F.col("explanation").isNull() | F.col("explained_by").isNull()).count() == 0
    # the xgboost ranker (its training tasks can only have run on the executor): its lists
    # and its gain shares in the run's params
    xgb_recs = storage.read(spark, "recommendations").where("run_id = 'cluster-xgb' AND model = 'hybrid-xgboost'")
    assert xgb_recs.select("user_id").distinct().count() >= 140
    assert xgb_recs.groupBy("user_id").count().where("count != 10").count() == 0
    xgb_params = storage.read(spark, "runs").where("run_id = 'cluster-xgb'").first().params
    assert xgb_params["hybrid-xgboost.ranker"] == "xgboost"
    assert sum(float(v) for key, v in xgb_params.items() if key.startswith("hybrid-xgboost.importance.")) > 0.99
    assert "Running xgboost-" in xgb_log
    # the graph job: node2vec walks (mapInPandas over a broadcast adjacency) in the executor
    assert "socialrec graph: run cluster-graph" in graph.stdout
    nodes = storage.read(spark, "node_embeddings", "synthetic")
    assert nodes.count() >= 140 and nodes.where(F.size("vector") != 16).count() == 0
    assert storage.read(spark, "user_profiles", "synthetic").where("source = 'social'").count() >= 140

    # The vectors the executors computed are the model's: same as encoding here the text
    # the job's conf embeds (title and text for the generated network).
    job_cfg = load_config([ROOT / "conf" / "base.yaml", ROOT / "conf" / "env" / "cluster.yaml", small])
    assert job_cfg.embed.fields == ["title", "text"]
    items = storage.read(spark, "items", "synthetic")
    emb = storage.read(spark, "item_embeddings", "synthetic")
    assert emb.count() == items.count() == 450
    sample = (emb.join(items, "item_id").orderBy("item_id").limit(5)
              .select("item_id", embedding_text(job_cfg.embed.fields).alias("doc"), "vector").collect())
    here = get_encoder(device="cpu").encode([r.doc for r in sample])
    there = np.array([r.vector for r in sample], dtype=np.float32)
    cosines = (here * there).sum(axis=1) / np.linalg.norm(here, axis=1) / np.linalg.norm(there, axis=1)
    assert cosines.min() > 0.999, cosines
    assert zipfile.ZipFile(wheel).namelist()  # the wheel is intact after the run
