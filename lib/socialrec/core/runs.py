"""Run bookkeeping: a run_id per invocation and its row in the ``runs`` table."""

from __future__ import annotations

import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession

from socialrec import __version__
from socialrec.core.schemas import RUNS
from socialrec.core.storage import Storage


def new_run_id() -> str:
    """UTC time plus a random suffix, e.g. ``20261128T184500Z-3f9a1c``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


class Timer:
    """Collects named stage timings (seconds; a stage timed again, e.g. once per seed, adds
    up) and, given a session, the number of Spark jobs each stage ran (``jobs``; counted
    through a job group per stage, so at most ``spark.ui.retainedJobs`` a stage) and the
    peak JVM heap it held (``heap_mib``: the driver's heap pools without Eden, young
    objects not yet collected, from their peak usage reset at the stage's start; a stage
    timed again keeps its highest peak). In local mode the driver's heap is where every
    task runs, so that is the margin left under ``spark.driver.memory``."""

    def __init__(self, spark: SparkSession | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.jobs: dict[str, int] = {}
        self.heap_mib: dict[str, int] = {}
        self._sc = spark.sparkContext if spark is not None else None
        self._pools = _heap_pools(spark) if spark is not None else []

    @contextmanager
    def stage(self, name: str):
        group = f"socialrec-{name}-{uuid.uuid4().hex[:8]}"
        if self._sc is not None:
            self._sc.setJobGroup(group, f"socialrec {name}")
        for pool in self._pools:
            pool.resetPeakUsage()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)
            if self._pools:
                peak = sum(int(pool.getPeakUsage().getUsed()) for pool in self._pools) >> 20
                self.heap_mib[name] = max(self.heap_mib.get(name, 0), peak)
            if self._sc is not None:
                n = len(self._sc.statusTracker().getJobIdsForGroup(group))
                self.jobs[name] = self.jobs.get(name, 0) + n
                self._sc.setLocalProperty("spark.jobGroup.id", None)
                self._sc.setLocalProperty("spark.job.description", None)


def _heap_pools(spark: SparkSession) -> list:
    """The driver JVM's heap memory pools other than Eden (none without a local JVM, e.g.
    under Spark Connect)."""
    try:
        pools = spark._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
        return [p for p in pools if str(p.getType().toString()) == "Heap memory" and "Eden" not in str(p.getName())]
    except Exception:  # noqa: BLE001 - no JVM reachable from Python: no heap figures
        return []


def max_heap_mib(spark: SparkSession) -> int | None:
    """The driver JVM's maximum heap (``spark.driver.memory`` in local mode), MiB."""
    try:
        return int(spark._jvm.java.lang.Runtime.getRuntime().maxMemory()) >> 20
    except Exception:  # noqa: BLE001 - as _heap_pools
        return None


def record_run(
    spark: SparkSession,
    storage: Storage,
    *,
    run_id: str,
    dataset: str,
    command: str,
    status: str,
    started_at: datetime,
    finished_at: datetime | None,
    config_json: str,
    timings: dict[str, float] | None = None,
    error: str | None = None,
    params: dict[str, str] | None = None,
) -> None:
    """Upsert the run's row (status running, then succeeded or failed)."""
    row = {
        "run_id": run_id,
        "dataset": dataset,
        "command": command,
        "status": status,
        "started_at": started_at.replace(tzinfo=None),
        "finished_at": finished_at.replace(tzinfo=None) if finished_at else None,
        "config": config_json,
        "code_version": code_version(),
        "timings": timings or {},
        "error": error[:4000] if error else None,
        "params": params or {},
    }
    storage.merge(spark.createDataFrame([row], RUNS.schema), RUNS)
