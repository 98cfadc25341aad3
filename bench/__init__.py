"""socialrec benchmarks (not tests): each figure is a ratio to a peer measured in the same run."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"


def fmt(value, spec: str) -> str:
    """A number for a results table; '-' where there is none."""
    return "-" if value is None else format(value, spec)


def save(name: str, machine: str, header: list[str], table: list[list[str]], payload: dict) -> str:
    """Write bench/results/<name>-<time>.json (``payload`` with time and machine) and .md
    (the table), print the table and return it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}-{stamp}.json").write_text(json.dumps({"when": stamp, "machine": machine, **payload}, indent=2))
    lines = [f"# socialrec bench.{name} {stamp}", "", machine, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    md = "\n".join(lines) + "\n"
    (OUT / f"{name}-{stamp}.md").write_text(md)
    print(md)
    return md


class PeakSampler:
    """The peak of ``sample()`` over a ``with`` block, sampled every ``every`` seconds in a
    thread (and once at each end). A sample that raises ends the sampling: the peak
    stays what it was (e.g. a Spark session closing under the sampler)."""

    every = 0.1

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    def sample(self) -> int:
        raise NotImplementedError

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                self.peak = max(self.peak, self.sample())
            except Exception:  # noqa: BLE001
                return

    def __enter__(self):
        self.peak = self.sample()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.sample())


class PeakRSS(PeakSampler):
    """Peak resident memory of this process and all its descendants (sampled every 0.1 s)."""

    @staticmethod
    def sample() -> int:
        parents, rss = {}, {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(pid)] = int(fields[1])
                rss[int(pid)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        mine, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            p = frontier.pop()
            for child, parent in parents.items():
                if parent == p and child not in mine:
                    mine.add(child)
                    frontier.append(child)
        return sum(rss.get(p, 0) for p in mine)


def _gib(n: int) -> float:
    return n / 2**30


def timed_cache(df):
    """Cache ``df`` and materialise it: (the cached frame, seconds, peak GiB of the process
    tree while it ran). The caller unpersists the frame."""
    with PeakRSS() as mem:
        start = time.perf_counter()
        df = df.cache()
        df.count()
        seconds = time.perf_counter() - start
    return df, seconds, _gib(mem.peak)


def same_top_k(ours, peer) -> tuple[int, int]:
    """(users in ``ours``, users whose set of recommended items equals ``peer``'s); both
    frames (user_id, item_id, ...)."""
    from pyspark.sql import functions as F

    a = ours.groupBy("user_id").agg(F.sort_array(F.collect_list("item_id")).alias("x"))
    b = peer.groupBy("user_id").agg(F.sort_array(F.collect_list("item_id")).alias("x"))
    n_users = a.count()
    differ = a.join(b, "user_id", "full_outer").where(~F.coalesce(a["x"] == b["x"], F.lit(False))).count()
    return n_users, n_users - differ


# --------------------------------------------------------------------------- the suite's common rows

def machine_label(spark=None) -> str:
    """The machine the figures belong to: CPU model, cores, memory (and Spark's version and master)."""
    import platform

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    label = f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB"
    if spark is not None:
        label += f", Spark {spark.version} {spark.sparkContext.master}"
    return label


def compare(stage: str, benchmark: str, ours: str, peer: str, unit: str, ours_value, peer_value, *,
            better: str = "lower", check: str = "", **extra) -> dict:
    """One row of the suite: ``ours`` vs ``peer`` measured in the same run on the same input.

    ``better`` says which direction wins for this unit ("lower" for seconds and GiB,
    "higher" for rates and accuracy); ``advantage`` is how many times better ours is
    (> 1: ours better, < 1: the peer), None where either side was not measured."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be lower or higher, got {better!r}")
    advantage = None
    if ours_value is not None and peer_value is not None and ours_value > 0 and peer_value > 0:
        advantage = peer_value / ours_value if better == "lower" else ours_value / peer_value
    return {"stage": stage, "benchmark": benchmark, "ours": ours, "peer": peer, "unit": unit,
            "ours_value": ours_value, "peer_value": peer_value, "better": better, "advantage": advantage,
            "check": check, **extra}


def verdict(row: dict) -> str:
    """A row's comparison in words: "ours 3.75x faster", "peer 1.20x smaller" for costs and
    rates; for scores (accuracy, correlation) the difference, "peer +0.0024"; "-" when
    either side is missing."""
    ours, peer = row.get("ours_value"), row.get("peer_value")
    if ours is None or peer is None:
        return "-"
    unit = row["unit"]
    if not (unit in ("s", "seconds", "GiB") or unit.endswith("/s")):  # a score: say the difference
        diff = ours - peer if row["better"] == "higher" else peer - ours
        if abs(diff) < 0.0005:
            return "level"
        return f"ours +{diff:.4f}" if diff > 0 else f"peer +{-diff:.4f}"
    a = row.get("advantage")
    if a is None:
        return "-"
    word = "smaller" if unit == "GiB" else "faster"
    if abs(a - 1) < 0.005:
        return "level"
    return f"ours {a:.2f}x {word}" if a > 1 else f"peer {1 / a:.2f}x {word}"


def value(x, unit: str = "") -> str:
    """A measured value for a table: 3 significant figures (thousands separated), '-' when absent."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if x != x:  # NaN
        return "nan"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if unit not in ("s", "GiB") else f"{x:.2f}"


def fit_exponent(sizes: list[float], costs: list[float]) -> float | None:
    """b in cost = a * size^b, least squares on logs; None with fewer than two usable points."""
    import math

    pts = [(math.log(s), math.log(c)) for s, c in zip(sizes, costs) if s and c and s > 0 and c > 0]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def emit(path: str | None, name: str, machine: str, rows: list[dict], extra: dict | None = None) -> None:
    """Write the module's common rows to ``path`` (the suite's hand-over file) when given."""
    if path:
        Path(path).write_text(json.dumps({"name": name, "machine": machine, "rows": rows, **(extra or {})},
                                         indent=2, default=float))


def rows_table(rows: list[dict]) -> list[str]:
    """Markdown lines of the common rows."""
    out = ["| stage | benchmark | ours | peer | unit | ours | peer | ours vs peer | check |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['stage']} | {r['benchmark']} | {r['ours']} | {r['peer']} | {r['unit']} | "
                   f"{value(r['ours_value'], r['unit'])} | {value(r['peer_value'], r['unit'])} | {verdict(r)} | "
                   f"{r.get('check', '')} |")
    return out
