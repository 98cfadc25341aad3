"""The notebooks: Databricks source files that run top to bottom outside Databricks.

The slow test executes every notebook in notebooks/ in order, in a fresh Python process
in local mode, on a small generated network (what CI does); the others check the runner
and the widget/display shim against a stand-in for Databricks' dbutils."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from socialrec import notebook

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
MODELS = "popularity,als,transformer_content,hybrid-social"


def test_every_notebook_is_a_databricks_source_file():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_data.py", "02_pipeline_step_by_step.py",
                                           "03_recommendations_for_one_user.py", "04_compare_models.py"]
    for path in NOTEBOOKS:
        cells = notebook.cells(path)
        assert cells[0].magic == "md" and cells[0].source.startswith("# MAGIC %md"), path.name
        code = [c for c in cells if c.magic is None]
        assert "notebook.context(globals()" in code[0].source, f"{path.name}: first code cell must read the widgets"
        assert not [c for c in cells if c.magic not in (None, "md")], f"{path.name}: only markdown magics"


def test_runner_splits_cells_and_names_the_failing_one(tmp_path):
    nb = tmp_path / "nb.py"
    nb.write_text("# Databricks notebook source\n# MAGIC %md\n# MAGIC # Title\n\n# COMMAND ----------\n\n"
                  "x = 2\n\n# COMMAND ----------\n\ny = x * 21\nassert y == 42\n\n# COMMAND ----------\n\n"
                  "z = undefined_name + 1\n", encoding="utf-8")
    cells = notebook.cells(nb)
    assert [(c.number, c.line, c.magic) for c in cells] == [(1, 2, "md"), (2, 6, None), (3, 10, None), (4, 15, None)]
    with pytest.raises(notebook.NotebookError, match=r"nb.py cell 4 \(line 15\): NameError: .*undefined_name"):
        notebook.run(nb)
    nb.write_text("print('no header')\n", encoding="utf-8")
    with pytest.raises(notebook.NotebookError, match="not a Databricks source notebook"):
        notebook.cells(nb)
    nb.write_text("# Databricks notebook source\n# MAGIC %pip install x\n", encoding="utf-8")
    with pytest.raises(notebook.NotebookError, match="magic %pip only runs on Databricks"):
        notebook.run(nb)


def test_widgets_on_databricks_and_defaults_elsewhere(monkeypatch, tmp_path):
    class Widgets:
        def __init__(self):
            self.declared, self.values = {}, {"users": "900"}

        def text(self, name, default):
            self.declared[name] = default

        def get(self, name):
            return self.values.get(name, self.declared[name])

    class DBUtils:
        widgets = Widgets()

    shown = []
    defaults = {"dataset": "synthetic", "users": "2000", "models": "als, popularity", "conf": "als.rank=16;k=x"}
    nb = notebook.context({"dbutils": DBUtils(), "display": shown.append}, defaults)
    assert DBUtils.widgets.declared == defaults
    assert nb.on_databricks and nb.params["users"] == "900"
    nb.show([1, 2])  # not a Spark DataFrame: handed to display as is
    assert shown == [[1, 2]]
    from socialrec.core.config import ConfigError

    with pytest.raises(ConfigError, match="^k: unknown key"):
        nb.config()  # the conf widget's overrides are applied (here a bad key)
    # an empty widget leaves the conf layer's value: on Databricks the databricks layer's root
    DBUtils.widgets = Widgets()
    on_db = notebook.context({"dbutils": DBUtils()}, {"storage_root": "", "catalog": ""}).config()
    assert (on_db.storage.root, on_db.storage.catalog, on_db.spark.master) == (
        "/Volumes/main/socialrec/warehouse", None, None)

    monkeypatch.setenv(notebook.PARAMS_ENV, json.dumps({"users": "150", "unknown": "x"}))
    monkeypatch.setenv(notebook.OUT_ENV, str(tmp_path / "figs"))
    local = notebook.context({}, {**defaults, "conf": "als.rank=16"})
    assert not local.on_databricks and local.params["users"] == "150" and "unknown" not in local.params
    cfg = local.config()
    assert (cfg.dataset.synthetic.users, cfg.dataset.synthetic.posts) == (150, 450)
    assert cfg.evaluation.models == ["als", "popularity"] and cfg.als.rank == 16
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert local.figure(fig, "line") == tmp_path / "figs" / "line.png"
    assert (tmp_path / "figs" / "line.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebooks_run_top_to_bottom_in_local_mode(spark, tmp_path):
    """01 → 04 on 150 generated users, the way a user runs them outside Databricks."""
    from pyspark.sql import functions as F

    from socialrec.core.storage import Storage

    wh, out = tmp_path / "wh", tmp_path / "figures"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    cmd = [sys.executable, "-m", "socialrec.notebook", *map(str, NOTEBOOKS), "--out", str(out),
           "--param", "env=test", "--param", "users=150", "--param", f"storage_root={wh}",
           "--param", f"models={MODELS}", "--param", "run_id=nb-ci",
           "--param", "conf=als.tune=false;evaluation.k=[5,10]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1500)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    for path in NOTEBOOKS:
        assert f"notebook {path}: " in proc.stdout, tail
    assert sorted(p.name for p in out.glob("*.png")) == [
        "01_activity_per_user.png", "03_hits_for_one_user.png", "04_accuracy_by_model.png",
        "04_accuracy_by_segment.png", "04_accuracy_vs_coverage.png"]
    # 01: every row read was accepted or rejected (the notebook asserts it too)
    assert "users without any edge" in proc.stdout and "of user-item pairs fall on" in proc.stdout
    # 02: the stage-by-stage calls made one run
    storage = Storage(str(wh))
    run = storage.read(spark, "runs").where("run_id = 'nb-ci'").first()
    assert run.status == "succeeded"
    assert run.command == "ingest,tokenize,word2vec,embed,graph,split,recommend,metrics"
    assert {"ingest", "tokenize", "word2vec", "embed", "graph", "split", "recommend", "evaluate", "report"} <= set(run.timings)
    recs = storage.read(spark, "recommendations").where("run_id = 'nb-ci'")
    assert {r.model for r in recs.select("model").distinct().collect()} == set(MODELS.split(","))
    assert recs.where(F.col("explanation").isNull()).count() == 0
    metrics = storage.read(spark, "metrics").where("run_id = 'nb-ci' AND metric = 'ndcg' AND segment = 'all'")
    assert metrics.count() == 4 * 2  # models x k
    assert (wh / "reports" / "nb-ci" / "index.html").exists()
    # 03: a list per model for one user, hits counted against the held-out part
    for model in MODELS.split(","):
        assert re.search(rf"\n{re.escape(model)}: \d+ of the top 10 were engaged with later", proc.stdout), model
    # 04: the comparison table names every model and the lifts over the baselines
    assert "vs popularity" in proc.stdout and "vs als" in proc.stdout
