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
from socialrec.schemas import RUNS
from socialrec.storage import Storage


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
    through a job group per stage, so at most ``spark.ui.retainedJobs`` a stage)."""

    def __init__(self, spark: SparkSession | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.jobs: dict[str, int] = {}
        self._sc = spark.sparkContext if spark is not None else None

    @contextmanager
    def stage(self, name: str):
        group = f"socialrec-{name}-{uuid.uuid4().hex[:8]}"
        if self._sc is not None:
            self._sc.setJobGroup(group, f"socialrec {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)
            if self._sc is not None:
                n = len(self._sc.statusTracker().getJobIdsForGroup(group))
                self.jobs[name] = self.jobs.get(name, 0) + n
                self._sc.setLocalProperty("spark.jobGroup.id", None)
                self._sc.setLocalProperty("spark.job.description", None)


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
