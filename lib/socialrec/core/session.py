"""The one SparkSession factory.

``get_spark(cfg.spark, cfg.jars)`` returns the active session when there is one
(spark-submit's driver, a Databricks notebook, a test fixture) and otherwise builds a
local one with Delta (and Spark NLP when its jar is present) configured from conf.
Nothing here runs on import.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from pyspark.sql import SparkSession

from socialrec.core import jars as J
from socialrec.core.compat import ANSI, TIME_PARSER
from socialrec.core.config import JarsConfig, SparkConfig

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class SessionError(RuntimeError):
    """The session cannot be built as configured (e.g. jars missing: run `make setup`)."""


def spark_nlp_wanted(jars: JarsConfig) -> bool:
    """Whether Spark NLP's jar goes on the classpath under this conf."""
    if jars.use_spark_nlp == "false" or jars.mode == "none":
        return False
    if jars.use_spark_nlp == "true":
        return True
    if jars.mode == "packages":  # auto: only on request, the repository may not serve it
        return False
    return not J.missing(J.jar_set().spark_nlp, J.jar_dir(jars.cache_dir))


def session_conf(spark: SparkConfig, jars: JarsConfig) -> dict[str, str]:
    """The Spark settings a new session gets (also used by spark-submit docs and tests),
    for the Spark line of the installed pyspark (its jars; ANSI mode set explicitly to the
    line's own default, see ``socialrec.core.compat``)."""
    line = J.spark_line()
    conf: dict[str, str] = {
        "spark.app.name": spark.app_name,
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.ui.enabled": str(spark.ui).lower(),
        "spark.ui.showConsoleProgress": str(spark.progress).lower(),
        "spark.driver.memory": spark.driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": str(ANSI[line]).lower(),
        "spark.sql.legacy.timeParserPolicy": TIME_PARSER,
    }
    nlp = spark_nlp_wanted(jars)
    coordinates = list(J.jar_set(line).required) + (list(J.jar_set(line).spark_nlp) if nlp else [])
    if jars.mode == "local":
        directory = J.jar_dir(jars.cache_dir)
        absent = J.missing(coordinates, directory)
        if absent:
            raise SessionError(
                f"jars.mode=local: {', '.join(absent)} not in {directory}; "
                "run `make setup` (or `python -m socialrec.core.jars fetch`) once"
            )
        conf["spark.jars"] = ",".join(str(J.jar_file(c, directory)) for c in coordinates)
    elif jars.mode == "packages":
        conf["spark.jars.packages"] = ",".join(coordinates)
        conf["spark.jars.ivy"] = str(J.cache_dir(jars.cache_dir) / "ivy")
    if nlp:
        conf["spark.serializer"] = "org.apache.spark.serializer.KryoSerializer"
        conf["spark.kryoserializer.buffer.max"] = "2000M"
    conf.update({k: str(v) for k, v in spark.conf.items()})
    return conf


def under_spark_submit() -> bool:
    """True in a driver that spark-submit (or a platform like Databricks) launched."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def get_spark(spark: SparkConfig, jars: JarsConfig) -> SparkSession:
    """The active session if any, else a new one built from ``spark`` and ``jars``."""
    active = SparkSession.getActiveSession()
    if active is not None:
        log.info("using the active Spark session (%s)", active.sparkContext.master)
        return active
    builder = SparkSession.builder
    submitted = under_spark_submit()
    wanted = session_conf(spark, JarsConfig(mode="none") if submitted else jars)
    if submitted:
        # spark-submit already set master, jars and resources; add the Delta extension
        # and catalog here, and the runtime SQL settings once the session exists.
        for key in ("spark.sql.extensions", "spark.sql.catalog.spark_catalog"):
            builder = builder.config(key, wanted[key])
    else:
        # Python workers run the driver's interpreter (the venv with numpy, pandas, torch)
        # unless the user chose another.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if spark.master:
            builder = builder.master(spark.master)
        for key, value in wanted.items():
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    if submitted:
        for key, value in wanted.items():
            if session.conf.isModifiable(key):
                session.conf.set(key, value)
        ship_wheels(session)
    session.sparkContext.setLogLevel(spark.log_level)
    log.info("Spark %s session started (%s)", session.version, session.sparkContext.master)
    return session


def ship_wheels(session: SparkSession) -> list[str]:
    """Put the wheels given to ``spark-submit --py-files`` on the executors' Python path.

    PySpark adds only .zip, .egg and .jar py-files to the executors' ``sys.path``: a
    .whl reaches the driver's path (spark-submit sets PYTHONPATH) and is copied to every
    executor, but the executors' Python workers never import from it, so the first
    pandas UDF fails with "No module named 'socialrec'". A wheel is a zip archive, so a
    .zip copy of it is added with ``addPyFile``. Returns the copies added."""
    from pyspark import SparkFiles

    sc = session.sparkContext
    added = []
    for path in filter(None, sc.getConf().get("spark.submit.pyFiles", "").split(",")):
        name = os.path.basename(path)
        if not name.lower().endswith(".whl") or name[:-4] + ".zip" in sc._python_includes:
            continue
        local = os.path.join(SparkFiles.getRootDirectory(), name)  # where SparkContext copied it
        if not os.path.exists(local):
            local = path.removeprefix("file://").removeprefix("file:")
        if not os.path.exists(local):
            log.warning("py-file %s: not found on the driver; executors may not import it", path)
            continue
        copy = os.path.join(tempfile.mkdtemp(prefix="socialrec-pyfiles-"), name[:-4] + ".zip")
        shutil.copyfile(local, copy)
        sc.addPyFile(copy)
        added.append(copy)
        log.info("py-file %s: added to the executors' Python path as %s", name, os.path.basename(copy))
    return added


def ensure_checkpoint_dir(session: SparkSession, checkpoint_dir: str | None, storage_root: str) -> str:
    """Set Spark's checkpoint directory (ALS truncates its lineage there) unless one is
    set: ``checkpoint_dir`` if given; in local mode a temporary folder; on a cluster
    ``<storage_root>/_checkpoints``, which every executor reaches (a driver-local
    temporary folder would not be). Returns the directory in use."""
    sc = session.sparkContext
    current = sc.getCheckpointDir()
    if current:
        return current
    if checkpoint_dir:
        chosen = checkpoint_dir
    elif sc.master.startswith("local"):
        chosen = tempfile.mkdtemp(prefix="socialrec-checkpoints-")
    else:
        chosen = storage_root.rstrip("/") + "/_checkpoints"
    sc.setCheckpointDir(chosen)
    log.info("Spark checkpoint directory: %s", sc.getCheckpointDir())
    return sc.getCheckpointDir()
