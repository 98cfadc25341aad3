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
    for c in J.jar_set().required:
        J.jar_file(c, d).write_bytes(b"")
    conf = session_conf(SparkConfig(), JarsConfig(cache_dir=str(tmp_path), use_spark_nlp="auto"))
    expected = {"4.1": ["delta-spark_4.1_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"],
                "3.5": ["delta-spark_2.12-3.3.3.jar", "delta-storage-3.3.3.jar",
                        "spark-xml_2.12-0.18.0.jar"]}[J.spark_line()]
    assert conf["spark.jars"].split(",") == [str(d / name) for name in expected]
    assert conf["spark.sql.ansi.enabled"] == {"4.1": "true", "3.5": "false"}[J.spark_line()]
    assert conf["spark.sql.legacy.timeParserPolicy"] == "CORRECTED"  # 3.5's own default would raise on 1/2/2011
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert "spark.serializer" not in conf  # no Spark NLP jar cached -> not configured


def test_local_mode_without_jars_says_run_setup(tmp_path):
    with pytest.raises(SessionError, match="run `make setup`"):
        session_conf(SparkConfig(), JarsConfig(cache_dir=str(tmp_path)))


def test_packages_mode_and_spark_nlp(tmp_path):
    conf = session_conf(SparkConfig(conf={"spark.executor.memory": "8g"}),
                        JarsConfig(mode="packages", cache_dir=str(tmp_path)))
    assert conf["spark.jars.packages"].split(",") == list(J.jar_set().required)  # auto: no Spark NLP
    assert "spark.serializer" not in conf
    conf = session_conf(SparkConfig(conf={"spark.executor.memory": "8g"}),
                        JarsConfig(mode="packages", cache_dir=str(tmp_path), use_spark_nlp="true"))
    assert conf["spark.jars.packages"].split(",") == list(J.jar_set().required) + list(J.jar_set().spark_nlp)
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
    assert spark.version.startswith(J.spark_line() + ".")  # the line the installed pyspark belongs to


def test_spark_lines_and_their_jars():
    import pyspark

    assert J.spark_line() == ".".join(pyspark.__version__.split(".")[:2])
    assert J.spark_line("3.5.9") == "3.5" and J.spark_line("4.1.2") == "4.1"
    with pytest.raises(RuntimeError, match="supported Spark lines are 3.5, 4.1"):
        J.spark_line("3.4.1")
    # Spark NLP's rule-based annotators need the AWS SDK core beside it on 3.5; on 4.1 its
    # Scala 2.13 jar is not served, so setup records it as unavailable instead of failing.
    assert J.LINES["3.5"].spark_nlp == ("com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3",
                                        "com.amazonaws:aws-java-sdk-core:1.12.500")
    assert J.LINES["3.5"].nlp_required and not J.LINES["4.1"].nlp_required
    assert all(c.split(":")[1].endswith("_2.12") for c in J.LINES["3.5"].delta[:1] + J.LINES["3.5"].spark_nlp[:1])
