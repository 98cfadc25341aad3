"""The evaluation report of a run: one self-contained HTML page plus its PNG plots.

``write_report`` writes, into one folder (next to the tables by default, see
``pipeline.report_dir``):

* ``index.html`` — readable offline in a browser (plots embedded as data URIs, no script,
  no network): the models x metrics table at the main cut-off, every cut-off, the
  segments (cold items, light users, users with friends), coverage / novelty / diversity,
  the 2-D projection of item embeddings, and the run's configuration, chosen values and
  timings;
* ``metrics_at_k.png``, ``segments.png``, ``beyond_accuracy.png``, ``embeddings.png``;
* ``metrics.csv`` — the rows the page shows.

Everything drawn comes from the ``metrics`` rows of the run (bounded: models x segments x
metrics x k x seeds) and a seeded sample of ``report.projection_items`` item vectors.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from socialrec.core import columns as C

log = logging.getLogger(__name__)

ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
BEYOND = ("coverage", "novelty", "diversity")
ORDER = (*ACCURACY, "auc", *BEYOND)
SEGMENT_LABELS = {"all": "all test users", "cold_items": "cold items", "light_users": "light users",
                  "with_friends": "users with friends"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def shown_rows(rows: list[dict]) -> list[dict]:
    """The rows the report shows: the summary rows over seeds when the run has them,
    else the single seed's rows."""
    summary = [r for r in rows if r.get(C.SEED) is None and r.get("n_seeds")]
    return summary or [r for r in rows if r.get(C.SEED) is not None]


def main_k(rows: list[dict], preferred: int = 10) -> int:
    ks = sorted({r[C.K] for r in rows if r[C.METRIC] in ACCURACY})
    if not ks:
        return preferred
    return preferred if preferred in ks else ks[-1]


def item_projection(spark, storage, cfg, n: int, seed: int = 42):
    """(xy, labels, source) for a seeded sample of at most ``n`` embedded items: the first
    two principal components of their vectors (transformer embeddings, else Word2Vec mean
    vectors) and each item's first tag or genre; None when the dataset has no vectors."""
    from pyspark.sql import functions as F

    from socialrec.core.schemas import ITEM_EMBEDDINGS, ITEM_W2V, ITEMS

    ds = cfg.dataset.name
    sources = (
        (cfg.embed.model, storage.read(spark, ITEM_EMBEDDINGS, ds).where(F.col(C.MODEL) == cfg.embed.model)),
        (f"Word2Vec ({cfg.word2vec.engine}, mean)", storage.read(spark, ITEM_W2V, ds)
         .where((F.col("engine") == cfg.word2vec.engine) & (F.col("variant") == "mean"))),
    )
    items = storage.read(spark, ITEMS, ds).select(C.ITEM, F.element_at(C.TAGS, 1).alias("_tag"))
    for name, vecs in sources:
        sample = (vecs.where(F.col("vector").isNotNull()).select(C.ITEM, "vector")
                  .join(items, C.ITEM, "left")
                  .orderBy(F.xxhash64(F.lit(seed), F.col(C.ITEM)))
                  .limit(n).collect())  # bounded: report.projection_items rows
        if len(sample) >= 2:
            x = np.asarray([r.vector for r in sample], dtype=np.float64)
            x -= x.mean(axis=0)
            _, _, vt = np.linalg.svd(x, full_matrices=False)
            xy = x @ vt[:2].T
            labels = [r["_tag"] or "(no tag)" for r in sample]
            return xy, labels, name
    return None


def _png(fig, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    path.write_bytes(buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _models(rows: list[dict]) -> list[str]:
    """Models in a stable order: best nDCG (segment all, main k) first."""
    k = main_k(rows)
    score = {r[C.MODEL]: r[C.VALUE] for r in rows
             if r[C.METRIC] == "ndcg" and r[C.K] == k and r[C.SEGMENT] == "all"}
    return sorted({r[C.MODEL] for r in rows}, key=lambda m: (-score.get(m, -1.0), m))


def plot_metrics_at_k(rows: list[dict], path: Path) -> str | None:
    plt = _plt()
    names = [m for m in ("ndcg", "recall", "precision", "map") if any(r[C.METRIC] == m for r in rows)]
    ks = sorted({r[C.K] for r in rows if r[C.METRIC] in names})
    if not names or len(ks) < 2:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for model in _models(rows):
            pts = sorted((r[C.K], r[C.VALUE], r.get("std")) for r in rows
                         if r[C.MODEL] == model and r[C.METRIC] == name and r[C.SEGMENT] == "all")
            if not pts:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.plot(xs, ys, marker="o", label=model)
            if all(p[2] is not None for p in pts):
                lo = [y - p[2] for y, p in zip(ys, pts)]
                hi = [y + p[2] for y, p in zip(ys, pts)]
                ax.fill_between(xs, lo, hi, alpha=0.15)
        ax.set_title(f"{name}@k")
        ax.set_xlabel("k")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _png(fig, path)


def plot_segments(rows: list[dict], path: Path, k: int) -> str | None:
    plt = _plt()
    segs = [s for s in SEGMENT_LABELS if any(r[C.SEGMENT] == s for r in rows)]
    if len(segs) < 2:
        return None
    models = _models(rows)
    val = {(r[C.MODEL], r[C.SEGMENT]): r[C.VALUE] for r in rows if r[C.METRIC] == "ndcg" and r[C.K] == k}
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(models) * len(segs) / 2), 3.6))
    width = 0.8 / len(segs)
    for j, seg in enumerate(segs):
        xs = [i + j * width for i in range(len(models))]
        ax.bar(xs, [val.get((m, seg), 0.0) for m in models], width, label=SEGMENT_LABELS[seg])
    ax.set_xticks([i + width * (len(segs) - 1) / 2 for i in range(len(models))])
    ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"nDCG@{k}")
    ax.set_title("warm and cold segments")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig, path)


def plot_beyond(rows: list[dict], path: Path, k: int) -> str | None:
    plt = _plt()
    names = [m for m in BEYOND if any(r[C.METRIC] == m and r[C.K] == k for r in rows)]
    if not names:
        return None
    models = _models(rows)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        val = {r[C.MODEL]: r for r in rows if r[C.METRIC] == name and r[C.K] == k and r[C.SEGMENT] == "all"}
        ys = [val[m][C.VALUE] if m in val else 0.0 for m in models]
        err = [val[m].get("std") or 0.0 if m in val else 0.0 for m in models]
        ax.bar(range(len(models)), ys, yerr=err if any(err) else None, color="tab:green")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{name}@{k}")
        ax.grid(axis="y", alpha=0.3)
    return _png(fig, path)


def plot_projection(projection, path: Path, top: int = 9) -> str | None:
    if projection is None:
        return None
    plt = _plt()
    xy, labels, source = projection
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    shown = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    other = np.array([label not in shown for label in labels])
    if other.any():
        ax.scatter(xy[other, 0], xy[other, 1], s=6, c="lightgrey", label="other")
    cmap = plt.get_cmap("tab10")
    for i, tag in enumerate(shown):
        sel = np.array([label == tag for label in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(i % 10), label=f"{tag} ({sel.sum()})")
    ax.set_title(f"{len(labels)} items, {source}: first two principal components")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return _png(fig, path)


def _fmt(r: dict | None) -> str:
    if r is None:
        return "–"
    text = f"{r[C.VALUE]:.4f}"
    if r.get("std") is not None:
        text += f" ± {r['std']:.4f}"
    return text


def _table(rows: list[dict], *, k: int | None, segment: str, metrics: list[str], caption: str) -> str:
    models = _models(rows)
    sel = {(r[C.MODEL], r[C.METRIC]): r for r in rows
           if r[C.SEGMENT] == segment and (r[C.METRIC] == "auc" or k is None or r[C.K] == k)}
    metrics = [m for m in metrics if any(key[1] == m for key in sel)]
    if not metrics:
        return ""
    best = {}
    for m in metrics:
        vals = [sel[(mo, m)][C.VALUE] for mo in models if (mo, m) in sel]
        if vals and m in (*ACCURACY, "auc"):
            best[m] = max(vals)
    users = {mo: next((sel[(mo, m)].get("n_users") for m in metrics if (mo, m) in sel), None) for mo in models}
    head = "".join(f"<th>{html.escape(m)}{'' if m == 'auc' else f'@{k}'}</th>" for m in metrics)
    body = []
    for mo in models:
        if not any((mo, m) in sel for m in metrics):
            continue
        cells = []
        for m in metrics:
            r = sel.get((mo, m))
            strong = r is not None and m in best and abs(r[C.VALUE] - best[m]) < 1e-12
            cells.append(f"<td>{'<b>' if strong else ''}{_fmt(r)}{'</b>' if strong else ''}</td>")
        body.append(f"<tr><th>{html.escape(mo)}</th>{''.join(cells)}<td>{users[mo] or 0}</td></tr>")
    return (f"<table><caption>{html.escape(caption)}</caption><tr><th>model</th>{head}<th>users</th></tr>"
            + "".join(body) + "</table>")


def _all_k_table(rows: list[dict]) -> str:
    names = [m for m in ACCURACY if any(r[C.METRIC] == m for r in rows)]
    ks = sorted({r[C.K] for r in rows if r[C.METRIC] in names})
    val = {(r[C.MODEL], r[C.METRIC], r[C.K]): r for r in rows if r[C.SEGMENT] == "all"}
    head = "".join(f"<th>{m}@{k}</th>" for m in names for k in ks)
    body = "".join(
        f"<tr><th>{html.escape(mo)}</th>" + "".join(f"<td>{_fmt(val.get((mo, m, k)))}</td>" for m in names for k in ks)
        + "</tr>" for mo in _models(rows))
    return f"<table class='wide'><tr><th>model</th>{head}</tr>{body}</table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child{text-align:left}caption{text-align:left;font-weight:bold;padding:4px 0}
table.wide{font-size:11px}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:11px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{font-weight:bold}dd{margin:0}"""


def write_report(spark, storage, cfg, *, run_id: str, rows: list[dict], params: dict[str, str],
                 timings: dict[str, float], out: Path) -> Path:
    """Write the run's report into ``out`` (created); returns the path of index.html."""
    from socialrec.core.runs import code_version

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shown = shown_rows(rows)
    k = main_k(shown, cfg.recommend.k)
    seeds = sorted({r[C.SEED] for r in rows if r.get(C.SEED) is not None})
    ev = cfg.evaluation
    projection = item_projection(spark, storage, cfg, cfg.report.projection_items, seed=ev.seed)
    plots = {
        "metrics_at_k": (plot_metrics_at_k(shown, out / "metrics_at_k.png"), "Accuracy against the cut-off k"),
        "segments": (plot_segments(shown, out / "segments.png", k), f"nDCG@{k} per segment"),
        "beyond_accuracy": (plot_beyond(shown, out / "beyond_accuracy.png", k),
                            f"Catalogue coverage, novelty and intra-list diversity at {k}"),
        "embeddings": (plot_projection(projection, out / "embeddings.png"),
                       "Item embeddings in two dimensions, coloured by first tag / genre"),
    }
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        fields = [C.MODEL, C.SEGMENT, C.METRIC, C.K, C.VALUE, "std", "n_seeds", "n_users", C.SEED]
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r[C.MODEL], r[C.SEGMENT], r[C.METRIC], r[C.K], r.get(C.SEED) or -1)):
            w.writerow(r)
    acc = [m for m in (*ACCURACY, "auc") if any(r[C.METRIC] == m for r in shown)]
    spread = f"mean ± std over {len(seeds)} seeds ({', '.join(map(str, seeds))})" if len(seeds) > 1 else \
        f"seed {seeds[0] if seeds else ev.seed}"
    parts = [
        f"<h1>socialrec evaluation — {html.escape(cfg.dataset.name)}, {html.escape(ev.protocol)}</h1>",
        "<dl>" + "".join(f"<dt>{html.escape(a)}</dt><dd>{html.escape(str(b))}</dd>" for a, b in (
            ("run", run_id), ("dataset", cfg.dataset.name), ("protocol", ev.protocol), ("seeds", spread),
            ("models", ", ".join(ev.models)), ("written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("code", code_version()))) + "</dl>",
        _table(shown, k=k, segment="all", metrics=[*acc, *BEYOND],
               caption=f"All test users at k = {k} (best accuracy in bold)"),
    ]
    for name, (data, title) in plots.items():
        if data:
            parts.append(f"<h2>{html.escape(title)}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
        if name == "metrics_at_k":
            parts.append("<h3>Every cut-off (all test users)</h3>" + _all_k_table(shown))
        if name == "segments":
            for seg in [s for s in SEGMENT_LABELS if s != "all" and any(r[C.SEGMENT] == s for r in shown)]:
                parts.append(_table(shown, k=k, segment=seg, metrics=[*acc, *BEYOND],
                                    caption=f"Segment: {SEGMENT_LABELS[seg]}"))
            missing = [s for s in ev.segments if not any(r[C.SEGMENT] == s for r in shown)]
            if missing:
                parts.append(f"<p>No test users in segment(s) {', '.join(missing)} for this dataset and protocol.</p>")
    parts += [
        "<h2>Chosen at run time</h2><dl>" + "".join(
            f"<dt>{html.escape(a)}</dt><dd>{html.escape(b)}</dd>" for a, b in sorted(params.items())) + "</dl>",
        "<h2>Timings (s)</h2><dl>" + "".join(
            f"<dt>{html.escape(a)}</dt><dd>{b:.1f}</dd>" for a, b in timings.items()) + "</dl>",
        "<h2>Configuration</h2><pre>" + html.escape(json.dumps(cfg.to_dict(), indent=2, sort_keys=True)) + "</pre>",
        "<p>Metric definitions: docs/evaluation.md in the socialrec repository. Rows: metrics.csv.</p>",
    ]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>socialrec {html.escape(run_id)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    log.info("report: %s", index)
    return index


def format_summary(rows: list[dict], segment: str = "all") -> str:
    """A plain-text table for one segment: one line per model and k, one column per
    metric (auc, which has no k, repeated on each of the model's lines); with repeats
    over seeds, mean ± standard deviation. Then, for the other segments, nDCG per model."""
    rows = shown_rows(rows)
    seg_rows = [r for r in rows if r.get("segment", "all") == segment]
    if not seg_rows:
        return "(no metrics)"
    order = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc", "coverage", "novelty", "diversity")
    metric_names = [m for m in order if any(r["metric"] == m for r in seg_rows)]
    keys = sorted({(r["model"], r["k"]) for r in seg_rows if r["metric"] != "auc"})
    val = {(r["model"], r["k"], r["metric"]): r for r in seg_rows if r["metric"] != "auc"}
    val.update({(r["model"], k, "auc"): r for r in seg_rows if r["metric"] == "auc"
                for model, k in keys if model == r["model"]})
    users = {(r["model"], r["k"]): r.get("n_users") for r in seg_rows if r["metric"] in order[:6]}
    spread = any(r.get("std") is not None for r in seg_rows)
    cw = 17 if spread else 11

    def cell(r):
        if r is None:
            return f"{'-':>{cw}}"
        text = f"{r['value']:.4f}" + (f"±{r['std']:.4f}" if spread and r.get("std") is not None else "")
        return f"{text:>{cw}}"

    width = max(14, 2 + max(len(r["model"]) for r in seg_rows))
    header = f"{'model':<{width}}{'k':>4}" + "".join(f"{m:>{cw}}" for m in metric_names) + f"{'users':>8}"
    n_seeds = max((r.get("n_seeds") or 1) for r in seg_rows)
    lines = [f"segment {segment}" + (f", mean ± std over {n_seeds} seeds" if spread else ""), header,
             "-" * len(header)]
    for model, k in keys:
        cells = "".join(cell(val.get((model, k, m))) for m in metric_names)
        lines.append(f"{model:<{width}}{k:>4}{cells}{users.get((model, k)) or 0:>8}")
    others = sorted({r.get("segment") for r in rows if r.get("segment") not in (None, segment)})
    ks = sorted({r["k"] for r in rows if r["metric"] == "ndcg"})
    if others and ks:
        k = 10 if 10 in ks else ks[-1]
        nd = {(r["model"], r["segment"]): r for r in rows if r["metric"] == "ndcg" and r["k"] == k}
        models = sorted({m for m, _ in nd})
        lines += ["", f"nDCG@{k} by segment (users)", f"{'model':<{width}}" + "".join(f"{s:>22}" for s in [segment, *others])]
        for model in models:
            cells = ""
            for sname in [segment, *others]:
                r = nd.get((model, sname))
                cells += f"{'-':>22}" if r is None else f"{r['value']:>14.4f} ({r.get('n_users') or 0:>5})"
            lines.append(f"{model:<{width}}{cells}")
    return "\n".join(lines)
