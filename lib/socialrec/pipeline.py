"""The whole pipeline: the configuration mapped onto the stages (``socialrec.stages``),
run in order for each seed, timed, and recorded in ``runs``.

Each stage reads its inputs from Delta, writes its outputs to Delta with MERGE (so a
rerun leaves the same rows) and returns a small dict of what it did for logs and the
summary. Stages take the values they need, not the whole config; ``run_stage`` maps the
config onto them (``STAGE_RUNNERS``) and records the run in ``runs``.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialrec.core import columns as C
from socialrec.core.config import RUN_ID, RUN_ID_RULE, Config, ConfigError
from socialrec.core.runs import Timer, max_heap_mib, new_run_id, record_run
from socialrec.core.schemas import (
    EDGES,
    INTERACTIONS,
    ITEM_EMBEDDINGS,
    ITEM_W2V,
    ITEMS,
    METRICS,
    NODE_EMBEDDINGS,
    RUNS,
    TOKENS,
)
from socialrec.core.session import ensure_checkpoint_dir
from socialrec.core.storage import Storage
from socialrec.stages.embed import embed_stage
from socialrec.stages.evaluate import evaluate_stage, summarise_seeds
from socialrec.stages.explain import explain_stage
from socialrec.stages.graph import graph_stage
from socialrec.stages.ingest import ingest_stage
from socialrec.stages.inputs import has_rows
from socialrec.stages.recommend import models_need, recommend_stage
from socialrec.stages.split import split_stage
from socialrec.stages.tokenize import tokenize_stage
from socialrec.stages.word2vec import word2vec_stage

log = logging.getLogger(__name__)

FEATURE_STAGES = ("ingest", "tokenize", "word2vec", "embed", "graph")
STAGES = (*FEATURE_STAGES, "split", "recommend", "evaluate", "explain")


def missing_features(spark: SparkSession, storage: Storage, cfg: Config) -> list[str]:
    """The feature stages ``evaluate`` must run first: ingest when the dataset has no
    interactions, tokenize/word2vec when a model needs Word2Vec item vectors that are not
    there, embed when a model needs transformer embeddings of items that lack one."""
    ds = cfg.dataset.name
    needed = []
    if not has_rows(storage.read(spark, INTERACTIONS, ds)):
        return ["ingest", "tokenize", "word2vec", *(["embed"] if _needs(cfg, "transformer") else []),
                *(["graph"] if _needs(cfg, "graph") else [])]
    if _needs(cfg, "w2v"):
        w2v = storage.read(spark, ITEM_W2V, ds).where(F.col("engine") == cfg.word2vec.engine)
        if not has_rows(w2v):
            needed += ["tokenize", "word2vec"] if not has_rows(storage.read(spark, TOKENS, ds)) else ["word2vec"]
    if _needs(cfg, "transformer"):
        emb = storage.read(spark, ITEM_EMBEDDINGS, ds).where(F.col(C.MODEL) == cfg.embed.model)
        missing = storage.read(spark, ITEMS, ds).select(C.ITEM).join(emb.select(C.ITEM), C.ITEM, "left_anti")
        if has_rows(missing):
            needed.append("embed")
    if _needs(cfg, "graph") and (not has_rows(storage.read(spark, NODE_EMBEDDINGS, ds))
                                 or "embed" in needed) and has_rows(storage.read(spark, EDGES, ds)):
        needed.append("graph")  # after embed: its profiles read the embeddings
    return needed


def _needs(cfg: Config, kind: str) -> bool:
    """Whether any listed model (or the ALS bridge) reads ``kind`` item vectors (or, for
    ``graph``, the node embeddings); the models' registry says what each needs."""
    return models_need(cfg.evaluation.models, kind, cfg.als.bridge)


def report_dir(cfg: Config, run_id: str) -> Path:
    """Where a run's report goes: ``report.dir``/<run_id>, else next to the tables
    (``<storage.root>/reports/<run_id>``) when the root is a local folder, else
    ``./reports/<run_id>``."""
    if cfg.report.dir:
        return Path(cfg.report.dir) / run_id
    root = cfg.storage.root
    if not cfg.storage.catalog and (root.startswith("file:") or "://" not in root):
        return Path(root.removeprefix("file://").removeprefix("file:")) / "reports" / run_id
    return Path("reports") / run_id


@dataclasses.dataclass
class StageCall:
    """What a stage runner reads: the session, storage and configuration, the run, the
    seed it runs for (``offset``: its index among the run's ``seeds``), the list length
    ``depth`` and the run's ``params`` (values chosen at run time, for ``runs.params``)."""

    spark: SparkSession
    storage: Storage
    cfg: Config
    run_id: str
    seed: int
    offset: int
    depth: int
    params: dict
    seeds: int

    def record(self, values: dict) -> None:
        """Values chosen at run time into ``params``, per seed when the run has several."""
        self.params.update(values if self.seeds == 1 else {f"seed{self.seed}.{k}": v for k, v in values.items()})


def _run_recommend(c: StageCall) -> dict:
    ev, chosen = c.cfg.evaluation, {}
    out = recommend_stage(
        c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=ev.protocol, seed=c.seed,
        models=ev.models, k=c.cfg.recommend.k, depth=c.depth, w2v_engine=c.cfg.word2vec.engine, content=c.cfg.content,
        embed_model=c.cfg.embed.model, als=dataclasses.replace(c.cfg.als, seed=c.cfg.als.seed + c.offset),
        hybrid=dataclasses.replace(c.cfg.hybrid, seed=c.cfg.hybrid.seed + c.offset), graph=c.cfg.graph,
        chosen_params=chosen, cold_share=ev.cold_share, cold_history=ev.cold_history, auc_depth=ev.auc_depth)
    c.record(chosen)
    return out


def _run_evaluate(c: StageCall) -> None:
    ev = c.cfg.evaluation
    _, info = evaluate_stage(c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=ev.protocol,
                             seed=c.seed, models=ev.models, ks=ev.k, metrics=ev.metrics, segments=ev.segments,
                             light_share=ev.light_users, embed_model=c.cfg.embed.model,
                             w2v_engine=c.cfg.word2vec.engine)
    c.record(info)


# Each stage of `socialrec run` (STAGES, in order) and the function that runs it; its
# return value is the stage's entry in the run's result (None: no entry). Adding a stage
# is a runner here and its place in STAGES.
STAGE_RUNNERS: dict = {
    "ingest": lambda c: ingest_stage(c.spark, c.storage, c.cfg.dataset),
    "tokenize": lambda c: tokenize_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, tok=c.cfg.tokenize),
    "word2vec": lambda c: word2vec_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, w2v=c.cfg.word2vec,
                                         run_id=c.run_id),
    "embed": lambda c: embed_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, emb=c.cfg.embed),
    "graph": lambda c: graph_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, cfg=c.cfg.graph,
                                   embed_model=c.cfg.embed.model),
    "split": lambda c: split_stage(c.spark, c.storage, dataset=c.cfg.dataset.name, protocol=c.cfg.evaluation.protocol,
                                   ratio=c.cfg.evaluation.ratio, seed=c.seed, cold_share=c.cfg.evaluation.cold_share,
                                   cold_history=c.cfg.evaluation.cold_history, cut=c.cfg.evaluation.time_cut),
    "recommend": _run_recommend,
    "evaluate": _run_evaluate,
    "explain": lambda c: explain_stage(
        c.spark, c.storage, run_id=c.run_id, dataset=c.cfg.dataset.name, protocol=c.cfg.evaluation.protocol,
        seed=c.seed, cfg=c.cfg.explain, graph=c.cfg.graph, embed_model=c.cfg.embed.model,
        w2v_engine=c.cfg.word2vec.engine, w2v_variant=c.cfg.content.variant),
}


def run_stage(spark: SparkSession, cfg: Config, command: str, run_id: str | None = None) -> dict:
    """Run one stage, ``run`` (all of them) or ``evaluate`` (the ablation runner), as
    configured, recorded in ``runs``.

    ``run`` and ``evaluate`` end with the evaluation loop: for each of
    ``evaluation.repeats`` seeds (``evaluation.seed`` + 0, 1, ...; the models' seeds move
    with it) split, train and recommend every listed model on that same split, and
    write the metrics; then summary rows over the seeds, the report and, when
    ``tracking.mlflow`` is set, the MLflow run. ``evaluate`` first runs only the feature
    stages whose outputs are missing (``missing_features``)."""
    storage = Storage(cfg.storage.root, cfg.storage.catalog)
    ensure_checkpoint_dir(spark, cfg.spark.checkpoint_dir, cfg.storage.root)
    run_id = run_id or cfg.run.id or new_run_id()
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(f"run id: {RUN_ID_RULE}, got {run_id!r}")
    ev = cfg.evaluation
    if command == "run":
        stages = [s for s in FEATURE_STAGES if (s != "embed" or _needs(cfg, "transformer"))
                  and (s != "graph" or _needs(cfg, "graph"))]
    elif command == "evaluate":
        stages = missing_features(spark, storage, cfg)
    elif command == "metrics":  # the metrics of this run's split and recommendations (stage by stage use)
        stages = ["evaluate"]
    else:
        stages = [command]
    loop = command in ("run", "evaluate")
    seeds = [ev.seed + i for i in range(ev.repeats)] if loop else [ev.seed]
    depth = max(cfg.recommend.k, *ev.k)
    timer = Timer(spark)
    started = datetime.now(timezone.utc)
    params: dict[str, str] = {}  # values chosen while running (tuned ALS, segment cuts), recorded in runs
    # Stages called one at a time under one run id (a notebook, a scheduler's tasks) make
    # one run: the command lists the stages in call order, timings and params add up,
    # started_at is the first call's. The same command again replaces the row.
    recorded = command
    prior = storage.read(spark, RUNS).where(F.col(C.RUN_ID) == run_id).first()
    if prior is not None and prior.command and prior.command != command:
        called = prior.command.split(",")
        recorded = ",".join(called + ([command] if command not in called else []))
        started = prior.started_at.replace(tzinfo=timezone.utc) if prior.started_at else started
        timer.timings.update(prior.timings or {})
        params.update(prior.params or {})
        timer.jobs.update({key[len("jobs."):]: int(v) for key, v in params.items() if key.startswith("jobs.")})
        timer.heap_mib.update({key[len("heap_mib."):]: int(v) for key, v in params.items()
                               if key.startswith("heap_mib.")})
    max_heap = max_heap_mib(spark)
    record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="running",
               started_at=started, finished_at=None, config_json=cfg.to_json(), timings=timer.timings, params=params)
    result: dict = {"run_id": run_id}

    def one(stage: str, seed: int, offset: int) -> None:
        log.info("stage %s: starting (run %s, seed %d)", stage, run_id, seed)
        runner = STAGE_RUNNERS.get(stage)
        if runner is None:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}, run")
        with timer.stage(stage):
            out = runner(StageCall(spark=spark, storage=storage, cfg=cfg, run_id=run_id, seed=seed, offset=offset,
                                   depth=depth, params=params, seeds=len(seeds)))
            if out is not None:
                result[stage] = out
        params[f"jobs.{stage}"] = str(timer.jobs[stage])  # Spark jobs, all seeds together
        heap = ""
        if stage in timer.heap_mib:  # the highest over the seeds
            params[f"heap_mib.{stage}"] = str(timer.heap_mib[stage])
            heap = f", peak heap {timer.heap_mib[stage]:,} of {max_heap:,} MiB" if max_heap else ""
        log.info("stage %s: done in %.1f s, %d Spark jobs%s", stage, timer.timings[stage], timer.jobs[stage], heap)

    try:
        for stage in stages:
            one(stage, ev.seed, 0)
        if loop:
            for offset, seed in enumerate(seeds):
                for stage in ("split", "recommend", "evaluate"):
                    one(stage, seed, offset)
            if len(seeds) > 1:
                summarise_seeds(spark, storage, run_id=run_id, protocol=ev.protocol, seeds=seeds, models=ev.models)
            if cfg.explain.enabled:  # the recommendations that stay are the last seed's
                one("explain", seeds[-1], len(seeds) - 1)
        if loop or command == "metrics":
            rows = storage.read(spark, METRICS).where((F.col(C.RUN_ID) == run_id) & (F.col(C.SPLIT) == ev.protocol)
                                                      & F.col(C.MODEL).isin(*ev.models))
            result["metrics"] = [r.asDict() for r in rows.collect()]  # models x segments x metrics x k (x seeds)
            if cfg.report.enabled:
                from socialrec.evaluation.report import write_report

                with timer.stage("report"):
                    result["report"] = str(write_report(
                        spark, storage, cfg, run_id=run_id, rows=result["metrics"], params=params,
                        timings=timer.timings, out=report_dir(cfg, run_id)))
            if cfg.tracking.mlflow:
                from socialrec.evaluation.tracking import log_to_mlflow

                with timer.stage("tracking"):
                    result["mlflow_run"] = log_to_mlflow(cfg, run_id=run_id, rows=result["metrics"], params=params,
                                                         timings=timer.timings, report=result.get("report"))
    except Exception as exc:
        record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="failed",
                   started_at=started, finished_at=datetime.now(timezone.utc), config_json=cfg.to_json(),
                   timings=timer.timings, error="".join(traceback.format_exception(exc)), params=params)
        raise
    record_run(spark, storage, run_id=run_id, dataset=cfg.dataset.name, command=recorded, status="succeeded",
               started_at=started, finished_at=datetime.now(timezone.utc), config_json=cfg.to_json(),
               timings=timer.timings, params=params)
    result["timings"] = timer.timings
    result["jobs"] = timer.jobs
    result["heap_mib"] = timer.heap_mib
    result["params"] = params
    return result
