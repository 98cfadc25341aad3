"""Safety and schema evolution: what reaches SQL or a path from conf is a validated
identifier, models never run code, secrets never reach runs/reports/logs, and an
existing table meets a changed declaration by an explicit rule."""

from __future__ import annotations

import json
import logging
import re

import pytest
from pyspark.sql import functions as F

from socialrec.core.config import CONF_DIR, REDACTED, ConfigError, load_config
from socialrec.core.schemas import USERS
from socialrec.core.storage import SchemaMismatch, Storage
from socialrec.features.encoder import ModelError, inspect_model
from socialrec.pipeline import run_stage

from .conftest import ROOT

BASE = [CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml"]


@pytest.mark.parametrize("override, key", [
    ("storage.catalog=main.x; DROP TABLE users", "storage.catalog"),
    ("storage.catalog=`main`.`x`", "storage.catalog"),
    ("dataset.name=x' OR '1'='1", "dataset.name"),
    ("dataset.name=../../etc", "dataset.name"),
    ("run.id=../../tmp/x", "run.id"),
    ("run.id=..", "run.id"),
    ("run.id=a;b", "run.id"),
    ("evaluation.models=[popularity, \"x'; DROP TABLE metrics; --\"]", "evaluation.models"),
    ("embed.model=all-MiniLM`; DROP", "embed.model"),
    ("evaluation.segments=[\"all) OR (1=1\"]", "evaluation.segments"),
])
def test_values_that_reach_sql_or_paths_are_validated(override, key):
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}"):
        load_config(BASE, [override])


def test_files_column_mappings_cannot_break_out_of_a_quoted_name(tmp_path):
    files = {t: {"path": str(tmp_path / f"{t}.csv"), "columns": {"user_id": "id"}} for t in
             ("users", "items", "interactions")}
    files["users"]["columns"] = {"user_id": "id` , (select 1) as `x"}
    with pytest.raises(ConfigError, match=r"^dataset\.files\.users\.columns\.user_id: .* backtick"):
        load_config([CONF_DIR / "base.yaml"], ["dataset.name=x", "dataset.adapter=files",
                                               f"dataset.files={json.dumps(files)}"])


def test_a_run_id_given_directly_is_checked_too(spark, tmp_path):
    cfg = load_config(BASE, [f"storage.root={tmp_path}"])
    with pytest.raises(ConfigError, match=r"run id: must start with a letter or digit"):
        run_stage(spark, cfg, "ingest", run_id="../escape")


def test_models_with_custom_code_are_refused_before_loading(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}))
    (folder / "model.safetensors").write_bytes(b"{}")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "modeling_evil.py").write_text("raise SystemExit('ran remote code')\n")
    with pytest.raises(ModelError, match=r"custom code \(auto_map: AutoModel\); remote or custom model code is never run"):
        inspect_model(folder)


def test_secrets_are_redacted_from_runs_reports_and_logs(spark, tmp_path, caplog):
    secret = "TOPSECRET-8c1f"
    cfg = load_config(BASE, [
        f"storage.root={tmp_path / 'wh'}", "dataset.synthetic.users=40", "dataset.synthetic.posts=60",
        f'spark.conf={{"spark.hadoop.fs.s3a.secret.key": "{secret}", "spark.hadoop.fs.s3a.access.key": "{secret}"}}',
        f"tracking.mlflow=https://alice:{secret}@mlflow.example.com",
    ])
    snapshot = cfg.to_json()
    assert secret not in snapshot
    assert json.loads(snapshot)["spark"]["conf"]["spark.hadoop.fs.s3a.secret.key"] == REDACTED
    assert json.loads(snapshot)["tracking"]["mlflow"] == "https://***@mlflow.example.com"
    assert cfg.spark.conf["spark.hadoop.fs.s3a.secret.key"] == secret  # the session still gets the real value
    cfg.tracking.mlflow = None  # no MLflow server here; the snapshot above is what it would log
    with caplog.at_level(logging.DEBUG):
        run_stage(spark, cfg, "ingest", run_id="secret-check")
    runs = Storage(cfg.storage.root).read(spark, "runs").where("run_id = 'secret-check'").first()
    assert runs.status == "succeeded" and secret not in runs.config and REDACTED in runs.config
    assert secret not in caplog.text


def test_no_secrets_in_shipped_conf_files():
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            key, _, value = line.split("#", 1)[0].partition(":")
            if re.search(r"(?i)secret|password|token\b|access[._-]?key|api[._-]?key", key) and value.strip() \
                    not in ("", "null", "~"):
                pytest.fail(f"{path}:{n}: {line.strip()}")


# ----------------------------------------------------------------------------- schema evolution


def test_an_older_table_gains_new_columns_and_keeps_extra_ones(spark, tmp_path):
    storage = Storage(str(tmp_path / "wh"))
    loc = storage.location(USERS)
    # Written by an "older version": no profile_text, and a column this version does not know.
    spark.createDataFrame([("d", "u1", "Ann", "legacy")], "dataset string, user_id string, name string, "
                          "nickname string").write.format("delta").partitionBy("dataset").save(loc)
    new = spark.createDataFrame([("d", "u1", "Ann", "likes hops", None), ("d", "u2", "Bob", None, None)],
                                USERS.schema)
    storage.merge(new, USERS, scope={"dataset": "d"})
    df = storage.read(spark, USERS)
    assert set(df.columns) == {"dataset", "user_id", "name", "profile_text", "created_at", "nickname"}
    rows = {r.user_id: r for r in df.collect()}
    assert rows["u1"].profile_text == "likes hops" and rows["u1"].nickname == "legacy"
    assert rows["u2"].nickname is None and len(rows) == 2
    # another dataset's first rows (an empty slice: appended) get null in the extra column too
    storage.merge(spark.createDataFrame([("e", "u7", "Cy", None, None)], USERS.schema), USERS, scope={"dataset": "e"})
    assert [(r.user_id, r.nickname) for r in storage.read(spark, USERS, dataset="e").collect()] == [("u7", None)]


def test_a_changed_column_type_stops_the_write_naming_it(spark, tmp_path):
    storage = Storage(str(tmp_path / "wh"))
    loc = storage.location(USERS)
    spark.createDataFrame([("d", "u1", "Ann", "x", 5)], "dataset string, user_id string, name string, "
                          "profile_text string, created_at long").write.format("delta").save(loc)
    new = spark.createDataFrame([("d", "u1", "Ann", "x", None)], USERS.schema)
    with pytest.raises(SchemaMismatch, match=r"users: created_at is bigint in the table but declared timestamp; "
                                             r"column types are never changed in place"):
        storage.merge(new, USERS)
    assert spark.read.format("delta").load(loc).where(F.col("user_id") == "u1").first().created_at == 5
