"""One shared local SparkSession for the whole suite (Delta configured, UI off, few
shuffle partitions), built by the library's own factory from conf/env/test.yaml, and a
fresh warehouse folder per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialrec.core.config import CONF_DIR, load_config

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def test_config():
    return load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml"])


@pytest.fixture(scope="session")
def spark(test_config, tmp_path_factory):
    from socialrec.core.session import get_spark

    cfg = test_config
    cfg.spark.conf = {**cfg.spark.conf, "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse"))}
    session = get_spark(cfg.spark, cfg.jars)
    yield session
    session.stop()


@pytest.fixture
def storage(tmp_path):
    from socialrec.core.storage import Storage

    return Storage(root=str(tmp_path / "warehouse"))


@pytest.fixture(scope="module", autouse=True)
def _drop_cached_data_after_each_module():
    """The suite shares one 2g driver: data a module's tests cached (validate's persisted
    frames, a fixture's corpus) is dropped when the module ends, so that the heap left for
    broadcasts later in the run does not depend on which modules ran before."""
    yield
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()
