"""The ``socialrec`` command: ``run`` (the whole pipeline) and one subcommand per stage.

    socialrec run                                   # generated network, local mode
    socialrec run --set dataset.synthetic.users=500 --set evaluation.k=[5,10]
    socialrec --conf conf/base.yaml --conf my.yaml evaluate

``--conf`` (repeatable; later files override earlier) replaces the default layers
(``conf/base.yaml`` + ``conf/env/<env>.yaml``); ``--set key=value`` (repeatable) overrides
single keys. The same ``main`` serves the console script, ``python -m socialrec``,
``jobs/*.py`` under spark-submit and notebooks.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from socialrec.core.config import ConfigError, load_config
from socialrec.evaluation.report import format_summary
from socialrec.pipeline import run_stage

log = logging.getLogger("socialrec")

COMMANDS = {
    "run": "the whole pipeline: ingest, tokenize, word2vec, embed, graph, then split, recommend, evaluate per seed, "
           "explain, report",
    "ingest": "load the dataset into the canonical Delta tables (bad rows to rejects)",
    "tokenize": "tokenise item text into the tokens table (tokenize.engine)",
    "word2vec": "train word vectors and item vectors (word2vec.engine) on the tokens",
    "embed": "transformer embeddings of item text into item_embeddings (only new or changed text)",
    "graph": "node embeddings from random walks over the edges, and neighbour-aggregated user_profiles",
    "split": "split interactions into train/test by evaluation.protocol",
    "recommend": "top-k recommendations per user for each evaluation.models entry",
    "metrics": "metrics of this run id's recommendations against its split's test pairs, and the report "
               "(after split and recommend under the same --run-id)",
    "evaluate": "the ablation runner: every evaluation.models entry on the same split(s), metrics per segment "
                "and seed into the metrics table, and the report (runs missing feature stages first)",
    "explain": "reasons and an explanation for every recommendation of this run id: a template, or for each user's "
               "top explain.top a sentence from a local causal LM (explain.model_path) that passed the guardrails",
    "stream": "Structured Streaming over new items and interactions: embed new posts, place them in the feeds of "
              "the users they match (fresh_recommendations), sum engagement into trending (stream.trigger: "
              "available_now or continuous)",
}
# Also: `socialrec datasets fetch NAME` / `socialrec datasets list` (no Spark, see datasets_main).


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    d = None if top else argparse.SUPPRESS
    parser.add_argument("--conf", action="append", default=d, metavar="PATH",
                        help="config file (repeatable; later override earlier)")
    parser.add_argument("--set", action="append", default=d, metavar="KEY=VALUE", dest="overrides",
                        help="override one key, value parsed as YAML (repeatable)")
    parser.add_argument("--env", default="local" if top else argparse.SUPPRESS,
                        help="environment layer when no --conf is given: local, cluster, gpu, databricks")
    parser.add_argument("--run-id", default=None if top else argparse.SUPPRESS,
                        help="run id (default: run.id from conf, else a new one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socialrec", description="Social content recommendation on Spark.")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, top=False)
    return parser


def datasets_main(argv: list[str]) -> int:
    """``socialrec datasets fetch NAME [--dest DIR]`` / ``socialrec datasets list``."""
    from socialrec.data.sources.fetch import ARCHIVES, FetchError, fetch

    parser = argparse.ArgumentParser(prog="socialrec datasets", description="Download public datasets (needs internet).")
    sub = parser.add_subparsers(dest="action", required=True)
    f = sub.add_parser("fetch", help="download and verify one dataset")
    f.add_argument("name", help=f"{', '.join(ARCHIVES)} or stackexchange-<site>")
    f.add_argument("--dest", default="./data", help="folder to put it in (default ./data)")
    sub.add_parser("list", help="the datasets that can be fetched, with their terms")
    args = parser.parse_args(argv)
    if args.action == "list":
        for name, spec in ARCHIVES.items():
            print(f"{name:<20} {spec.url}")
            print(f"{'':<20} {spec.terms}")
        print(f"{'stackexchange-<site>':<20} archive.org stackexchange item (CC BY-SA)")
        return 0
    try:
        folder = fetch(args.name, args.dest)
    except FetchError as exc:
        print(f"socialrec datasets: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: verified in {folder}; use --set dataset.path={folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if argv[:1] == ["datasets"]:
        return datasets_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.conf, args.overrides, env=args.env)
    except ConfigError as exc:
        print(f"socialrec: configuration error: {exc}", file=sys.stderr)
        return 2
    import socialrec
    from socialrec.core.session import SessionError, get_spark  # imports pyspark's JVM glue lazily

    log.info("socialrec %s from %s, command %s", socialrec.__version__, Path(socialrec.__file__).parent, args.command)

    start = time.perf_counter()
    try:
        spark = get_spark(cfg.spark, cfg.jars)
    except SessionError as exc:
        print(f"socialrec: {exc}", file=sys.stderr)
        return 2
    from socialrec.data.readers import SourceError

    if args.command == "stream":
        return _stream(spark, cfg, start)
    try:
        result = run_stage(spark, cfg, args.command, run_id=args.run_id)
    except SourceError as exc:  # a missing dataset folder or file: say which, no traceback
        print(f"socialrec: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"socialrec {args.command}: run {result['run_id']} on dataset {cfg.dataset.name} "
          f"in {time.perf_counter() - start:.0f} s")
    if "ingest" in result:
        c = result["ingest"]
        print("  tables: " + ", ".join(f"{k} {v:,}" for k, v in c["tables"].items()))
        for f in c["files"]:
            print(f"    {f['table']:<13} from {f['source']:<45} {f['read']:>9,} read {f['accepted']:>9,} accepted "
                  f"{f['rejected']:>7,} rejected")
        if c.get("low_ratings"):
            print(f"  low ratings: {c['low_ratings']:,} below dataset.positive_at {cfg.dataset.positive_at:g} "
                  "(kept in interactions as low_rating; not positives)")
        for table, stamp in c.get("dated_from_conf", {}).items():
            print(f"  undated: every {table} row is stamped {stamp} (dataset.files.{table}.constants.ts)")
    if "tokenize" in result:
        t = result["tokenize"]
        skipped = (f", {t['no_text']:,} without text skipped: the collaborative and social models use them"
                   if t.get("no_text") else "")
        print(f"  tokens ({t['engine']}): {t['tokens']:,} over {t['items']:,} items "
              f"({t['empty']:,} items without a token{skipped})")
    if "word2vec" in result:
        w = result["word2vec"]
        print(f"  word2vec ({cfg.word2vec.engine}): {w['words']:,} word vectors, {w['items']:,} item vectors")
        if w.get("skipped"):
            print(f"    skipped: {w['skipped']}")
        for name, why in w.get("quality", {}).get("missing", {}).items():
            print(f"    {name} not computed: {why}")
    if "embed" in result:
        e = result["embed"]
        rate = f" at {e['texts_per_s']:,.0f} texts/s" if e["texts_per_s"] else ""
        print(f"  embed ({cfg.embed.model}): {e['items']:,} item vectors, {e['embedded']:,} embedded now{rate}, "
              f"{e['kept']:,} unchanged, {e['no_text']:,} items without text")
    if "graph" in result:
        g = result["graph"]
        profiles = ", ".join(f"{k} {v:,}" for k, v in sorted(g["profiles"].items())) or "none"
        print(f"  graph: {g['edges']:,} edges ({'directed' if cfg.graph.directed else 'both ways'}), "
              f"{g['nodes']:,} node vectors, {g['users_without_vector']:,} users without one; profiles: {profiles}")
    if "split" in result:
        ev = cfg.evaluation
        share = {"cold_items": f"cold share {ev.cold_share}", "leave_last": "last pair per user",
                 "cold_users": f"cold share {ev.cold_share}, history {ev.cold_history}",
                 "time_cut": f"cut {ev.time_cut}" if ev.time_cut else f"ratio {ev.ratio}"}.get(
            ev.protocol, f"ratio {ev.ratio}")
        last = ev.seed + ev.repeats - 1 if args.command in ("run", "evaluate") else ev.seed
        print(f"  split {ev.protocol} ({share}, seed {last}): "
              f"{result['split']['train']:,} train / {result['split']['test']:,} test pairs")
    if "explain" in result:
        x = result["explain"]
        rate = f", {x['generated']:,} generated at {x['explanations_per_s']:,.1f}/s" if x["generated"] else ""
        print(f"  explain: {x['rows']:,} rows explained ("
              + ", ".join(f"{k} {v:,}" for k, v in sorted(x["explained_by"].items())) + f"){rate}")
        for e in x["examples"][:3]:
            print(f"    {e['model']} -> {e['user_id']} #{e['rank']} {e['item_id']}: {e['explanation']}")
    cost = ("jobs.", "heap_mib.")  # per-stage cost, printed on its own line below
    chosen = {k: v for k, v in result.get("params", {}).items() if not k.startswith(cost)}
    if chosen:
        print("  chosen at run time: " + ", ".join(f"{k}={v}" for k, v in sorted(chosen.items())))
    if result.get("timings"):
        jobs, heap = result.get("jobs", {}), result.get("heap_mib", {})
        print("  stages (s / Spark jobs / peak heap MiB): " + ", ".join(
            f"{s} {t:.0f} / {jobs.get(s, '-')} / {heap.get(s, '-')}" for s, t in result["timings"].items()))
    if "metrics" in result:
        print()
        print(format_summary(result["metrics"]))
    print(f"\n  Delta tables under {cfg.storage.catalog or cfg.storage.root}")
    if result.get("report"):
        print(f"  report: {result['report']}")
    if result.get("mlflow_run"):
        print(f"  MLflow run {result['mlflow_run']} at {cfg.tracking.mlflow}")
    return 0


def _stream(spark, cfg, start: float) -> int:
    """``socialrec stream``: run the queries (until stopped under continuous), then say what they did."""
    from socialrec.core.storage import Storage
    from socialrec.stream import StreamStats, run_stream

    st = cfg.stream
    storage = Storage(cfg.storage.root, cfg.storage.catalog)
    s: StreamStats | None = None
    try:
        s = run_stream(spark, storage, dataset=cfg.dataset.name, stream=st, emb=cfg.embed,
                       event_weights=cfg.dataset.event_weights, max_weight=cfg.dataset.max_weight,
                       directed=cfg.graph.directed)
    except KeyboardInterrupt:  # continuous mode stopped by hand: the queries were stopped cleanly
        print("socialrec stream: stopped", file=sys.stderr)
    print()
    print(f"socialrec stream ({st.trigger}) on dataset {cfg.dataset.name} in {time.perf_counter() - start:.0f} s")
    if s is not None:
        print(f"  fresh: {s.batches['fresh']} micro-batch(es), {s.items:,} new or edited items "
              f"({s.embedded:,} embedded), {s.rejected['items']:,} rejected, {s.fresh_rows:,} feed rows scored "
              f"(at most {st.per_user} kept per user)")
        print(f"  trending: {s.batches['trending']} micro-batch(es), {s.interactions:,} interactions, "
              f"{s.rejected['interactions']:,} rejected")
    print(f"  Delta tables fresh_recommendations, trending, rejects under {cfg.storage.catalog or cfg.storage.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
