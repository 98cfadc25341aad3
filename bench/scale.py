"""The scale curve: the whole pipeline on the generated network at growing sizes.

    make bench-scale                                  # or: PYTHONPATH=lib:. .venv/bin/python -m bench.scale
    make bench-scale ARGS="--sizes 1000,4000,16000"
    make bench-scale ARGS="--probe"                   # keep doubling until a size fails or passes --cap

Each size runs in its own process (a fresh JVM, so one size's memory does not carry
into the next and a size that dies does not take the suite with it): the stages of
``socialrec run`` called one at a time under one run id (ingest, tokenize, word2vec,
embed, graph, split, then recommend once per model, then metrics with the report),
each timed and its peak resident memory sampled (driver, JVM and Python workers
together). ALS is not tuned here (``als.tune=false``: the grid multiplies its cost and
is measured by bench/als.py). The parent fits, per stage, the growth exponent b of
time = a * interactions^b over the sizes, and records the first size that fails
(the stage it was in and why) or, with ``--probe``, that exceeds ``--cap`` seconds.

Writes bench/results/scale-<time>.json and .md and prints the table; ``--json PATH``
hands the suite's rows and the curve to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import OUT, PeakRSS, PeakSampler, _gib, emit, fit_exponent, machine_label

ROOT = Path(__file__).resolve().parents[1]
# What the generated network holds per user: one post and ten interactions (the ratio of
# the sizes the issue names, 10k users / 100k interactions up to 1M / 10M); follows as generated.
POSTS_PER_USER = 1.0
INTERACTIONS_PER_USER = 10.0
SIZES = "1000,2500,5000,10000"
MODELS = ["popularity", "als", "w2v_content", "transformer_content", "hybrid", "hybrid-social"]
QUICK_SIZES = "200,400"
QUICK_MODELS = ["popularity", "als", "transformer_content"]


# --------------------------------------------------------------------------- one size (child process)

class JvmHeap(PeakSampler):
    """Peak JVM heap held during a block: the heap pools' current use without Eden (young
    objects not yet collected), sampled every second through the driver's
    MemoryPoolMXBeans. The process's resident memory follows the heap the JVM has grown
    to (up to spark.driver.memory) and never shrinks; this follows what the data holds."""

    every = 1.0

    def __init__(self, spark):
        super().__init__()
        self._pools = [p for p in spark._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
                       if str(p.getType().toString()) == "Heap memory" and "Eden" not in str(p.getName())]

    def sample(self) -> int:
        return sum(int(p.getUsage().getUsed()) for p in self._pools)


def run_one(users: int, out: Path, *, models: list[str], driver_memory: str, posts_per_user: float,
            interactions_per_user: float) -> None:
    """The pipeline stage by stage at ``users``; the result file is rewritten after every
    stage, so a process that dies leaves the stage it died in. The tables live beside
    ``out`` (the parent's temporary folder, removed by the parent even when this process
    is killed)."""
    from pyspark.sql import functions as F

    from socialrec.core import columns as C
    from socialrec.core.config import CONF_DIR, load_config
    from socialrec.core.session import get_spark
    from socialrec.core.storage import Storage
    from socialrec.pipeline import run_stage

    work = out.parent / "work"
    posts = max(50, int(users * posts_per_user))
    overrides = [f"dataset.synthetic.users={users}", f"dataset.synthetic.posts={posts}", "spark.progress=false",
                 f"dataset.synthetic.interactions_per_user_mean={interactions_per_user}",
                 f"storage.root={work / 'warehouse'}", "als.tune=false", f"spark.driver_memory={driver_memory}",
                 f"evaluation.models={json.dumps(models)}", "report.enabled=true"]
    cfg = load_config([Path(CONF_DIR) / "base.yaml", Path(CONF_DIR) / "env" / "local.yaml"], overrides)
    result = {"users": users, "posts": posts, "models": models, "driver_memory": driver_memory, "stages": [],
              "running": None, "done": False}

    def write():
        out.write_text(json.dumps(result, indent=2))

    write()
    start_all = time.perf_counter()
    with PeakRSS() as total:
        result["running"] = "session"
        write()
        start = time.perf_counter()
        spark = get_spark(cfg.spark, cfg.jars)
        result["session_s"] = time.perf_counter() - start
        run_id = "scale"
        plan = [("ingest", cfg), ("tokenize", cfg), ("word2vec", cfg), ("embed", cfg), ("graph", cfg), ("split", cfg)]
        plan += [(f"recommend:{m}", dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, models=[m])))
                 for m in models]
        plan.append(("metrics", cfg))
        try:
            for name, c in plan:
                result["running"] = name
                write()
                with PeakRSS() as mem, JvmHeap(spark) as heap:
                    start = time.perf_counter()
                    stage_out = run_stage(spark, c, name.split(":")[0], run_id=run_id)
                    seconds = time.perf_counter() - start
                result["stages"].append({"stage": name, "seconds": seconds, "peak_gib": _gib(mem.peak),
                                         "heap_gib": _gib(heap.peak), "jobs": sum(stage_out.get("jobs", {}).values())})
                if name == "ingest":
                    storage = Storage(cfg.storage.root)
                    result["counts"] = {t: storage.read(spark, t).where(F.col(C.DATASET) == cfg.dataset.name).count()
                                        for t in ("users", "items", "interactions", "edges")}
                write()
            result["running"] = None
            result["done"] = True
        finally:
            spark.stop()
    result["total_s"] = time.perf_counter() - start_all
    result["peak_gib"] = _gib(total.peak)
    write()


# --------------------------------------------------------------------------- the curve (parent)

def _why(stderr: str, rc: int, timed_out: bool, cap: float) -> str:
    if timed_out:
        return f"over the {cap:.0f} s cap"
    for marker, reason in (("java.lang.OutOfMemoryError", "JVM out of memory (java.lang.OutOfMemoryError)"),
                           ("MemoryError", "Python out of memory (MemoryError)"),
                           ("No space left on device", "disk full")):
        if marker in stderr:
            return reason
    if rc in (-9, 137):
        return "killed (SIGKILL: the kernel's out-of-memory killer, most likely)"
    last = [ln for ln in stderr.strip().splitlines() if ln.strip() and "WARN" not in ln]
    return f"exit {rc}: {last[-1][:300] if last else 'no message'}"


def one_size(users: int, *, models, driver_memory, posts_per_user, interactions_per_user, cap: float) -> dict:
    """Run one size in a child process under ``cap`` seconds; its result, with
    ``failed`` / ``why`` / ``stage`` when it did not finish."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "size.json"
        cmd = [sys.executable, "-m", "bench.scale", "--one", str(users), "--out", str(out),
               "--models", ",".join(models), "--driver-memory", driver_memory,
               "--posts-per-user", str(posts_per_user), "--interactions-per-user", str(interactions_per_user)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT),
                                                             os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        timed_out = False
        with PeakRSS() as mem, open(Path(tmp) / "stderr", "w+") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=cap)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, 9)
                rc = proc.wait()
            err.seek(0)
            stderr = err.read()
        wall = time.perf_counter() - start
        result = json.loads(out.read_text()) if out.exists() and out.stat().st_size else {"users": users, "stages": []}
    result["wall_s"] = wall
    result["tree_peak_gib"] = _gib(mem.peak)
    if rc != 0 or not result.get("done"):
        result["failed"] = True
        result["stage"] = result.get("running") or "start"
        result["why"] = _why(stderr, rc, timed_out, cap)
        result["stderr_tail"] = stderr[-3000:]
    return result


def curve(sizes: list[int], *, models, driver_memory, posts_per_user, interactions_per_user, budget: float,
          probe: bool = False, cap: float = 1800.0) -> dict:
    """Run ``sizes`` in order (with ``probe``, keep doubling the last until one fails or
    passes ``cap``); stop at the first failure or when the next size would not fit the
    ``budget`` (projected from the fitted total-time exponent)."""
    done, failure, skipped = [], None, []
    spent = 0.0
    queue = list(sizes)
    while queue:
        users = queue.pop(0)
        if done and budget:
            exp = fit_exponent([d["users"] for d in done], [d["wall_s"] for d in done]) or 1.0
            expected = done[-1]["wall_s"] * (users / done[-1]["users"]) ** max(exp, 1.0)
            if spent + expected > budget:
                skipped.append({"users": users, "expected_s": expected})
                continue
        print(f"scale: {users:,} users ...", flush=True)
        r = one_size(users, models=models, driver_memory=driver_memory, posts_per_user=posts_per_user,
                     interactions_per_user=interactions_per_user, cap=min(cap, budget - spent) if budget else cap)
        spent += r["wall_s"]
        print(f"scale: {users:,} users: {'FAILED in ' + r['stage'] + ': ' + r['why'] if r.get('failed') else 'done'}"
              f" in {r['wall_s']:.0f} s, peak {r['tree_peak_gib']:.1f} GiB", flush=True)
        if r.get("failed"):
            failure = r
            break
        done.append(r)
        if probe and not queue:
            queue.append(users * 2)
    return {"sizes": done, "failure": failure, "skipped": skipped, "exponents": exponents(done)}


def held(stage: dict) -> float:
    """A stage's peak JVM heap held (its resident memory where no heap figure was taken)."""
    return stage.get("heap_gib", stage["peak_gib"])


def exponents(done: list[dict]) -> dict:
    """Per stage (and ``total``): the growth exponent in interactions of time and of peak
    JVM heap held (of resident memory where no heap figure was taken)."""
    if len(done) < 2:
        return {}
    n = [d["counts"]["interactions"] for d in done]
    names = [s["stage"] for s in done[0]["stages"]]
    out = {}
    for name in names:
        got = [next((s for s in d["stages"] if s["stage"] == name), None) for d in done]
        if None not in got:
            out[name] = {"time": fit_exponent(n, [s["seconds"] for s in got]),
                         "memory": fit_exponent(n, [held(s) for s in got])}
    out["total"] = {"time": fit_exponent(n, [d["wall_s"] for d in done]),
                    "memory": fit_exponent(n, [max(held(s) for s in d["stages"]) for d in done])}
    return out


def table(res: dict) -> list[str]:
    """Markdown: one row per stage with seconds, peak heap and peak resident GiB per size,
    and the exponents; then the largest size and what stopped the next."""
    done = res["sizes"]
    if not done:
        f = res.get("failure")
        return [f"No size completed. {f['users']:,} users: failed in stage `{f['stage']}` — {f['why']}."
                if f else "No size was run."]
    head = ("| stage | " + " | ".join(f"{d['users']:,} users: s | jobs | heap | RSS" for d in done)
            + " | time ~ n^b | heap ~ n^b |")
    lines = [
        "Sizes: " + "; ".join(f"{d['users']:,} users, {d['counts']['items']:,} posts, "
                              f"{d['counts']['interactions']:,} interactions, {d['counts']['edges']:,} edges"
                              for d in done),
        "", head, "|---|" + "---|---|---|---|" * len(done) + "---|---|"]
    ex = res["exponents"]
    for name in [s["stage"] for s in done[0]["stages"]]:
        cells = []
        for d in done:
            s = next((s for s in d["stages"] if s["stage"] == name), None)
            cells += ([f"{s['seconds']:.1f}", str(s.get("jobs", "-")), f"{held(s):.2f}", f"{s['peak_gib']:.1f}"]
                      if s else ["-", "-", "-", "-"])
        e = ex.get(name, {})
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_e(e.get('time'))} | {_e(e.get('memory'))} |")
    cells = []
    for d in done:
        cells += [f"{d['wall_s']:.1f}", str(sum(s.get("jobs", 0) for s in d["stages"])),
                  f"{max(held(s) for s in d['stages']):.2f}", f"{d['tree_peak_gib']:.1f}"]
    e = ex.get("total", {})
    lines.append("| **whole pipeline** (process wall time, peaks) | " + " | ".join(cells)
                 + f" | {_e(e.get('time'))} | {_e(e.get('memory'))} |")
    f = res.get("failure")
    lines.append("")
    if f:
        lines.append(f"Largest size that completed: {done[-1]['users']:,} users. Next size, {f['users']:,} users: "
                     f"failed in stage `{f['stage']}` — {f['why']}.")
    else:
        lines.append(f"Largest size run: {done[-1]['users']:,} users (all completed).")
    for s in res.get("skipped", []):
        lines.append(f"Not run: {s['users']:,} users (projected {s['expected_s']:.0f} s, over the time budget).")
    lines += limits(res)
    return lines


def _gib_setting(memory: str) -> float | None:
    units = {"k": 2**-20, "m": 2**-10, "g": 1.0, "t": 1024.0}
    m = memory.strip().lower()
    try:
        return float(m[:-1]) * units[m[-1]] if m[-1] in units else float(m) / 2**30
    except (ValueError, IndexError):
        return None


def limits(res: dict) -> list[str]:
    """What grows fastest, and which stage's heap would fill the driver heap first, from
    the fitted exponents (projections from the measured sizes, said as such)."""
    done, ex = res["sizes"], res.get("exponents") or {}
    stages = {k: v for k, v in ex.items() if k != "total"}
    if len(done) < 2 or not stages:
        return []
    out = []
    fastest = max((k for k in stages if stages[k]["time"] is not None), key=lambda k: stages[k]["time"], default=None)
    if fastest:
        out.append(f"Fastest-growing time: `{fastest}` (time ~ n^{stages[fastest]['time']:.2f}).")
    limit = _gib_setting((res.get("settings") or {}).get("driver_memory", "")) or None
    last, n_last = done[-1], done[-1]["counts"]["interactions"]
    best = None
    for name, e in stages.items():
        st = next((x for x in last["stages"] if x["stage"] == name), None)
        if limit is None or st is None or not e["memory"] or e["memory"] <= 0.05 or held(st) <= 0:
            continue
        n = n_last * (limit / held(st)) ** (1 / e["memory"])
        if best is None or n < best[1]:
            best = (name, n, e["memory"])
    if best:
        users = best[1] / (n_last / last["users"])
        out.append(f"Heap (projected): at its fitted growth (heap ~ n^{best[2]:.2f}) `{best[0]}` would fill the "
                   f"{limit:g} GiB driver heap first, near {best[1]:,.0f} interactions (~{users:,.0f} users).")
    return out


def _e(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale")
    ap.add_argument("--sizes", default=SIZES, help="users per size (posts and interactions follow)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--driver-memory", default="12g", help="spark.driver.memory (the JVM heap in local mode)")
    ap.add_argument("--posts-per-user", type=float, default=POSTS_PER_USER)
    ap.add_argument("--interactions-per-user", type=float, default=INTERACTIONS_PER_USER)
    ap.add_argument("--budget", type=float, default=2400, help="seconds for the whole curve (0: no limit)")
    ap.add_argument("--probe", action="store_true", help="after --sizes, keep doubling until a size fails or "
                                                         "passes --cap")
    ap.add_argument("--cap", type=float, default=1800, help="seconds one size may take")
    ap.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} with {', '.join(QUICK_MODELS)}")
    ap.add_argument("--json", default=None, help="write the suite's rows and the curve here")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    if args.one is not None:
        run_one(args.one, Path(args.out), models=models, driver_memory=args.driver_memory,
                posts_per_user=args.posts_per_user, interactions_per_user=args.interactions_per_user)
        return 0
    if args.quick:
        args.sizes, models = QUICK_SIZES, QUICK_MODELS
    sizes = [int(x) for x in args.sizes.split(",")]
    res = curve(sizes, models=models, driver_memory=args.driver_memory, posts_per_user=args.posts_per_user,
                interactions_per_user=args.interactions_per_user, budget=args.budget, probe=args.probe, cap=args.cap)
    res["settings"] = {"models": models, "driver_memory": args.driver_memory, "posts_per_user": args.posts_per_user,
                       "interactions_per_user": args.interactions_per_user, "als_tune": False}
    machine = machine_label()
    lines = table(res)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"scale-{stamp}.json").write_text(json.dumps({"when": stamp, "machine": machine, **res}, indent=2))
    (OUT / f"scale-{stamp}.md").write_text("\n".join([f"# socialrec bench.scale {stamp}", "", machine, ""] + lines) + "\n")
    print("\n".join(lines))
    emit(args.json, "scale", machine, [], {"curve": res, "markdown": lines})
    return 0 if res["sizes"] and not (res["failure"] and not args.probe) else 1


if __name__ == "__main__":
    raise SystemExit(main())
