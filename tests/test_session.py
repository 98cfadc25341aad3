"""The session factory's settings for each jar mode, and jar bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialrec.core import jars as J
from socialrec.core.config import JarsConfig, SparkConfig
from socialrec.core.session import SessionError, session_conf


def test_local_mode_uses_cached_jars(tmp_path):
    d = tmp_path / "jars"
    d.mkdir()
    for c in J.DELTA_JARS:
        J.jar_file(c, d).write_bytes(b"")
    conf = session_conf(SparkConfig(), JarsConfig(cache_dir=str(tmp_path), use_spark_nlp="auto"))
    assert conf["spark.jars"].split(",") == [str(d / "delta-spark_4.1_2.13-4.4.0.jar"), str(d / "delta-storage-4.4.0.jar")]
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert "spark.serializer" not in conf  # no Spark NLP jar cached -> not configured


def test_local_mode_without_jars_says_run_setup(tmp_path):
    with pytest.raises(SessionError, match="run `make setup`"):
        session_conf(SparkConfig(), JarsConfig(cache_dir=str(tmp_path)))


def test_packages_mode_and_spark_nlp(tmp_path):
    conf = session_conf(SparkConfig(conf={"spark.executor.memory": "8g"}),
                        JarsConfig(mode="packages", cache_dir=str(tmp_path)))
    assert conf["spark.jars.packages"].split(",") == list(J.DELTA_JARS)  # auto: no Spark NLP
    assert "spark.serializer" not in conf
    conf = session_conf(SparkConfig(conf={"spark.executor.memory": "8g"}),
                        JarsConfig(mode="packages", cache_dir=str(tmp_path), use_spark_nlp="true"))
    assert conf["spark.jars.packages"].split(",") == list(J.DELTA_JARS) + list(J.SPARK_NLP_JARS)
    assert conf["spark.jars.ivy"] == str(tmp_path / "ivy")
    assert conf["spark.serializer"] == "org.apache.spark.serializer.KryoSerializer"
    assert conf["spark.executor.memory"] == "8g"
    none = session_conf(SparkConfig(), JarsConfig(mode="none"))
    assert "spark.jars" not in none and "spark.jars.packages" not in none


def test_jar_file_names():
    assert J.jar_file("io.delta:delta-storage:4.4.0", Path("/x")) == Path("/x/delta-storage-4.4.0.jar")
    with pytest.raises(ValueError, match="group:artifact:version"):
        J.jar_file("delta", Path("/x"))


def test_session_has_delta(spark):
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark.version.startswith("4.1")
