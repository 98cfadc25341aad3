"""MLflow logging of a run, when ``tracking.mlflow`` names a tracking URI.

One MLflow run per socialrec run (run name = run_id) in experiment
``tracking.experiment``: the configuration flattened to params (``evaluation.protocol``,
``als.reg``, ...), the values chosen at run time (``chosen.<key>``), one metric per model,
segment, metric and k (``<model>.<segment>.<metric>_at_<k>``; ``..._std`` beside it over
seeds), stage timings (``time.<stage>``), and the report folder as artifacts under
``report/``. mlflow is imported only here, so it is needed only when tracking is on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from socialrec.core import columns as C
from socialrec.evaluation.report import shown_rows

log = logging.getLogger(__name__)


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)[:500]  # MLflow's param value limit is generous, but keep rows short
    return out


def metric_key(row: dict) -> str:
    k = "" if row[C.METRIC] == "auc" else f"_at_{row[C.K]}"
    return f"{row[C.MODEL]}.{row[C.SEGMENT]}.{row[C.METRIC]}{k}"


def log_to_mlflow(cfg, *, run_id: str, rows: list[dict], params: dict[str, str], timings: dict[str, float],
                  report: str | None) -> str:
    """Log the run to MLflow; returns the MLflow run id."""
    import mlflow

    uri = cfg.tracking.mlflow
    if uri.startswith("file:") or "://" not in uri:
        # A folder store, asked for by name: MLflow 3 keeps it working only on request.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.tracking.experiment)
    with mlflow.start_run(run_name=run_id) as active:
        flat = _flatten(cfg.to_dict())
        flat.update({f"chosen.{k}": str(v)[:500] for k, v in params.items()})
        mlflow.log_params(flat)
        mlflow.set_tags({"socialrec.run_id": run_id, "dataset": cfg.dataset.name,
                         "protocol": cfg.evaluation.protocol})
        metrics = {}
        for r in shown_rows(rows):
            metrics[metric_key(r)] = float(r[C.VALUE])
            if r.get("std") is not None:
                metrics[metric_key(r) + "_std"] = float(r["std"])
        metrics.update({f"time.{k}": float(v) for k, v in timings.items()})
        mlflow.log_metrics(metrics)
        if report:
            mlflow.log_artifacts(str(Path(report).parent), artifact_path="report")
        log.info("mlflow: logged run %s (%d params, %d metrics) to %s", active.info.run_id, len(flat), len(metrics),
                 cfg.tracking.mlflow)
        return active.info.run_id
