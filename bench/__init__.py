"""socialrec benchmarks (not tests): each figure is a ratio to a peer measured in the same run."""

from __future__ import annotations

import json
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
