"""Paper-scale projection: from the scale curve's measured per-stage costs to a cluster
for 100M users / 10B interactions / 1B posts, with every assumption written down.

A projection, not a measurement: nothing here ran at that size. The arithmetic is in
``project`` so it can be checked (tests/test_bench.py does, on a hand-made curve).
"""

from __future__ import annotations

from bench.scale import held

# What each stage's cost follows: the count that drives its work.
DRIVER = {"ingest": "interactions", "tokenize": "items", "word2vec": "items", "embed": "items", "graph": "edges",
          "split": "interactions", "metrics": "interactions"}
TARGET = {"users": 100_000_000, "interactions": 10_000_000_000, "items": 1_000_000_000}
# The end-to-end MiniLM rate of one 16-core H200 node feeding one GPU (docs/ARCHITECTURE.md,
# measured by the project's GPU check; this machine has no GPU).
GPU_NODE_TEXTS_PER_S = 64_000
LINEAR_BELOW = 1.1
BYTES_PER_ARC = 16  # the walks' broadcast CSR adjacency: neighbour index + weight per arc  # measured exponents up to this are taken as linear (fixed costs bend small sizes)


def marginal(sizes: list[dict], stage: str, driver: str) -> float | None:
    """Seconds per unit of ``driver``: the slope of seconds = a + c * count over the sizes
    (least squares); None with fewer than two sizes or a slope that is not positive."""
    pts = [(d["counts"][driver], st["seconds"]) for d in sizes for st in d["stages"] if st["stage"] == stage]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    c = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return c if c > 0 else None


def project(curve: dict, *, cores: int, target: dict | None = None, gpu_texts_per_s: float = GPU_NODE_TEXTS_PER_S,
            gpu_nodes: int = 16, executor_cores: int = 16, hours: float = 4.0, efficiency: float = 0.6,
            retrieval_gflops: float | None = None, candidate_items: int = 10_000_000, dim: int = 384,
            max_edges: int = 50_000_000) -> dict:
    """Core-hours per stage at ``target`` from the largest completed size of ``curve``.

    Per stage: the marginal cost of one more unit of its driving count, the slope c of
    seconds = a + c * count fitted over the sizes (a is the fixed cost that small sizes
    are made of), times ``cores`` (every core busy: an upper bound for stages that leave
    some idle), times the count at the target; the average cost at the largest size
    where a slope cannot be fitted (one size, or a slope <= 0); where the measured
    exponent exceeds ``LINEAR_BELOW``, the largest size's seconds raised to it instead. The transformer stage is priced on GPU nodes instead
    (``gpu_texts_per_s`` each). Top-k retrieval is priced separately from
    ``retrieval_gflops`` (measured per ``cores``) against a window of
    ``candidate_items`` (exhaustive scoring of every post for every user is shown too,
    to say why a window is needed)."""
    target = {**TARGET, **(target or {})}
    last = curve["sizes"][-1]
    counts = dict(last["counts"])
    ratio_edges = counts["edges"] / max(counts["users"], 1)
    target.setdefault("edges", int(target["users"] * ratio_edges))
    ex = curve.get("exponents", {})
    stages = []
    for s in last["stages"]:
        name = s["stage"]
        base = name.split(":")[0]
        driver = DRIVER.get(base, "interactions")
        if base == "embed":
            gpu_s = target["items"] / gpu_texts_per_s
            stages.append({"stage": name, "driver": "items", "on": "GPU",
                           "gpu_node_hours": gpu_s / 3600, "core_hours": 0.0,
                           "measured_per_unit_core_s": s["seconds"] * cores / counts["items"]})
            continue
        slope = marginal(curve["sizes"], name, driver)
        basis = "marginal" if slope else "average"
        per_unit = (slope if slope else s["seconds"] / max(counts[driver], 1)) * cores
        scale = target[driver] / counts[driver]
        b = (ex.get(name) or {}).get("time")
        # recommend: training grows with interactions; its exhaustive top-k (users x items)
        # is replaced by the windowed retrieval priced below, so its exponent is not applied.
        applied = b is not None and b > LINEAR_BELOW and base != "recommend"
        core_s = s["seconds"] * cores * scale ** b if applied else per_unit * target[driver]
        stages.append({"stage": name, "driver": driver, "on": "CPU", "exponent": b, "exponent_applied": applied,
                       "basis": basis, "measured_per_unit_core_s": per_unit, "core_hours": core_s / 3600})
    passes = sum(1 for s in stages if s["stage"].startswith("recommend:") and s["stage"] != "recommend:popularity")
    retrieval = None
    if retrieval_gflops:
        per_core = retrieval_gflops * 1e9 / cores
        window = 2.0 * target["users"] * candidate_items * dim / per_core / 3600
        retrieval = {"gflops_measured": retrieval_gflops, "candidate_items": candidate_items, "dim": dim,
                     "passes": passes, "window_core_hours": window,
                     "exhaustive_core_hours": 2.0 * target["users"] * target["items"] * dim / per_core / 3600}
        stages.append({"stage": f"top-k retrieval ({passes} models)", "driver": "users x window", "on": "CPU",
                       "exponent": None, "exponent_applied": False,
                       "measured_per_unit_core_s": cores / (retrieval_gflops * 1e9) * 2 * dim,
                       "core_hours": window * passes})
    cpu_core_hours = sum(s["core_hours"] for s in stages)
    cores_needed = cpu_core_hours / (hours * efficiency)
    executors = max(1, -(-int(cores_needed) // executor_cores))
    gpu_hours = sum(s.get("gpu_node_hours", 0.0) for s in stages)
    # Memory is not grown from the measured heap: at these sizes it is mostly fixed (see
    # markdown). What must fit on one machine is named instead: the graph walks broadcast
    # the adjacency (~16 bytes an arc, both directions), refused above graph.max_edges.
    adjacency_gib = 2 * target["edges"] * BYTES_PER_ARC / 2**30
    out = {"target": target, "from_size": {k: counts[k] for k in ("users", "items", "interactions", "edges")},
           "stages": stages, "cpu_core_hours": cpu_core_hours, "hours": hours, "efficiency": efficiency,
           "cores_needed": cores_needed, "executors": executors, "executor_cores": executor_cores,
           "gpu_node_hours": gpu_hours, "gpu_nodes": gpu_nodes, "gpu_wall_hours": gpu_hours / gpu_nodes,
           "heap_gib_measured": max(held(st) for st in last["stages"]),
           "adjacency_gib": adjacency_gib, "max_edges": max_edges}
    if retrieval:
        out["retrieval"] = retrieval
    return out


def markdown(p: dict) -> list[str]:
    t, f = p["target"], p["from_size"]
    lines = [f"Target: {t['users']:,} users, {t['interactions']:,} interactions, {t['items']:,} posts, "
             f"~{t['edges']:,} edges (edges per user as generated). From the largest measured size: "
             f"{f['users']:,} users, {f['interactions']:,} interactions, {f['items']:,} posts.", "",
             "| stage | grows with | core-s per unit, measured (retrieval: per user-item pair) | projected |", "|---|---|---|---|"]
    for s in p["stages"]:
        proj = (f"{s['gpu_node_hours']:,.1f} GPU-node-hours" if s["on"] == "GPU"
                else f"{s['core_hours']:,.0f} core-hours")
        grow = f" (x n^{s['exponent']:.2f})" if s.get("exponent_applied") else ""
        basis = f" ({s['basis']})" if s.get("basis") else ""
        lines.append(f"| {s['stage']} | {s['driver']}{grow} | {s['measured_per_unit_core_s']:.2e}{basis} | {proj} |")
    lines += ["", f"CPU stages: {p['cpu_core_hours']:,.0f} core-hours → in {p['hours']:g} h at "
                  f"{p['efficiency']:.0%} scaling efficiency about {p['cores_needed']:,.0f} cores "
                  f"({p['executors']:,} executors of {p['executor_cores']} cores). Transformer stage: "
                  f"{p['gpu_node_hours']:,.1f} GPU-node-hours, {p['gpu_wall_hours'] * 60:,.0f} min on "
                  f"{p['gpu_nodes']} GPU nodes.",
              "",
              f"Memory is not projected from the measured heap: the largest stage held {p['heap_gib_measured']:.2f} "
              "GiB at the largest size, most of it fixed (ingest's heap barely moves across the sizes), and a "
              "cluster's per-executor memory follows its partition sizes, not the total. What must fit on one "
              f"machine does matter: the graph walks broadcast the adjacency, {p['adjacency_gib']:,.0f} GiB for "
              f"{p['target']['edges']:,} edges, "
              + ("beyond `graph.max_edges` (" + f"{p['max_edges']:,}" + "), which refuses it: at this size the "
                 "walker must become a join-based one (walk steps as shuffles), the first design limit met."
                 if p["target"]["edges"] > p["max_edges"] else f"within `graph.max_edges` ({p['max_edges']:,}).")]
    r = p.get("retrieval")
    if r:
        lines.append(f"Top-k retrieval at the measured {r['gflops_measured']:.0f} GFLOP/s per machine: scoring every "
                     f"user against a window of {r['candidate_items']:,} candidate posts (dim {r['dim']}) is "
                     f"{r['window_core_hours']:,.0f} core-hours a model ({r['passes']} models above); against all "
                     f"{t['items']:,} posts it would be "
                     f"{r['exhaustive_core_hours']:,.0f} core-hours — exhaustive scoring does not scale to this size, "
                     "a candidate window (recent posts, an ANN index) is required.")
    return lines
