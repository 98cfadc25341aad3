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


class PeakRSS:
    """Peak resident memory of this process and all its descendants (sampled every 0.1 s)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _tree_rss() -> int:
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

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(0.1)

    def __enter__(self):
        self.peak = self._tree_rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._tree_rss())


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
